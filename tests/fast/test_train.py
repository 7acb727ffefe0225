"""Tests of impasto.fast.train: Gram matrices by hand, training, checkpoints and resume, DDP; tiny, on the real VGG-19."""

import os

import pytest
import torch

from conftest import _free_port
from impasto.config import TrainConfig
from impasto.errors import ImpastoError
from impasto.fast.model import load_model
from impasto.fast.train import Trainer, batch_gram, train


TINY = TrainConfig(width=0.25, steps=4, batch=2, crop=32, side=48, checkpoint_every=2, preview_every=0)


def test_batch_gram_by_hand():
    f = torch.tensor([[1.0, 2.0], [0.0, 3.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[5.0, 6.0], [6.0, 9.0]]) / 2  # over M = 2 positions
    assert torch.equal(batch_gram(f)[0], expected)


def test_training_objective_is_the_transfers_on_a_whole_photo(photos, style, tmp_path):
    """The loss a network is trained on, on a whole photo, is the objective `impasto transfer` minimises
    (eq. 1, 4, 5, 7 with the per-position content scale, w_l = 1/5, alpha/beta = 1e-3), term by term."""
    from impasto.image.imageio import fit_long_side, load_image
    from impasto.loss.terms import (REFERENCE_SIDE, Objective, content_scale, content_targets, content_term, pixels,
                                    style_targets, style_term)

    config = TINY.replace(side=40)
    trainer = Trainer(config.replace(precision="fp32"), [style], photos, tmp_path / "o.pt")
    photo = load_image(sorted((photos / "sub").glob("*.jpg"))[0], long_side=40)
    with torch.no_grad():
        out = trainer.net.eval()(photo, torch.ones(1))
        ours = trainer.losses(photo, torch.tensor([0]), trainer.net, crops=False)
    vgg = trainer.vgg
    area = photo.shape[-1] * photo.shape[-2]
    scale = content_scale("per-position", area, area, pixels(fit_long_side((photo.shape[-1], photo.shape[-2]),
                                                                          REFERENCE_SIDE)))
    painting = load_image(style, long_side=40)
    terms = [content_term(content_targets(vgg, photo, [config.content_layer]), [1.0], 1.0, scale=scale),
             style_term(style_targets(vgg, [painting], [1.0], config.style_layers), [0.2] * 5, 1e3)]
    _, theirs = Objective(vgg, terms)(out)  # its figures per term unweighted, the total weighted
    assert float(ours["content"]) == pytest.approx(theirs["content"], rel=1e-4)
    assert float(ours["style"]) == pytest.approx(1e3 * theirs["style"], rel=1e-4)
    assert float(ours["total"]) == pytest.approx(theirs["total"], rel=1e-4)


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


def test_init_model_starts_from_its_weights(photos, style, tmp_path):
    train(Trainer(TINY.replace(steps=2), [style], photos, tmp_path / "first.pt"))
    tuned = Trainer(TINY.replace(init_model=str(tmp_path / "first.pt")), [style], photos, tmp_path / "tuned.pt")
    first = load_model(tmp_path / "first.pt").net.state_dict()
    assert all(torch.equal(v, first[k]) for k, v in tuned.net.state_dict().items())
    assert tuned.step == 0  # a new run: its own steps and optimiser
    with pytest.raises(ImpastoError, match="first.pt: a model of width 0.25 for 1 style"):
        Trainer(TINY.replace(width=0.5, init_model=str(tmp_path / "first.pt")), [style], photos, tmp_path / "x.pt")


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
    config = TINY.replace(steps=6, crop=48, val_data=str(val), val_every=2)
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
        own = [trainer.losses(p, torch.tensor([0]), trainer.net, crops=False)["total"] for p in trainer.validation.photos()]
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


# ---------------------------------------------------------------- the temporal term (issue 24)

def test_temporal_loss_by_hand():
    from impasto.fast.train import temporal_loss

    previous = torch.arange(9.0, dtype=torch.float64).view(1, 1, 3, 3).expand(1, 3, 3, 3).contiguous()
    current = previous.clone()
    backward = torch.zeros(1, 3, 3, 2, dtype=torch.float64)
    backward[..., 0] = 1.0  # W(O)(x) = O(x + 1): rows [1 2 2], [4 5 5], [7 8 8] (border replicate)
    mask = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]], dtype=torch.float64).view(1, 1, 3, 3)
    # current - warped = -1, -1, 0 in every row; c · that² sums to 1 + 2 + 0 = 3 per channel; D = 27
    assert temporal_loss(previous, current, backward, mask).item() == pytest.approx(9 / 27, abs=1e-15)
    # a half-pixel shift down: W(O)(x) = (O(x) + O(x + one row)) / 2, the last row replicated
    backward = torch.zeros(1, 3, 3, 2, dtype=torch.float64)
    backward[..., 1] = 0.5
    ones = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    # differences: -1.5 on the first two rows, 0 on the last: 6 · 2.25 per channel over 9 pixels
    assert temporal_loss(previous, current, backward, ones).item() == pytest.approx(6 * 2.25 / 9, abs=1e-12)


