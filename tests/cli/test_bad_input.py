"""Bad input, everywhere: every option and file checked before any work — one line naming the option
or file and the allowed range, exit 2 (1 for a divergence), no traceback, nothing written, inputs
untouched — for every sub-command; and a property test (Hypothesis) that random option values are
either accepted (and a tiny run then works) or refused with ImpastoError, never another exception."""

import hashlib
import math
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image


from conftest import ctrl_c_reaches_it
from impasto import Cancel, ImpastoError, Interrupted, TransferConfig, transfer
from impasto.cli.main import main
from impasto.config import AudioConfig, check_options, option_fields
from impasto.runtime import available_memory, image_job_bytes

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread

NET = ["--precision", "fp32", "--device", "cpu"]


@pytest.fixture(scope="module")
def files(small_images, tmp_path_factory):
    """The small example images, a 3-pixel strip, and a folder to write into."""
    root = tmp_path_factory.mktemp("bad")
    Image.new("RGB", (200, 3), "white").save(root / "strip.png")
    (root / "a_file").write_text("not a folder")
    return {**small_images, "strip": root / "strip.png", "file": root / "a_file", "dir": root}


def snapshot(folder) -> dict:
    """Every file under ``folder`` with a hash of its bytes: to see that nothing was written or changed."""
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv, capsys, code: int = 2) -> str:
    """Run the CLI in this process; assert the exit code and one line on stderr; return the line."""
    assert main([str(a) for a in argv]) == code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("impasto: error: ") and "Traceback" not in err, err
    return lines[0]


def transfer_cases(f, out):
    c, s = f["tubingen"], f["starry_night"]
    run = ["transfer", c, s, "-o", out, "--size", 32, "--iterations", 1, *NET]
    long_name = f["dir"] / ("x" * 300 + ".png")
    return {
        # images and sizes too small for the network
        "strip": (["transfer", f["strip"], s, "-o", out, *NET], "strip.png: 512x8 px at --size"),
        "size below the network's": (run + ["--size", 20], "needs a short side of at least 16 px"),
        "size below the range": (run + ["--size", 8], "--size must be from 16 to"),
        "style shrunk to a few pixels": (run + ["--style-scale", 0.1], "starry_night.png: measured at"),
        "coarse scale too small": (run + ["--scales", "16,32"], "at its 16 px scale"),
        "pool5 on a small image": (run + ["--size", 40, "--content-layers", "pool5"], "pool5 needs a short side"),
        "empty layer list": (run + ["--style-layers", ","], "--style-layers needs at least one value"),
        # numbers out of range or not finite
        "negative lr": (run + ["--optimizer", "adam", "--lr", -1], "--lr must be above 0"),
        "nan lr": (run + ["--optimizer", "adam", "--lr", "nan"], "--lr must be a finite number"),
        "absurd lr": (run + ["--optimizer", "adam", "--lr", 1e30], "--lr must be above 0 and at most 255"),
        "inf lr": (run + ["--optimizer", "adam", "--lr", "inf"], "--lr must be a finite number"),
        "history 0": (run + ["--lbfgs-history", 0], "--lbfgs-history must be from 1 to 1000"),
        "seed too large": (run + ["--seed", 2**70], "--seed must be from 0 to"),
        "inf style scale": (run + ["--style-scale", "inf"], "--style-scale must be a finite number"),
        "negative tv": (run + ["--tv-weight", -1], "--tv-weight must be at least 0"),
        "negative layer weight": (run + ["--style-layer-weights=-1,1,1,1,1"], "--style-layer-weights must be"),
        "negative content weight": (run + ["--content-weight", -1], "--content-weight must be at least 0"),
        "nan early stop": (run + ["--early-stop", "nan"], "--early-stop must be a finite number"),
        "negative early stop": (run + ["--early-stop", -0.5], "--early-stop must be at least 0 and below 1"),
        "nan style weight": (run + ["--style-weight", "nan"], "--style-weight must be a finite number"),
        "inf content weight": (run + ["--content-weight", "inf"], "--content-weight must be a finite number"),
        "bad ratio": (run + ["--ratio", 0], "--ratio must be above 0"),
        # sizes that cannot fit in memory: refused with the estimate and what fits
        "size beyond memory": (run + ["--size", 60000], "even over"),
        "size beyond memory, never tiled": (run + ["--size", 60000, "--tile", 0], "the largest --size that fits is about"),
        "tile below the deepest cell": (run + ["--tile", 8], "--tile 8: a tile must be at least 16 px"),
        # files and outputs
        "output under a file": (["transfer", c, s, "-o", f["file"] / "out.png", *NET], "a_file is a file, not a folder"),
        "output name too long": (["transfer", c, s, "-o", long_name, *NET], "longer than this file system allows"),
        "output is the photo": (["transfer", c, s, "-o", c, *NET], "is also an input"),
        "output is the painting": (["transfer", c, s, "-o", s, *NET], "is also an input"),
        "malformed presets file, no preset": (run + ["--presets-file", f["file"]], "a_file: not valid TOML"),
    }


