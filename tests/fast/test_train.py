"""Fast style transfer (Johnson et al. 2016; Dumoulin et al. 2017): the transform network, training,
checkpoints and resume, DDP, and the `train` / `fast` commands. Everything tiny, on the real VGG-19."""

import os
import socket

import pytest
import torch
from PIL import Image

from conftest import EXAMPLES, ctrl_c_reaches_it, run_cli
from impasto.config import TrainConfig
from impasto.errors import ImpastoError
from impasto.fast.data import PhotoBatches
from impasto.fast.model import FastModel, load_model, save_model
from impasto.fast.network import CondInstanceNorm, TransformNet
from impasto.fast.train import Trainer, batch_gram, checkpoint_path, train

TINY = TrainConfig(width=0.25, steps=4, batch=2, crop=32, style_size=48, checkpoint_every=2, preview_every=0)


# ---------------------------------------------------------------- network


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25])
@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 9, 14), (1, 3, 64, 48)])
def test_network_keeps_any_size(width, shape):
    net = TransformNet(width).eval()
    with torch.no_grad():
        out = net(torch.rand(shape))
    assert out.shape == shape
    assert 0 <= out.min() and out.max() <= 1


def test_instance_norm_by_hand():
    norm = CondInstanceNorm(1, styles=2)
    with torch.no_grad():
        norm.scale.copy_(torch.tensor([[2.0], [4.0]]))
        norm.shift.copy_(torch.tensor([[1.0], [-1.0]]))
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)  # mean 2.5, variance 1.25
    z = (x - 2.5) / (1.25 + 1e-5) ** 0.5
    assert torch.allclose(norm(x, torch.tensor([[1.0, 0.0]])), 2 * z + 1, atol=1e-6)
    # a mix uses the weighted scale and shift: 0.25·(2, 1) + 0.75·(4, −1) = (3.5, −0.5)
    assert torch.allclose(norm(x, torch.tensor([[0.25, 0.75]])), 3.5 * z - 0.5, atol=1e-6)
    # a batch with a mix per image (training's path) gives each image what it gives alone (one image)
    both = norm(torch.cat([x, 2 * x]), torch.tensor([[1.0, 0.0], [0.25, 0.75]]))
    assert torch.allclose(both[0], 2 * z + 1, atol=1e-6) and torch.allclose(both[1], 3.5 * z - 0.5, atol=1e-5)


def test_conditioning_mixes_styles_exactly():
    torch.manual_seed(0)
    net = TransformNet(0.25, styles=2).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, CondInstanceNorm):
                m.scale.uniform_(0.5, 1.5)
                m.shift.uniform_(-0.5, 0.5)
    averaged = TransformNet(0.25, styles=1).eval()
    state = {k: (v.mean(0, keepdim=True) if k.endswith(("scale", "shift")) else v)
             for k, v in net.state_dict().items()}
    averaged.load_state_dict(state)
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        a, b = net(x, torch.tensor([1.0, 0.0])), net(x, torch.tensor([0.0, 1.0]))
        half = net(x, torch.tensor([0.5, 0.5]))
        assert (a - b).abs().max() > 1e-2  # each style has its own normalisation
        assert torch.allclose(half, averaged(x), atol=1e-6)


