"""Optical flow, warping, reliability and warping error (impasto.image.flow) on synthetic frames
whose true motion is known exactly."""

import math

import numpy as np
import pytest
import torch

from impasto.image import flow as vf

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 72, 96


def texture(h, w, shift=(0.0, 0.0), seed=0, n=24):
    """A smooth colour texture defined everywhere (a sum of random plane waves, wavelengths
    6-20 px), sampled at ``(x - dx, y - dy)``: the content moved by ``shift = (dx, dy)`` px."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = x - shift[0], y - shift[1]
    channels = []
    for _ in range(3):
        v = np.zeros((h, w))
        for _ in range(n):
            angle = rng.uniform(0, 2 * math.pi)
            k = 1.0 / rng.uniform(6, 20)
            v += rng.uniform(0.5, 1.0) * np.cos(2 * math.pi * k * (math.cos(angle) * x + math.sin(angle) * y)
                                              + rng.uniform(0, 2 * math.pi))
        channels.append(v)
    v = np.stack(channels, axis=2)
    v = (v - v.min()) / (v.max() - v.min())
    return np.round(20 + 215 * v).astype(np.uint8)


def taps():
    """The blur of Ruder et al.'s consistencyChecker, from its definition: σ 0.8, radius ceil(1.6)."""
    t = np.exp(-np.arange(-2, 3) ** 2 / (2 * 0.8 ** 2))
    return t / t.sum()


# ---------------------------------------------------------------- flow

@pytest.mark.parametrize("shift", [(3.0, 2.0), (1.5, -0.75), (-2.25, 1.0)])
def test_flow_recovers_a_known_shift(shift):
    a = texture(H, W)
    b = texture(H, W, shift=shift)  # b(x) = a(x - d): a(x) = b(x + d), the flow from a to b is d
    f = vf.flow(a, b)
    assert f.shape == (H, W, 2) and f.dtype == np.float32
    inner = f[10:-10, 10:-10]
    err = np.abs(inner - np.array(shift, dtype=np.float32))
    assert np.median(err) < 0.05
    assert err.max() < 0.2
    # the other way round: the opposite shift
    g = vf.flow(b, a)[10:-10, 10:-10]
    assert np.abs(g + np.array(shift, dtype=np.float32)).max() < 0.2

    # the next frame warped back onto this one reproduces it where the flow is reliable
    mask = vf.reliability(f, vf.flow(b, a))
    back = vf.warp(b, f)
    assert back.dtype == np.float32
    reliable = mask > 0.99
    assert reliable[10:-10, 10:-10].all()
    diff = np.abs(back - a.astype(np.float32))[reliable]
    assert diff.mean() < 2.5 and np.percentile(diff, 99) < 8  # of 0-255 (bilinear blurs a little)
    # the pixels whose counterpart lies outside the next frame are not reliable (0 before the
    # blur, as in the original; the blur lifts a thin strip of them a little)
    binary = vf.reliability(f, vf.flow(b, a), blur=False)
    dx, dy = shift
    edge_x = slice(W - math.ceil(dx), None) if dx > 0 else slice(0, math.ceil(-dx))
    edge_y = slice(0, math.ceil(-dy)) if dy < 0 else slice(H - math.ceil(dy), None)
    assert (binary[:, edge_x] == 0).all() and (binary[edge_y] == 0).all()
    assert mask[:, edge_x].max() < 0.3 and mask[edge_y].max() < 0.3


def test_guide_at_the_frames_size_is_flow_and_reliability():
    a, b = texture(H, W), texture(H, W, shift=(2.0, -1.0))
    back, mask = vf.guide(b, a, side=0, preset="medium")
    assert np.array_equal(back, vf.flow(b, a))
    assert np.array_equal(mask, vf.reliability(back, vf.flow(a, b)))


@pytest.mark.parametrize("preset", ["ultrafast", "fast", "medium"])
def test_guide_computed_small_gives_the_motion_at_full_size(preset):
    """The fast mode's guide: flow and reliability made at a long side of 48 px for 96 px frames,
    then brought back; the flow is scaled to full-size pixels (a 4 px shift stays 4 px)."""
    shift = (4.0, -2.0)
    a, b = texture(H, W), texture(H, W, shift=shift)  # b(x) = a(x - d): the flow from b back to a is -d
    back, mask = vf.guide(b, a, side=48, preset=preset)
    assert back.shape == (H, W, 2) and mask.shape == (H, W) and back.dtype == np.float32
    inner = back[16:-16, 16:-16]
    assert np.median(np.abs(inner + np.array(shift, dtype=np.float32))) < 0.5
    assert mask[16:-16, 16:-16].mean() > 0.9 and 0 <= mask.min() and mask.max() <= 1
    assert mask[:, :3].mean() < 0.5  # what enters at the left edge has no counterpart: not reliable