def test_transfer_refuses_bad_input(files, tmp_path, capsys):
    out = tmp_path / "out.png"
    for name, (argv, message) in transfer_cases(files, out).items():
        before = snapshot(files["dir"].parent)
        line = refused(argv, capsys)
        assert message in line, (name, line)
        assert not out.exists() and snapshot(files["dir"].parent) == before, name
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


def test_other_commands_refuse_bad_input(files, photos, style, tmp_path, capsys):
    c, s = files["tubingen"], files["starry_night"]
    out, wav = tmp_path / "out.png", tmp_path / "s.wav"
    from impasto.audio.files import save_audio

    save_audio((0.3 * torch.sin(torch.arange(11025) / 10.0)).unsqueeze(0), 22050, wav)
    cases = [
        (["reconstruct", "content", c, "--layer", "pool5", "--size", 24, "-o", out], "short side must be at least 32"),
        (["reconstruct", "style", s, "--texture-size", "40000,40000", "-o", out], "the largest --texture-size side"),
        (["reconstruct", "style", s, "--layers", ",", "-o", out], "at least one style layer is needed"),
        (["reconstruct", "content", c, "--lbfgs-history", 0, "-o", out], "--lbfgs-history must be from 1"),
        (["reconstruct", "content", c, "-o", c], "is also an input"),
        (["figure", "grid", c, s, "--ratios", "nan", "-o", out], "--ratios must be a finite number"),
        (["figure", "grid", c, s, "--depths", "0", "-o", out], "--depths must be"),
        (["audio", "--texture", wav, "--seconds", "inf", "-o", tmp_path / "a.wav"], "--seconds must be a finite"),
        (["audio", "--texture", wav, "--seconds", 1e6, "-o", tmp_path / "a.wav"], "--seconds must be above 0"),
        (["audio", "--texture", wav, "--seconds", 3000, "--filters", 60000, "-o", tmp_path / "a.wav"],
         "GiB of memory"),
        (["audio", "--texture", wav, "-o", wav], "is also an input"),
        (["train", style, "--data", photos, "-o", tmp_path / "m.pt", "--preview-every", -1], "--preview-every must be"),
        (["train", style, "--data", photos, "-o", tmp_path / "m.pt", "--lr", "nan"], "--lr must be a finite number"),
        (["train", style, "--data", photos, "-o", tmp_path / "m.pt", "--batch", 1000, "--crop", 4000],
         "try a smaller --batch or --crop"),
        (["fast", "--model", "starry_night", c, "-o", out, "--mix", "nan"], "--mix: weights must be finite"),
        (["fast", "--model", "starry_night", c, "-o", c], "is also an input"),
        (["recolor", out, c, "-o", c], "is also an input"),
        (["export", "starry_night", "-o", tmp_path / "m.txt"], "must end in .onnx"),
        (["export", "starry_night", "-o", files["file"] / "m.onnx"], "a_file is a file, not a folder"),
    ]
    for argv, message in cases:
        before = snapshot(files["dir"].parent)
        line = refused(argv, capsys)
        assert message in line, (argv, line)
        assert snapshot(files["dir"].parent) == before
        assert not out.exists() and not (tmp_path / "a.wav").exists() and not (tmp_path / "m.pt").exists()


def test_a_legal_long_output_name_is_written(files, tmp_path, capsys):
    """A 250-byte name is legal; the temporary name beside it must not make it fail after the run."""
    out = tmp_path / ("y" * 246 + ".png")
    assert main(["transfer", str(files["tubingen"]), str(files["starry_night"]), "-o", str(out), "--size", "32",
                 "--iterations", "1", "--quiet", *NET]) == 0
    assert Image.open(out).size == (32, 24)


def test_a_diverging_training_run_writes_nothing(photos, style, tmp_path, capsys):
    out = tmp_path / "m.pt"
    line = refused(["train", style, "--data", photos, "-o", out, "--width", 0.25, "--steps", 3, "--batch", 1,
                    "--crop", 32, "--side", 48, "--preview-every", 0, "--style-weight", 1e300, *NET], capsys,
                   code=1)
    assert "training diverged at step 1" in line and "--style-weight" in line
    assert list(tmp_path.iterdir()) == []


