"""Tests of impasto.fast.train: Gram matrices by hand, training, checkpoints and resume, DDP; tiny, on the real VGG-19."""

import os

import pytest
import torch

from conftest import _free_port
from impasto.config import TrainConfig
from impasto.errors import ImpastoError
from impasto.fast.model import load_model
from impasto.fast.train import Trainer, batch_gram, train


TINY = TrainConfig(width=0.25, steps=4, batch=2, crop=32, style_size=48, checkpoint_every=2, preview_every=0)


def test_batch_gram_by_hand():
    f = torch.tensor([[1.0, 2.0], [0.0, 3.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[5.0, 6.0], [6.0, 9.0]]) / 4
    assert torch.equal(batch_gram(f)[0], expected)


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


# ---------------------------------------------------------------- the validation curve

def _validation_photos(photos, tmp_path):
    """Two photos of the fixture's folder, copied apart: validation photos are never trained on."""
    import shutil

    folder = tmp_path / "val"
    folder.mkdir()
    for source in sorted((photos / "sub").glob("*.jpg"))[:2]:
        shutil.copy(source, folder / source.name)
    return folder


def test_validation_curve_is_measured_kept_and_resumed(photos, style, tmp_path):
    val = _validation_photos(photos, tmp_path)
    config = TINY.replace(steps=6, crop=48, val_data=str(val), val_every=2, val_side=40)
    events = []
    trainer = Trainer(config.replace(steps=4), [style], photos, tmp_path / "v.pt")
    train(trainer, callback=events.append)
    assert [p["step"] for p in trainer.curve] == [2, 4]
    shown = [e for e in events if e.extra]
    assert [e.done for e in shown] == [2 * 2, 4 * 2] and all(e.losses == {} for e in shown)  # no unit counted
    assert set(shown[-1].extra) == {"val_content", "val_style", "val_total"}
    # the figures are the mean loss of the network on the whole validation photos (eval mode, no gradient)
    with torch.no_grad():
        trainer.net.eval()
        own = [trainer.losses(p, torch.tensor([0]), trainer.net)["total"] for p in trainer.validation.photos()]
    assert shown[-1].extra["val_total"] == pytest.approx(float(sum(own) / len(own)), rel=1e-5)
    assert load_model(tmp_path / "v.pt").meta["validation"] == trainer.curve
    resumed = Trainer(config, [style], photos, tmp_path / "v.pt")
    resumed.resume()
    train(resumed)
    assert [p["step"] for p in resumed.curve] == [2, 4, 6]
    assert resumed.curve[:2] == trainer.curve
    assert resumed.curve[-1]["total"] < resumed.curve[0]["total"]  # the network learns what it is shown


def test_validation_photos_are_read_before_training(photos, style, tmp_path):
    val = _validation_photos(photos, tmp_path)
    (val / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ImpastoError, match="broken.jpg"):
        Trainer(TINY.replace(val_data=str(val)), [style], photos, tmp_path / "w.pt")
    with pytest.raises(ImpastoError, match="no such folder"):
        Trainer(TINY.replace(val_data=str(tmp_path / "none")), [style], photos, tmp_path / "w.pt")