def test_flows_pairs_each_frame_once():
    frames = [texture(24, 32, shift=(i, 0)) for i in range(3)]
    pairs = vf.flows(frames)
    assert len(pairs) == 2
    for t in (1, 2):
        back, fwd = pairs[t - 1]
        np.testing.assert_array_equal(back, vf.flow(frames[t], frames[t - 1]))
        np.testing.assert_array_equal(fwd, vf.flow(frames[t - 1], frames[t]))


def test_flow_wants_uint8_frames_of_one_size():
    a = texture(24, 32)
    with pytest.raises(TypeError):
        vf.flow(a.astype(np.float32) / 255, a)
    with pytest.raises(ValueError):
        vf.flow(a, a[:-1])


# ---------------------------------------------------------------- warp

def test_warp_integer_flow_is_an_exact_shift():
    rng = np.random.default_rng(1)
    image = rng.random((H, W, 3)).astype(np.float32)
    f = np.zeros((H, W, 2), np.float32)
    f[..., 0], f[..., 1] = 3, -2  # out(y, x) = image(y - 2, x + 3)
    out = vf.warp(image, f)
    expected = np.roll(image, shift=(2, -3), axis=(0, 1))
    np.testing.assert_array_equal(out[2:, :-3], expected[2:, :-3])
    # border replicate: the last column repeats, the first rows take row 0
    np.testing.assert_array_equal(out[2:, -3:], np.repeat(image[:-2, -1:], 3, axis=1))
    np.testing.assert_array_equal(out[:2, :-3], np.repeat(image[:1, 3:], 2, axis=0))

    # a different integer motion per pixel: a plain gather
    g = rng.integers(-3, 4, size=(H, W, 2)).astype(np.float32)
    ys, xs = np.mgrid[0:H, 0:W]
    gathered = image[np.clip(ys + g[..., 1].astype(int), 0, H - 1), np.clip(xs + g[..., 0].astype(int), 0, W - 1)]
    np.testing.assert_array_equal(vf.warp(image, g), gathered)

    # half a pixel: the mean of the two neighbours
    half = np.zeros((H, W, 2), np.float32)
    half[..., 0] = 0.5
    np.testing.assert_allclose(vf.warp(image, half)[:, :-1], (image[:, :-1] + image[:, 1:]) / 2, atol=1e-6)


def test_warp_numpy_and_torch_agree():
    rng = np.random.default_rng(2)
    image = rng.random((H, W, 3)).astype(np.float32)
    f = rng.uniform(-4, 4, size=(H, W, 2)).astype(np.float32)
    f[:5] = rng.uniform(-20, 20, size=(5, W, 2))  # well outside the frame: border replicate
    out = vf.warp(image, f)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
    out_t = vf.warp(tensor, f)
    assert isinstance(out_t, torch.Tensor) and out_t.shape == (1, 3, H, W) and out_t.dtype == torch.float32
    np.testing.assert_allclose(out_t[0].permute(1, 2, 0).numpy(), out, atol=1e-4)
    # a torch flow too, and the integer shift exact up to float rounding
    f = np.zeros((H, W, 2), np.float32)
    f[..., 0], f[..., 1] = -1, 2
    out_t = vf.warp(tensor, torch.from_numpy(f))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out_t[:-2, 1:], image[2:, :-1], atol=1e-4)


def test_warp_uint8_and_gray():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(8, 9, 3), dtype=np.uint8)
    f = np.zeros((8, 9, 2), np.float32)
    out = vf.warp(image, f)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, image.astype(np.float32))
    np.testing.assert_array_equal(vf.warp(image[..., 0], f), image[..., 0].astype(np.float32))
    with pytest.raises(ValueError):
        vf.warp(image, f[:-1])


# ---------------------------------------------------------------- reliability

