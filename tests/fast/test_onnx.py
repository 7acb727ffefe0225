"""Tests of impasto.fast.onnx: the exported transform network in onnxruntime gives PyTorch's output at any size."""

import onnxruntime  # the test extra installs it: a missing one fails here rather than skipping
import pytest
import torch

from conftest import ONNX_STYLES as STYLES
from impasto.errors import ImpastoError
from impasto.fast.onnx import OnnxRunner
from impasto.fast.stylise import load_runner


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


def test_missing_onnxruntime_says_how_to_install(exported, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ImpastoError, match=r"pip install 'impasto\[onnx\]'"):
        OnnxRunner(exported)


def test_split_rgb_conv_computes_the_same_sums():
    from impasto.fast.onnx import split_rgb_conv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 3, 9)
    x = torch.rand(2, 5, 23, 31, dtype=torch.float64)
    conv = conv.double()
    split = split_rgb_conv(conv).double()
    with torch.no_grad():
        assert torch.allclose(split(x), conv(x), rtol=0, atol=1e-12)
    assert [tuple(m.weight.shape) for m in split] == [(27, 5, 9, 1), (3, 9, 1, 9)]
