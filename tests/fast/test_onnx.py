"""ONNX export of the fast transform network: onnxruntime gives PyTorch's output at any size."""

import argparse

import onnxruntime  # the test extra installs it: a missing one fails here rather than skipping
import pytest
import torch

from impasto.cli import export as export_command
from impasto.errors import ImpastoError
from impasto.fast.model import FastModel, save_model
from impasto.fast.network import CondInstanceNorm, TransformNet
from impasto.fast.onnx import OnnxRunner, export_onnx
from impasto.fast.stylise import load_runner

STYLES = ["starry night", "kandinsky,composition"]  # a comma must survive the metadata


@pytest.fixture(scope="module")
def model():
    """A random 2-style network whose styles differ (random γ, β), so the mix matters."""
    torch.manual_seed(0)
    net = TransformNet(width=0.25, styles=2).eval().requires_grad_(False)
    for m in net.modules():
        if isinstance(m, CondInstanceNorm):
            m.scale.normal_(1.0, 0.3)
            m.shift.normal_(0.0, 0.3)
    return FastModel(net, list(STYLES))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.mark.parametrize("height,width", [(37, 53), (64, 48)])
@pytest.mark.parametrize("mix", [(1.0, 0.0), (0.3, 0.7)])
def test_onnxruntime_matches_pytorch(model, exported, height, width, mix):
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
    weights = torch.tensor(mix)
    with torch.no_grad():
        expected = model.net(image, weights).clamp(0, 1)
    got = OnnxRunner(exported)(image, weights)
    assert got.shape == (1, 3, height, width)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_mix_changes_output(exported):
    runner, image = OnnxRunner(exported), torch.rand(1, 3, 37, 53)
    a, b = runner(image, torch.tensor([1.0, 0.0])), runner(image, torch.tensor([0.0, 1.0]))
    assert (a - b).abs().max() > 1e-2


def test_runs_on_the_cpu_provider(exported):
    assert "CPUExecutionProvider" in onnxruntime.get_available_providers()
    assert OnnxRunner(exported).session.get_providers() == ["CPUExecutionProvider"]


def test_style_names_round_trip(exported):
    assert OnnxRunner(exported).styles == STYLES
    assert load_runner(exported).styles == STYLES  # stylise.load_runner picks OnnxRunner for .onnx


def test_wrong_mix_length(exported):
    with pytest.raises(ImpastoError, match="style weights"):
        OnnxRunner(exported)(torch.rand(1, 3, 37, 53), torch.tensor([1.0, 0.0, 0.0]))


def test_bad_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(ImpastoError) as info:
        OnnxRunner(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


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


def test_missing_onnxruntime_says_how_to_install(exported, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ImpastoError, match=r"pip install 'impasto\[onnx\]'"):
        OnnxRunner(exported)


def test_a_video_with_an_onnx_model_blends_the_outputs_only(model, exported, tmp_path):
    """An exported graph is one piece: there are no features to blend, so --temporal-features does
    not apply and the frames are those of the PyTorch model with the output blend alone."""
    import numpy as np

    from impasto.config import VideoConfig
    from impasto.fast.stylise import TorchRunner
    from impasto.video.fast import fast_video
    from conftest import panning_clip

    clip, mix = panning_clip(n=4), torch.tensor([0.3, 0.7])
    onnx = fast_video(clip, OnnxRunner(exported), mix, None, VideoConfig(), tmp_path / "a.mp4")
    torch_only_outputs = fast_video(clip, TorchRunner(model, "fp32", "cpu"), mix, None,
                                    VideoConfig(temporal_features=0.0), tmp_path / "b.mp4")
    assert len(onnx.frames) == 4
    for a, b in zip(onnx.frames, torch_only_outputs.frames):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