def test_temporal_loss_gradient_and_warp_agree_with_the_video_code():
    from impasto.fast.train import temporal_loss
    from impasto.image.flow import warp

    g = torch.Generator().manual_seed(0)
    previous = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    current = torch.rand(2, 3, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    backward = (torch.rand(2, 5, 6, 2, generator=g, dtype=torch.float64) - 0.5) * 3.3  # not whole pixels
    mask = torch.rand(2, 1, 5, 6, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p, c: temporal_loss(p, c, backward, mask), (previous, current))
    # the warp is impasto.image.flow.warp, sample by sample
    with torch.no_grad():
        by_hand = torch.stack([(mask[i] * (current[i] - warp(previous[i:i + 1], backward[i])[0]) ** 2).mean()
                               for i in range(2)]).mean()
        assert temporal_loss(previous, current, backward, mask).item() == pytest.approx(by_hand.item(), rel=1e-12)
    with pytest.raises(ValueError, match="want a flow of"):
        temporal_loss(previous, current, backward[:, :4], mask)


def _frames(tmp_path):
    """Four pairs cut from the example photo, the second window moved by 1-2 px (as tests/fast/test_data.py)."""
    from conftest import EXAMPLES
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    img = Image.open(EXAMPLES / "tubingen.jpg").convert("RGB").resize((160, 120))
    for i, (dx, dy) in enumerate(((1, 0), (2, 1), (0, 2), (-1, 1))):
        x, y = 20 + 10 * i, 10 + 5 * i
        img.crop((x, y, x + 80, y + 70)).save(folder / f"clip__{i:05d}_0.png")
        img.crop((x + dx, y + dy, x + dx + 80, y + dy + 70)).save(folder / f"clip__{i:05d}_1.png")
    return folder


def _temporal(trainer, pairs, ids):
    """The unweighted temporal loss of the trainer's network on ``pairs`` in the styles ``ids``."""
    from impasto.fast.train import temporal_loss

    mix = torch.nn.functional.one_hot(ids, len(trainer.style_names)).float()
    with torch.no_grad():
        return float(temporal_loss(trainer.net(pairs[0], mix), trainer.net(pairs[1], mix), pairs[2], pairs[3]))


def test_training_with_the_temporal_term_lowers_it(photos, style, tmp_path):
    from impasto.fast.data import FramePairs

    frames = _frames(tmp_path)
    config = TINY.replace(steps=12, crop=48, frames=str(frames))
    steady = Trainer(config.replace(temporal_weight=150.0), [style], photos, tmp_path / "t.pt")
    plain = Trainer(config, [style], photos, tmp_path / "p.pt")  # weight 0: the term is off
    assert plain.pairs is None
    fixed, ids = FramePairs(frames, crop=48, batch=2, seed=1).batch(0), torch.tensor([0, 0])
    before = _temporal(steady, fixed, ids)
    assert before == pytest.approx(_temporal(plain, fixed, ids))  # the same initial weights
    events = []
    train(steady, callback=events.append)
    train(plain)
    after, without = _temporal(steady, fixed, ids), _temporal(plain, fixed, ids)
    assert after < 0.7 * before  # measured: 0.53 (crops of other windows than the trained ones)
    assert after < 0.85 * without  # measured: 0.72 (weight 0, style and content alone: 0.73 of before)
    assert "temporal" in events[-1].losses and events[-1].losses["temporal"] > 0
    with torch.no_grad():
        terms = steady.losses(steady.data.batch(0), steady.style_ids(0), pairs=steady.pairs.batch(0))
    assert float(terms["total"]) == pytest.approx(sum(float(v) for k, v in terms.items() if k != "total"), rel=1e-5)


def test_temporal_weight_zero_trains_as_before(photos, style, tmp_path):
    frames = _frames(tmp_path)
    before = Trainer(TINY, [style], photos, tmp_path / "a.pt")  # no --frames at all
    train(before)
    off = Trainer(TINY.replace(frames=str(frames), temporal_weight=0.0), [style], photos, tmp_path / "b.pt")
    train(off)
    for key, value in before.net.state_dict().items():
        assert torch.equal(value, off.net.state_dict()[key]), key


def test_temporal_weight_needs_frames(photos, style, tmp_path):
    with pytest.raises(ImpastoError, match="--temporal-weight needs --frames"):
        Trainer(TINY.replace(temporal_weight=1.0), [style], photos, tmp_path / "x.pt")
    with pytest.raises(ImpastoError, match="no such folder of frame pairs"):
        Trainer(TINY.replace(temporal_weight=1.0, frames=str(tmp_path / "none")), [style], photos, tmp_path / "x.pt")


def test_temporal_training_resumes_exactly_and_from_an_older_checkpoint(photos, style, tmp_path):
    config = TINY.replace(frames=str(_frames(tmp_path)), temporal_weight=50.0)
    straight = Trainer(config, [style], photos, tmp_path / "a.pt")
    train(straight)
    first = Trainer(config.replace(steps=2), [style], photos, tmp_path / "b.pt")
    train(first)
    resumed = Trainer(config, [style], photos, tmp_path / "b.pt")
    resumed.resume()
    train(resumed)
    for key, value in straight.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[key]), key
    # a checkpoint written before the temporal term (no "frames_skipped") resumes with it on
    train(Trainer(TINY.replace(steps=2), [style], photos, tmp_path / "c.pt"))
    path = tmp_path / "c.pt.ckpt"
    state = torch.load(path, weights_only=True)
    del state["frames_skipped"]
    torch.save(state, path)
    old = Trainer(config, [style], photos, tmp_path / "c.pt")
    old.resume()
    assert old.step == 2
    train(old)
    assert load_model(tmp_path / "c.pt").meta["steps"] == 4


