"""Tests of impasto.fast.network: the transform network keeps any size, conditional instance norm mixes styles exactly."""

import pytest
import torch

from impasto.fast.network import CondInstanceNorm, TransformNet


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
