"""Tests of impasto.fast.data: batches of training photos skip corrupt files and are the same for the same seed."""

import pytest
import torch

from impasto.errors import ImpastoError
from impasto.fast.data import PhotoBatches


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
