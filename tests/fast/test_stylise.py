"""Tests of impasto.fast.stylise: which runner a model gets, the bundled models' ONNX twins, and a
one-image command that never loads PyTorch."""

import subprocess
import sys

import numpy as np
import onnxruntime  # noqa: F401  the test extra installs it: a missing one fails here rather than skipping
import pytest
from PIL import Image

from conftest import EXAMPLES
from impasto.fast.model import bundled_models, save_model, load_model
from impasto.fast.onnx import OnnxRunner
from impasto.fast.runner import TorchRunner
from impasto.fast.stylise import load_runner, parse_mix
from impasto.image.imageio import pil_to_array, resized


def _photo(side=96):
    return pil_to_array(resized(Image.open(EXAMPLES / "tubingen.jpg").convert("RGB"), long_side=side))


@pytest.mark.parametrize("name", bundled_models())
def test_each_bundled_onnx_twin_is_its_pt_exported(name):
    """One definition of each network: the shipped .onnx paints what the shipped .pt paints."""
    twin, torch_runner = load_runner(name, quick=True), TorchRunner(load_model(name), "fp32", "cpu")
    assert isinstance(twin, OnnxRunner) and twin.styles == torch_runner.styles
    image, mix = _photo(), parse_mix(None, twin.styles)
    got, expected = twin(image, mix), torch_runner(image, mix)
    assert isinstance(got, np.ndarray) and isinstance(expected, np.ndarray) and got.shape == image.shape
    assert np.abs(got - expected).max() < 1e-4


def test_only_a_quick_cpu_fp32_run_of_a_bundled_model_skips_pytorch(tmp_path):
    assert isinstance(load_runner("starry_night"), TorchRunner)  # a video, a server: PyTorch
    assert isinstance(load_runner("starry_night", "fp32", "cpu", quick=True), OnnxRunner)
    assert isinstance(load_runner("starry_night", "bf16", quick=True), TorchRunner)  # as asked
    own = tmp_path / "mine.pt"
    save_model(load_model("starry_night_small"), own)
    (tmp_path / "mine.onnx").write_bytes(b"not the twin of mine.pt")  # only bundled models have twins
    assert isinstance(load_runner(own, quick=True), TorchRunner)


def test_mix_is_a_normalised_float32_vector():
    assert parse_mix(None, ["a", "b"]).tolist() == [1.0, 0.0]
    mix = parse_mix("1,3", ["a", "b"])
    assert mix.dtype == np.float32 and mix.tolist() == [0.25, 0.75]


def test_one_image_command_never_loads_pytorch_and_paints_as_it_does(tmp_path):
    import shutil

    from impasto.fast.model import bundled_dir

    quick, slow, own = tmp_path / "quick.png", tmp_path / "slow.png", tmp_path / "own.pt"
    shutil.copy(bundled_dir() / "starry_night.pt", own)  # not bundled: PyTorch (and its C kernels) paint it
    script = ("import sys; from impasto.cli.main import main; code = main(sys.argv[1:]); "
              "assert 'torch' not in sys.modules, 'PyTorch was imported'; sys.exit(code)")
    photo = [str(EXAMPLES / "tubingen.jpg"), "--size", "96", "--quiet"]
    done = subprocess.run([sys.executable, "-c", script, "fast", "--model", "starry_night", *photo, "-o", str(quick)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "impasto", "fast", "--model", str(own), *photo, "--precision", "fp32",
                           "-o", str(slow)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    a, b = (np.asarray(Image.open(p), dtype=np.int16) for p in (quick, slow))
    assert a.shape == b.shape == (72, 96, 3)
    assert np.abs(a - b).max() <= 1  # fp32 in onnxruntime or in impasto's C kernels: rounding apart