def test_reliability_by_hand_disocclusion_and_blur():
    # ŵ = 0; w = 3 px to the right on a 6×6 block: there w̃ + ŵ = (3, 0), 9 >= 0.01·9 + 0.5
    back = np.zeros((30, 40, 2), np.float32)
    fwd = np.zeros_like(back)
    fwd[10:16, 10:16, 0] = 3
    binary = vf.reliability(back, fwd, blur=False)
    expected = np.ones((30, 40), np.float32)
    expected[10:16, 10:16] = 0
    np.testing.assert_array_equal(binary, expected)

    c = vf.reliability(back, fwd)
    assert c.dtype == np.float32 and c.shape == (30, 40)
    t = taps()
    assert (c[10:16, 10:16] == 0).all()  # the -1 of a hole two or more pixels wide clips to 0
    assert c[12, 16] == pytest.approx(t[2], abs=1e-6)  # next to the hole: 1 - 2 (t1 + t2) = t0
    assert c[12, 17] == pytest.approx(1 - 2 * t[4], abs=1e-6)  # two off: 1 - 2 t2
    assert c[11:15, 18:].min() == pytest.approx(1, abs=1e-6)
    assert c[:7].min() == pytest.approx(1, abs=1e-6) and c[19:].min() == pytest.approx(1, abs=1e-6)
    assert c[8, 13] == pytest.approx(1 - 2 * t[4], abs=1e-6)  # above the hole, two rows off
    assert c[7, 13] == pytest.approx(1, abs=1e-6)
    # zero flow everywhere: everything reliable
    np.testing.assert_allclose(vf.reliability(back, back), 1, atol=1e-6)


def test_reliability_by_hand_motion_boundary():
    # ŵ steps from 0 to 1 px (x) at column 20, w consistent with it (w̃ = -ŵ): only the motion
    # boundary (columns 19, 20: |∇û|² = 0.5² > 0.01 |ŵ|² + 0.002) and the last column (its
    # counterpart x + 1 lies outside) are unreliable
    back = np.zeros((12, 32, 2), np.float32)
    back[:, 20:, 0] = 1
    fwd = np.zeros_like(back)
    fwd[:, 21:, 0] = -1
    binary = vf.reliability(back, fwd, blur=False)
    expected = np.ones((12, 32), np.float32)
    expected[:, [19, 20, 31]] = 0
    np.testing.assert_array_equal(binary, expected)
    t = taps()
    c = vf.reliability(back, fwd)
    # a 0 (not -1) boundary blurs up: column 19 sees 1 at 17, 18, 21
    np.testing.assert_allclose(c[:, 19], t[0] + t[1] + t[4], atol=1e-6)
    np.testing.assert_allclose(c[:, 18], 1 - t[3] - t[4], atol=1e-6)


@pytest.mark.parametrize("motion, seeds", [((6, 4), (5, 6)), ((-5, 4), (1, 2))])
def test_reliability_zero_on_what_a_moving_square_reveals(motion, seeds):
    # a textured square moves by ``motion`` over a static textured background (160×120: DIS
    # smears the flow over several pixels round a motion boundary, too much for smaller frames)
    h, w, size, p0 = 120, 160, 40, (60, 40)  # p0: the square's top-left (x, y) in frame 0
    p1 = (p0[0] + motion[0], p0[1] + motion[1])
    background = texture(h, w, seed=seeds[0])
    obj = texture(size, size, seed=seeds[1])
    frames, inside = [], []
    for x0, y0 in (p0, p1):
        f = background.copy()
        f[y0:y0 + size, x0:x0 + size] = obj
        frames.append(f)
        m = np.zeros((h, w), bool)
        m[y0:y0 + size, x0:x0 + size] = True
        inside.append(m)
    revealed = inside[0] & ~inside[1]  # background in frame 1, hidden by the square in frame 0
    dx, dy = map(abs, motion)
    assert revealed.sum() == size * size - (size - dx) * (size - dy)

    c = vf.reliability(vf.flow(frames[1], frames[0]), vf.flow(frames[0], frames[1]))
    assert (c[revealed] == 0).mean() >= 0.95
    assert (c[revealed] < 0.5).mean() >= 0.99
    # the static background away from the square (and from the frame's edge) is reliable
    near = np.zeros((h, w), bool)
    near[min(p0[1], p1[1]) - 6:max(p0[1], p1[1]) + size + 6, min(p0[0], p1[0]) - 6:max(p0[0], p1[0]) + size + 6] = True
    far = ~near
    far[:3], far[-3:], far[:, :3], far[:, -3:] = False, False, False, False
    assert (c[far] > 0.99).mean() >= 0.97
    # and so is the inside of the square, which moved rigidly
    assert (c[p1[1] + 5:p1[1] + size - 5, p1[0] + 5:p1[0] + size - 5] > 0.99).mean() >= 0.95