def _ddp_temporal_rank(rank, world, port, photos, style, frames, folder):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    from impasto.fast.train import close_distributed

    config = TINY.replace(steps=1, frames=str(frames), temporal_weight=100.0)
    trainer = Trainer(config, [style], photos, folder / "ddp.pt")
    train(trainer)
    torch.save({"after": trainer.net.state_dict(), "frames": trainer.pairs.batch(0)[0]}, folder / f"rank{rank}.pt")
    close_distributed()


def test_ddp_with_the_temporal_term(photos, style, tmp_path):
    frames = _frames(tmp_path)
    torch.multiprocessing.spawn(_ddp_temporal_rank, args=(2, _free_port(), photos, style, frames, tmp_path), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert not torch.equal(r0["frames"], r1["frames"])  # each rank its own frame pairs
    for key in r0["after"]:
        assert torch.equal(r0["after"][key], r1["after"][key]), key


def test_the_learning_rate_halves_on_schedule_and_resumes_on_it(photos, style, tmp_path):
    """--lr-halving 2: steps 0-1 at lr, 2-3 at lr/2, 4 at lr/4; a run resumed at step 3 with the
    schedule follows it (the checkpoint's optimiser held the old rate)."""
    trainer = Trainer(TINY.replace(steps=5, lr_halving=2), [style], photos, tmp_path / "a.pt")
    assert [trainer.lr_at(s) / TINY.lr for s in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    train(trainer)
    assert trainer.optimizer.param_groups[0]["lr"] == TINY.lr / 4
    first = Trainer(TINY.replace(steps=3), [style], photos, tmp_path / "b.pt")
    train(first)                                                    # constant rate up to step 3
    resumed = Trainer(TINY.replace(steps=4, lr_halving=2), [style], photos, tmp_path / "b.pt")
    resumed.resume()
    train(resumed)
    assert resumed.optimizer.param_groups[0]["lr"] == TINY.lr / 2   # step 3 of the schedule
