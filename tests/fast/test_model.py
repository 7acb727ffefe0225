"""Tests of impasto.fast.model: a model file round trips, bad model files are named."""

import pytest
import torch

from impasto.errors import ImpastoError
from impasto.fast.model import FastModel, load_model, save_model
from impasto.fast.network import TransformNet


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
