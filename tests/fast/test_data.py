"""Tests of impasto.fast.data: batches of training photos skip corrupt files and are the same for the same seed."""

import pytest
import torch

from impasto.errors import ImpastoError
from impasto.fast.data import SCALE_JITTER, PhotoBatches, scaled_size


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


# ---------------------------------------------------------------- frame pairs (the temporal loss)

def _moving_frames(folder, shifts=((1, 0), (2, 1), (0, 2), (-1, 1))):
    """Pairs cut from the example photo, the second window moved by (dx, dy) px: the content moves by
    (-dx, -dy), so the backward flow (t -> t-1) is (dx, dy) everywhere; in the loader's layout."""
    from conftest import EXAMPLES
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    img = Image.open(EXAMPLES / "tubingen.jpg").convert("RGB").resize((160, 120))
    for i, (dx, dy) in enumerate(shifts):
        x, y = 20 + 10 * i, 10 + 5 * i
        img.crop((x, y, x + 80, y + 70)).save(folder / f"clip__{i:05d}_0.png")
        img.crop((x + dx, y + dy, x + dx + 80, y + dy + 70)).save(folder / f"clip__{i:05d}_1.png")
    return folder


def test_frame_pairs_are_found_by_name(tmp_path):
    from impasto.fast.data import find_frame_pairs

    folder = _moving_frames(tmp_path / "frames", shifts=((1, 0), (0, 1)))
    (folder / "lonely__00009_0.png").write_bytes((folder / "clip__00000_0.png").read_bytes())  # no frame 1
    (folder / "photo.png").write_bytes((folder / "clip__00000_0.png").read_bytes())
    pairs = find_frame_pairs(folder)
    assert [(a.name, b.name) for a, b in pairs] == [("clip__00000_0.png", "clip__00000_1.png"),
                                                    ("clip__00001_0.png", "clip__00001_1.png")]
    with pytest.raises(ImpastoError, match="no such folder of frame pairs"):
        find_frame_pairs(tmp_path / "missing")
    (tmp_path / "none").mkdir()
    with pytest.raises(ImpastoError, match="no frame pairs found"):
        find_frame_pairs(tmp_path / "none")


def test_frame_pairs_are_cropped_alike_deterministic_and_computed_once(tmp_path, monkeypatch):
    from impasto.fast.data import FramePairs
    from impasto.image import flow as flow_module

    folder = _moving_frames(tmp_path / "frames")
    calls = []
    real_flow = flow_module.flow
    monkeypatch.setattr(flow_module, "flow", lambda a, b, preset="medium": calls.append(1) or real_flow(a, b, preset))
    data = FramePairs(folder, crop=40, batch=3, seed=5)
    previous, current, backward, mask = data.batch(0)
    assert previous.shape == current.shape == (3, 3, 40, 40)
    assert backward.shape == (3, 40, 40, 2) and mask.shape == (3, 1, 40, 40)
    assert 0 <= mask.min() and mask.max() <= 1 and mask.mean() > 0.5
    # the same window on both frames: frame t-1 warped along the flow is frame t where the flow is reliable
    warped = torch.cat([flow_module.warp(previous[i:i + 1], backward[i]) for i in range(3)])
    moved = (mask * (warped - current).abs()).mean()
    assert moved < 0.35 * (mask * (previous - current).abs()).mean()
    assert len(calls) == 2 * 3  # backward and forward flow of each pair
    for step in range(1, 4):  # 12 pairs drawn: three epochs of the 4 pairs, each pair's crop the same every time
        data.batch(step)
    assert len(calls) == 2 * 4  # every flow computed once
    again = FramePairs(folder, crop=40, batch=3, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(again.batch(0), (previous, current, backward, mask)))
    assert not torch.equal(FramePairs(folder, crop=40, batch=3, seed=6).batch(0)[0], previous)


def test_frame_pairs_skip_unreadable_frames(tmp_path):
    from impasto.fast.data import FramePairs

    folder = _moving_frames(tmp_path / "frames", shifts=((1, 0), (0, 1)))
    (folder / "clip__00001_1.png").write_bytes(b"not a png")
    data = FramePairs(folder, crop=24, batch=2, seed=0)
    previous, current, _, _ = data.batch(0)  # the readable pair takes the broken one's place
    assert torch.equal(previous[0], previous[1]) and torch.equal(current[0], current[1])
    assert sorted(p.name for p in data.skipped) == ["clip__00001_0.png", "clip__00001_1.png"]


def test_photos_are_scaled_to_the_side_the_network_is_made_for():
    """The long side lands in --side x SCALE_JITTER, the aspect kept; the short side never below the crop."""
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        w, h = scaled_size((1600, 1200), 512, 256, g)
        assert 512 * SCALE_JITTER[0] - 1 <= w <= 512 * SCALE_JITTER[1] + 1 and abs(w / h - 4 / 3) < 0.01
    s = torch.rand((), generator=torch.Generator().manual_seed(7)).item()  # the first draw decides the scale
    expected = SCALE_JITTER[0] + (SCALE_JITTER[1] - SCALE_JITTER[0]) * s
    assert scaled_size((1000, 500), 400, 100, torch.Generator().manual_seed(7)) == (round(400 * expected),
                                                                                  round(200 * expected))
    assert scaled_size((2000, 400), 512, 256, g) == (1280, 256)  # a panorama: its short side set by the crop