def test_reliability_in_c_is_the_numpy_form_bit_for_bit():
    """impasto.image._flow does the NumPy form's operations in its order, in double precision and without
    fused multiply-adds: the same float32 values, on DIS flows of a moving texture, on random flows
    (disagreements, boundaries, points leaving the frame) and on frames 1 or 2 pixels wide."""
    assert vf._kernels is not None, "impasto.image._flow did not build: is a C compiler installed?"
    a, b = texture(H, W, seed=3), texture(H, W, shift=(1.5, -2.25), seed=3)
    rng = np.random.default_rng(7)
    back = np.full((H, W, 2), (1.5, -0.75)) + rng.normal(0, 0.05, (H, W, 2))  # a pan, slightly noisy,
    back[20:40, 30:60] = (4.0, 1.0)                                           # an object moving faster
    fwd = -back + rng.normal(0, 0.05, (H, W, 2))
    fwd[50:60, 10:30] = (-9.0, 3.0)                                           # where the flows disagree
    cases = [(vf.flow(b, a), vf.flow(a, b)), (back, fwd)]
    for shape in [(1, 1), (1, 6), (5, 2), (3, 7)]:
        cases.append((rng.normal(0, 2, (*shape, 2)), rng.normal(0, 2, (*shape, 2))))
    for back, fwd in cases:
        for blur in (True, False):
            c, reference = vf.reliability(back, fwd, blur=blur), vf._reliability_numpy(back, fwd, blur=blur)
            assert c.dtype == np.float32 and np.array_equal(c, reference), (back.shape, blur)
    binary, blurred = vf.reliability(*cases[1], blur=False), vf.reliability(*cases[1])
    assert 0.5 < binary.mean() < 0.95 and ((blurred > 0) & (blurred < 1)).any()  # every branch taken


def test_reliability_checks_its_input():
    with pytest.raises(ValueError):
        vf.reliability(np.zeros((4, 5, 2)), np.zeros((4, 6, 2)))


def test_reliability_in_c_checks_its_arrays():
    """A wrong call of impasto.image._flow (too small an array, another dtype, a strided, read-only or missing
    one, an empty frame) raises instead of reading or writing past a buffer."""
    k = vf._kernels
    assert k is not None, "impasto.image._flow did not build"
    h, w, t = 4, 5, taps()
    bw, fw, out = np.zeros((h, w, 2)), np.zeros((h, w, 2)), np.zeros((h, w), np.float32)
    consts = (vf.DISOCCLUSION_REL, vf.DISOCCLUSION_ABS, vf.BOUNDARY_REL, vf.BOUNDARY_ABS, True)
    k.reliability(bw, fw, out, h, w, t, 2, *consts)  # the right call runs
    assert (out == 1).all()

    def raises(error, match, *args):
        with pytest.raises(error, match=match):
            k.reliability(*args, *consts)

    raises(ValueError, "forward has 30 items where the dimensions given want 40", bw, fw[:3].copy(), out, h, w, t, 2)
    raises(ValueError, "out has", bw, fw, out[:, :4].copy(), h, w, t, 2)
    raises(ValueError, "backward has", bw, fw, out, h, w + 1, t, 2)  # another shape
    raises(ValueError, "taps has 5 items where the dimensions given want 7", bw, fw, out, h, w, t, 3)
    raises(TypeError, "backward must be float64", bw.astype(np.float32), fw, out, h, w, t, 2)
    raises(TypeError, "out must be float32", bw, fw, out.astype(np.float64), h, w, t, 2)
    raises(TypeError, "taps must be a float64 array", bw, fw, out, h, w, None, 2)
    raises(TypeError, "forward must be a float64 array", bw, torch.from_numpy(fw), out, h, w, t, 2)
    raises(ValueError, "backward must be C-contiguous", bw.transpose(1, 0, 2), fw.transpose(1, 0, 2), out.T, w, h, t, 2)
    out.flags.writeable = False
    raises(ValueError, "out is written", bw, fw, out, h, w, t, 2)
    raises(ValueError, "at least one pixel", bw[:0], fw[:0], out[:0], 0, w, t, 2)
    raises(ValueError, "negative", bw, fw, out, h, w, t, -1)


# ---------------------------------------------------------------- long-term weights

