"""``impasto export``: a trained transform network as an ONNX file, for onnxruntime (``impasto fast``)."""

from __future__ import annotations

import sys

from ..image.imageio import check_writable


def add_parser(sub) -> None:
    from ..fast.onnx import DEFAULT_OPSET

    p = sub.add_parser("export", help="write a trained fast-style model as an ONNX file",
                       description="Export MODEL (a .pt file from `impasto train`, or a bundled model's name) "
                                   "to ONNX: dynamic image size, style weights as a second input, style names "
                                   "in the metadata. Needs onnx and onnxruntime: pip install 'impasto[onnx]'.")
    p.add_argument("model", help="a .pt model file or the name of a bundled model")
    p.add_argument("-o", "--output", required=True, help="output file (.onnx)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default: {DEFAULT_OPSET})")
    p.set_defaults(run=cmd_export)


def cmd_export(args) -> int:
    from ..fast.model import load_model
    from ..fast.onnx import export_onnx

    output = check_writable(args.output, (".onnx",), inputs=(args.model,))
    model = load_model(args.model)
    written = export_onnx(model, output, opset=args.opset)
    print(f"wrote {written} (width {model.net.width:g}, styles: {', '.join(model.styles)})", file=sys.stderr)
    return 0