def test_a_model_with_nan_weights_is_named(tmp_path, capsys):
    from impasto.fast.model import FastModel, save_model
    from impasto.fast.network import TransformNet

    net = TransformNet(0.25, 1)
    with torch.no_grad():
        next(net.parameters()).fill_(math.nan)
    save_model(FastModel(net, ["x"], {}), tmp_path / "bad.pt")
    Image.new("RGB", (20, 20)).save(tmp_path / "p.png")
    line = refused(["fast", tmp_path / "bad.pt", tmp_path / "p.png", "-o", tmp_path / "o.png"], capsys)
    assert "bad.pt: weight" in line and "NaN or inf" in line


def test_an_all_unreadable_training_folder_is_named(style, tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"not a jpeg")
    line = refused(["train", style, "--data", tmp_path / "photos", "-o", tmp_path / "m.pt"], capsys)
    assert "photos" in line


@pytest.mark.parametrize("delay", [0.2, 0.4, 0.7, 1.0])
def test_ctrl_c_while_starting_is_one_line(files, tmp_path, delay):
    """Ctrl-C before the job runs (PyTorch still loading): exit 130, no traceback — and no abort: a
    KeyboardInterrupt raised inside PyTorch's import (pybind11) once ended the process with SIGABRT."""
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "transfer", str(files["tubingen"]),
                             str(files["starry_night"]), "-o", str(tmp_path / "o.png")],
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_it)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err and "terminate" not in err, err
    assert not (tmp_path / "o.png").exists()


def test_memory_estimate_covers_a_real_run(tmp_path):
    """The estimate is above a real run's peak resident memory, and not far above (a fresh process)."""
    from conftest import EXAMPLES

    script = ("import resource, sys; from impasto import TransferConfig, transfer; "
              f"transfer({str(EXAMPLES / 'tubingen.jpg')!r}, {str(EXAMPLES / 'starry_night.jpg')!r}, "
              "TransferConfig(size=384, iterations=2, precision='fp32')); "
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    peak = int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              timeout=300).stdout.split()[-1])
    estimate = image_job_bytes(384 * 288, "fp32")
    assert peak <= estimate <= 2 * peak, (peak, estimate)
    assert available_memory() is None or available_memory() > estimate


# ---------------------------------------------------------------- property test: random option values

ODD_NUMBERS = [0, -1, 1, 2, 3, 17, 0.5, -0.0, 1e-300, 1e9, 1e300, -1e300, math.nan, math.inf, -math.inf, 2**63, 2**70]
ODD_LISTS = [(), ("",), (",",), ("relu1_1",), ("nope",), (math.nan,), (-1.0,), (0.0,), (1.0, 1.0), (1e300,)]


def odd_value(f):
    kind = str(f.type)
    if kind.startswith("tuple") or kind.startswith("int | tuple") or "tuple[" in kind:
        return st.sampled_from(ODD_LISTS + [0, 3, 17])
    if kind.startswith("str"):
        return st.sampled_from(["", "x", "none", "paper", "auto", "lbfgs", "adam", "avg", "cpu"])
    if kind.startswith("bool"):
        return st.booleans()
    return st.sampled_from(ODD_NUMBERS)


NUMERIC_TRANSFER = [f for f in option_fields(TransferConfig) if f.name not in ("weights", "device", "init", "masks",
                                                                             "style_masks", "style_layers_for")]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.data())
def test_random_transfer_options_are_accepted_and_run_or_refused(small_images, vgg, data):
    f = data.draw(st.sampled_from(NUMERIC_TRANSFER))
    value = data.draw(odd_value(f))
    config = TransferConfig(size=32, iterations=2, precision="fp32", device="cpu").replace(**{f.name: value})
    cancel = Cancel()

    def stop_after_two(event):
        if event.done >= 2:
            cancel.set()

    try:
        image = transfer(small_images["tubingen"], small_images["starry_night"], config,
                         callback=stop_after_two, network=vgg, cancel=cancel)
    except ImpastoError:
        return  # refused (or a divergence, also an ImpastoError), with one line
    except Interrupted as stop:
        image = stop.partial
    assert image.size[0] >= 16 and image.size[1] >= 12  # accepted: a tiny run made a picture


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.data())
def test_random_audio_options_are_accepted_or_refused(data):
    f = data.draw(st.sampled_from(option_fields(AudioConfig)))
    config = AudioConfig().replace(**{f.name: data.draw(odd_value(f))})
    try:
        check_options(config)
        from impasto.audio.run import check_audio_options

        check_audio_options(config, with_content=False)
    except ImpastoError:
        pass
