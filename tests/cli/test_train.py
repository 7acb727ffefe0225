"""Tests of impasto.cli.train: `impasto train` (then `fast` with its model), under torchrun, and stopped by Ctrl-C."""

import os

import pytest
import torch
from PIL import Image

from conftest import _free_port, ctrl_c_reaches_it, run_cli
from impasto.fast.model import load_model
from impasto.fast.train import checkpoint_path


def _train_cli(photos, style, out, *extra):
    return run_cli("train", style, "--data", photos, "-o", out, "--width", 0.25, "--steps", 2, "--batch", 2,
                   "--crop", 32, "--side", 48, "--preview-every", 1, *extra)


def test_train_and_fast_commands(photos, style, tmp_path):
    model = tmp_path / "m.pt"
    code, _, err = _train_cli(photos, style, model)
    assert code == 0, err
    assert "skipped 1 unreadable file" in err and "img/s" in err
    assert model.exists() and checkpoint_path(model).exists() and (tmp_path / "m.preview.png").exists()
    code, _, err = _train_cli(photos, style, model, "--steps", 3, "--resume")
    assert code == 0, err
    assert load_model(model).meta["steps"] == 3

    out = tmp_path / "one.png"
    code, _, err = run_cli("fast", model, photos / "sub" / "p0.jpg", "-o", out, "--size", 50)
    assert code == 0, err
    assert Image.open(out).size == (50, 44)
    folder = tmp_path / "many"
    code, _, err = run_cli("fast", "--model", model, photos, "-o", folder, "--color", "luminance")
    assert code == 2 and "skipped: " in err and "corrupt.jpg" in err  # the rest is still written
    assert sorted(p.name for p in (folder / "sub").iterdir()) == [f"p{i}.png" for i in range(6)]


def test_torchrun_trains_with_two_processes(photos, style, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_port", str(_free_port()), "-m", "impasto", "train", str(style),
                           "--data", str(photos), "-o", str(out), "--width", "0.25", "--steps", "2",
                           "--batch", "1", "--crop", "32", "--side", "48", "--preview-every", "0",
                           "--quiet"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    model = load_model(out)
    assert model.meta["world_size"] == 2 and model.meta["steps"] == 2


def test_ctrl_c_keeps_the_model_and_a_checkpoint(photos, style, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m.pt"
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "train", str(style), "--data", str(photos),
                             "-o", str(out), "--width", "0.25", "--steps", "100000", "--batch", "1",
                             "--crop", "32", "--side", "48", "--checkpoint-every", "2",
                             "--preview-every", "0", "--quiet"], stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_it)
    deadline = time.time() + 120
    while not out.exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted: at step" in err and "Traceback" not in err
    steps = load_model(out).meta["steps"]
    state = torch.load(checkpoint_path(out), weights_only=True)
    assert steps >= 2 and state["step"] == steps  # model and checkpoint from the same, latest step


def test_train_prints_and_keeps_its_validation_curve(photos, style, tmp_path):
    import json
    import shutil

    val = tmp_path / "val"
    val.mkdir()
    shutil.copy(photos / "sub" / "p5.jpg", val / "p5.jpg")
    model = tmp_path / "v.pt"
    code, _, err = _train_cli(photos, style, model, "--val-data", val, "--val-every", 1,
                              "--progress", "json")
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    shown = [line["extra"] for line in lines if "extra" in line]
    assert len(shown) == 2 and all(set(e) == {"val_content", "val_style", "val_total"} for e in shown)
    curve = load_model(model).meta["validation"]
    assert [p["step"] for p in curve] == [1, 2] and curve[-1]["total"] == pytest.approx(shown[-1]["val_total"])
    assert f"validation loss {curve[-1]['total']:.4g} at step 2" in lines[-1]["message"]
