"""Tests of impasto.cli.export: `impasto export` writes a model as ONNX and refuses an output not ending in .onnx."""

import argparse

import pytest

from conftest import ONNX_STYLES as STYLES
from impasto.cli import export as export_command
from impasto.errors import ImpastoError
from impasto.fast.model import save_model
from impasto.fast.onnx import OnnxRunner


def _run_export(*argv) -> int:
    parser = argparse.ArgumentParser()
    export_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["export", *map(str, argv)])
    return args.run(args)


def test_export_command(model, tmp_path):
    path = save_model(model, tmp_path / "m.pt")
    assert _run_export(path, "-o", tmp_path / "m.onnx") == 0
    assert OnnxRunner(tmp_path / "m.onnx").styles == STYLES
    with pytest.raises(ImpastoError, match=r"\.onnx"):
        _run_export(path, "-o", tmp_path / "m.png")