def test_batch_gram_by_hand():
    f = torch.tensor([[1.0, 2.0], [0.0, 3.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[5.0, 6.0], [6.0, 9.0]]) / 4
    assert torch.equal(batch_gram(f)[0], expected)


# ---------------------------------------------------------------- model files


def test_model_round_trip(tmp_path):
    torch.manual_seed(1)
    model = FastModel(TransformNet(0.25, styles=2), ["a", "b"], {"steps": 3})
    path = save_model(model, tmp_path / "m.pt")
    loaded = load_model(path)
    assert loaded.styles == ["a", "b"] and loaded.meta["steps"] == 3 and loaded.net.width == 0.25
    x = torch.rand(1, 3, 21, 30)
    with torch.no_grad():
        assert torch.equal(model.net.eval()(x, torch.tensor([0.3, 0.7])), loaded.net(x, torch.tensor([0.3, 0.7])))


def test_bad_model_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ImpastoError, match="junk.pt: cannot read model file"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ImpastoError, match="not an impasto fast model"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(ImpastoError, match="no such model file or bundled model"):
        load_model("no_such_style")


# ---------------------------------------------------------------- data


def test_data_skips_corrupt_files_and_is_deterministic(photos):
    data = PhotoBatches(photos, crop=24, batch=7, seed=3)
    batch = data.batch(0)  # 7 photos in the folder, one corrupt: a readable one takes its place
    assert batch.shape == (7, 3, 24, 24)
    assert [p.name for p in data.skipped] == ["corrupt.jpg"]
    again = PhotoBatches(photos, crop=24, batch=7, seed=3)
    assert torch.equal(again.batch(0), batch)
    assert not torch.equal(PhotoBatches(photos, crop=24, batch=7, seed=4).batch(0), batch)
    rank0 = PhotoBatches(photos, crop=24, batch=2, seed=3, rank=0, world=2).batch(1)
    rank1 = PhotoBatches(photos, crop=24, batch=2, seed=3, rank=1, world=2).batch(1)
    assert not torch.equal(rank0, rank1)  # DDP ranks see different photos


def test_data_folder_errors(tmp_path):
    with pytest.raises(ImpastoError, match="no such folder of training photos"):
        PhotoBatches(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImpastoError, match="empty: no photos found"):
        PhotoBatches(tmp_path / "empty")


# ---------------------------------------------------------------- training


def test_training_reduces_the_loss(photos, style, tmp_path):
    trainer = Trainer(TINY.replace(steps=12, crop=48), [style], photos, tmp_path / "m.pt")
    fixed = trainer.data.batch(0)
    ids = trainer.style_ids(0)
    with torch.no_grad():
        before = trainer.losses(fixed, ids)
    train(trainer)
    with torch.no_grad():
        after = trainer.losses(fixed, ids)
    assert after["style"] < 0.6 * before["style"]  # measured: 0.35
    assert after["total"] < 0.7 * before["total"]  # measured: 0.40
    assert load_model(tmp_path / "m.pt").meta["steps"] == 12


def test_resume_continues_exactly(photos, style, tmp_path):
    straight = Trainer(TINY, [style], photos, tmp_path / "a.pt")
    train(straight)
    first = Trainer(TINY.replace(steps=2), [style], photos, tmp_path / "b.pt")
    train(first)  # stops after step 2, checkpoint written
    resumed = Trainer(TINY, [style], photos, tmp_path / "b.pt")
    resumed.resume()
    assert resumed.step == 2
    train(resumed)
    for key, value in straight.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key


def test_resume_refuses_another_run(photos, style, tmp_path):
    train(Trainer(TINY.replace(steps=2), [style], photos, tmp_path / "c.pt"))
    other = Trainer(TINY.replace(crop=40), [style], photos, tmp_path / "c.pt")
    with pytest.raises(ImpastoError, match="checkpoint was trained with"):
        other.resume()
    with pytest.raises(ImpastoError, match="no checkpoint to resume from"):
        Trainer(TINY, [style], photos, tmp_path / "none.pt").resume()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_rank(rank, world, port, photos, style, folder):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    from impasto.fast.train import close_distributed

    trainer = Trainer(TINY.replace(steps=1), [style], photos, folder / "ddp.pt")
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    train(trainer)
    torch.save({"before": before, "after": trainer.net.state_dict(), "photos": trainer.data.batch(0)},
               folder / f"rank{rank}.pt")
    close_distributed()


def test_ddp_two_processes_hold_identical_weights(photos, style, tmp_path):
    torch.multiprocessing.spawn(_ddp_rank, args=(2, _free_port(), photos, style, tmp_path), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert not torch.equal(r0["photos"], r1["photos"])  # each rank trained on its own photos
    for key in r0["after"]:
        assert torch.equal(r0["after"][key], r1["after"][key]), key
    assert any(not torch.equal(r0["before"][k], r0["after"][k]) for k in r0["after"])
    assert (tmp_path / "ddp.pt").exists()  # rank 0 wrote the model


# ---------------------------------------------------------------- commands


def _train_cli(photos, style, out, *extra):
    return run_cli("train", style, "--data", photos, "-o", out, "--width", 0.25, "--steps", 2, "--batch", 2,
                   "--crop", 32, "--style-size", 48, "--preview-every", 1, *extra)


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


def test_fast_keeps_colours_with_luminance(tmp_path):
    from impasto.image import color
    from impasto.image.imageio import load_image

    torch.manual_seed(2)
    model = save_model(FastModel(TransformNet(0.25), ["s"]), tmp_path / "m.pt")
    photo = tmp_path / "photo.png"
    Image.open(EXAMPLES / "tubingen.jpg").convert("RGB").resize((40, 30)).save(photo)
    code, _, err = run_cli("fast", model, photo, "-o", tmp_path / "out.png", "--color", "luminance")
    assert code == 0, err
    chroma_in = color.rgb_to_yiq(load_image(photo))[:, 1:]
    chroma_out = color.rgb_to_yiq(load_image(tmp_path / "out.png"))[:, 1:]
    assert (chroma_in - chroma_out).abs().mean() < 0.02


@pytest.mark.parametrize("args, message", [
    (["fast", "nomodel", "photo.png", "-o", "o.png"], "nomodel: no such model file or bundled model"),
    (["fast", "M", "missing.jpg", "-o", "o.png"], "missing.jpg: file not found"),
    (["fast", "M", "photo.png", "-o", "o.png", "--mix", "0.5,0.5"], "--mix: 2 weights for a model of 1 styles"),
    (["fast", "M", "photo.png", "photo.png", "-o", "o.png"], "need an output folder"),
    (["train", "S", "--data", "nodir", "-o", "m.pt"], "nodir: no such folder of training photos"),
    (["train", "S", "--data", ".", "-o", "m.txt"], "m.txt: model file must end in .pt"),
    (["train", "nostyle.jpg", "--data", ".", "-o", "m.pt"], "nostyle.jpg: file not found"),
])
def test_bad_input_is_one_line(tmp_path, style, args, message):
    torch.manual_seed(3)
    save_model(FastModel(TransformNet(0.25), ["s"]), tmp_path / "M")
    Image.new("RGB", (20, 20)).save(tmp_path / "photo.png")
    args = [str(style) if a == "S" else a for a in args]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, out, err = run_cli(*args)
    finally:
        os.chdir(cwd)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_torchrun_trains_with_two_processes(photos, style, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "ddp.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--master_port", str(_free_port()), "-m", "impasto", "train", str(style),
                           "--data", str(photos), "-o", str(out), "--width", "0.25", "--steps", "2",
                           "--batch", "1", "--crop", "32", "--style-size", "48", "--preview-every", "0",
                           "--quiet"], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    model = load_model(out)
    assert model.meta["world_size"] == 2 and model.meta["steps"] == 2


def test_bundled_models_work_out_of_the_box(tmp_path, small_images):
    from impasto.fast.model import bundled_models
    from impasto.image.imageio import load_image

    assert {"starry_night", "kandinsky"} <= set(bundled_models())
    for name in ("starry_night", "kandinsky"):
        model = load_model(name)
        assert model.styles == [name] and model.net.width == 0.5
        out = tmp_path / f"{name}.png"
        code, _, err = run_cli("fast", "--model", name, small_images["tubingen"], "-o", out)
        assert code == 0, err
        photo, painted = (load_image(p) for p in (small_images["tubingen"], out))
        assert painted.shape == photo.shape
        assert (painted - photo).abs().mean() > 0.04  # really restyled, not a copy of the photo


def test_ctrl_c_keeps_the_model_and_a_checkpoint(photos, style, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "m.pt"
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "train", str(style), "--data", str(photos),
                             "-o", str(out), "--width", "0.25", "--steps", "100000", "--batch", "1",
                             "--crop", "32", "--style-size", "48", "--checkpoint-every", "2",
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