def test_long_term_weights_closest_first():
    c1 = np.array([[1, 0, 0.5, 0, 0.25]], np.float32)
    c2 = np.array([[1, 1, 0.5, 0, 0.5]], np.float32)
    c4 = np.array([[1, 1, 1, 0.7, 1]], np.float32)
    before = [c.copy() for c in (c1, c2, c4)]
    out = vf.long_term_weights({4: c4, 1: c1, 2: c2})
    assert sorted(out) == [1, 2, 4]
    np.testing.assert_allclose(out[1], c1)
    np.testing.assert_allclose(out[2], [[0, 1, 0, 0, 0.25]], atol=1e-6)
    np.testing.assert_allclose(out[4], [[0, 0, 0, 0.7, 0.25]], atol=1e-6)  # c4 - c1 - c2, at least 0
    assert all(o.dtype == np.float32 for o in out.values())
    for c, b in zip((c1, c2, c4), before):
        np.testing.assert_array_equal(c, b)
    # their Lua code subtracts the already reduced weights instead
    orig = vf.long_term_weights({1: c1, 2: c2, 4: c4}, scheme="original")
    np.testing.assert_allclose(orig[2], out[2], atol=1e-6)
    np.testing.assert_allclose(orig[4], [[0, 0, 0.5, 0.7, 0.5]], atol=1e-6)
    # binary masks: both the same, each pixel counted once, for the nearest reliable frame
    m = {1: np.array([[1, 0, 0, 0]], np.float32), 2: np.array([[1, 1, 0, 0]], np.float32),
         3: np.array([[1, 1, 1, 0]], np.float32)}
    for scheme in ("paper", "original"):
        w = vf.long_term_weights(m, scheme=scheme)
        np.testing.assert_array_equal(np.stack([w[1], w[2], w[3]]), np.eye(4, dtype=np.float32)[:3, None, :])
    # one gap: unchanged
    np.testing.assert_array_equal(vf.long_term_weights({1: c2})[1], c2)


# ---------------------------------------------------------------- warping error

def test_warping_error_by_hand_zero_flow():
    zero = np.zeros((2, 2, 2), np.float32)
    o0 = np.zeros((2, 2, 3), np.uint8)
    o1 = np.full((2, 2, 3), 51, np.uint8)  # 0.2 everywhere: E_0 = 0.04
    o2 = o1.copy()
    o2[0, 1, 0] = 153  # one pixel, red only, 0.4 off: E_1 = 0.16 / 3 / 4
    inputs = [np.full((2, 2, 3), 128, np.uint8)] * 3
    e = vf.warping_error([o0, o1, o2], inputs, pairs=[(zero, zero), (zero, zero)])
    assert e == pytest.approx((0.04 + 0.16 / 12) / 2, rel=1e-9)
    # DIS on constant frames gives that zero flow itself
    assert vf.warping_error([o0, o1, o2], inputs) == pytest.approx(e, rel=1e-9)


def test_warping_error_by_hand_with_motion():
    # 1×3 frames, f = one pixel to the right: O_1 warped is (O_1[1], O_1[2], O_1[2]); the last
    # pixel's counterpart is outside the frame, so M_0 = (1, 1, 0)
    fwd = np.zeros((1, 3, 2), np.float32)
    fwd[..., 0] = 1
    back = -fwd
    o0 = np.array([[[10] * 3, [20] * 3, [30] * 3]], np.uint8)
    o1 = np.array([[[0] * 3, [25] * 3, [50] * 3]], np.uint8)
    e = vf.warping_error([o0, o1], [o0, o1], pairs=[(back, fwd)])
    assert e == pytest.approx(((10 - 25) ** 2 + (20 - 50) ** 2) / 2 / 255 ** 2, rel=1e-9)


def test_warping_error_static_clip_and_noise():
    still = texture(H, W, seed=7)
    styled = texture(H, W, seed=8)
    assert vf.warping_error([styled] * 3, [still] * 3) == pytest.approx(0, abs=1e-12)

    clip = [texture(H, W, shift=(2 * i, i), seed=9) for i in range(4)]
    pairs = vf.flows(clip)
    clean = vf.warping_error(clip, clip, pairs=pairs)
    rng = np.random.default_rng(10)
    noisy = [np.clip(f + rng.normal(0, 10, f.shape), 0, 255).astype(np.uint8) for f in clip]
    dirty = vf.warping_error(noisy, clip, pairs=pairs)
    assert clean < 1e-3
    assert dirty > clean + 0.5 * 2 * 10 ** 2 / 255 ** 2  # about 2σ² more
    assert vf.warping_error(noisy, clip) == pytest.approx(dirty, rel=1e-9)


def test_warping_error_checks_its_input():
    a = texture(8, 8)
    with pytest.raises(ValueError):
        vf.warping_error([a], [a])
    with pytest.raises(ValueError):
        vf.warping_error([a, a], [a, a, a])
