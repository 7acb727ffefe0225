"""Reading every kind of image to RGB [0, 1], and atomic, NaN-proof writing."""

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import ImpastoError
from impasto.image.imageio import fit_long_side, load_image, open_image, pil_to_tensor, save_image, tensor_to_pil


def _rgb(path, mode, **save):
    img = Image.new("RGB", (8, 6), (200, 100, 50))
    img.convert(mode).save(path, **save)
    return path


@pytest.mark.parametrize("mode,ext", [("L", "png"), ("P", "gif"), ("CMYK", "jpg"), ("RGBA", "png"),
                                      ("RGB", "webp"), ("RGB", "tiff"), ("RGB", "bmp"), ("LA", "png")])
def test_modes_become_rgb(tmp_path, mode, ext):
    img = open_image(_rgb(tmp_path / f"x.{ext}", mode))
    assert img.mode == "RGB" and img.size == (8, 6)


def test_sixteen_bit_scaled_to_eight(tmp_path):
    arr = np.full((4, 4), 65535, dtype=np.uint16)
    arr[0, 0] = 0
    Image.fromarray(arr).save(tmp_path / "deep.png")
    img = np.asarray(open_image(tmp_path / "deep.png"))
    assert img[1, 1].tolist() == [255, 255, 255] and img[0, 0].tolist() == [0, 0, 0]


def test_alpha_composited_on_white(tmp_path):
    Image.new("RGBA", (2, 2), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert np.asarray(open_image(tmp_path / "clear.png"))[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_applied(tmp_path):
    img = Image.new("RGB", (8, 4), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert open_image(tmp_path / "rot.jpg").size == (4, 8)


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    r, g, b = np.asarray(open_image(tmp_path / "anim.gif"))[0, 0]
    assert r > 200 and b < 50


def _huge_png(path, side=20000):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
                     + chunk(b"IEND", b""))
    return path


def test_bad_inputs_are_one_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    Image.new("RGB", (64, 64)).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:200])
    cases = {tmp_path / "missing.png": "file not found", tmp_path / "notes.txt": "not an image",
             tmp_path / "cut.jpg": "truncated", _huge_png(tmp_path / "huge.png"): "too large", tmp_path: "folder"}
    for path, message in cases.items():
        with pytest.raises(ImpastoError, match=message) as info:
            open_image(path)
        assert str(path) in str(info.value)


def test_resize_keeps_aspect(tmp_path):
    assert fit_long_side((1024, 768), 512) == (512, 384)
    assert fit_long_side((600, 800), 100) == (75, 100)
    Image.new("RGB", (100, 50)).save(tmp_path / "w.png")
    assert load_image(tmp_path / "w.png", long_side=40).shape == (1, 3, 20, 40)


def test_tensor_round_trip_exact():
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = pil_to_tensor(Image.fromarray(arr))
    assert t.shape == (1, 3, 5, 7) and 0 <= t.min() and t.max() <= 1
    assert np.array_equal(np.asarray(tensor_to_pil(t)), arr)


@pytest.mark.parametrize("ext", ["png", "jpg", "webp"])
def test_save_formats_and_atomic(tmp_path, ext):
    out = save_image(torch.rand(1, 3, 6, 8), tmp_path / f"o.{ext}")
    assert Image.open(out).size == (8, 6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"o.{ext}"]  # no temporary left behind


def test_nan_image_never_written(tmp_path):
    bad = torch.rand(1, 3, 4, 4)
    bad[0, 0, 0, 0] = float("nan")
    (tmp_path / "keep.png").write_bytes(b"old")
    with pytest.raises(ImpastoError, match="NaN"):
        save_image(bad, tmp_path / "keep.png")
    assert (tmp_path / "keep.png").read_bytes() == b"old"
    assert len(list(tmp_path.iterdir())) == 1


def test_bad_output_paths(tmp_path):
    with pytest.raises(ImpastoError, match="must end in"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / "o.gif")
    with pytest.raises(ImpastoError, match="does not exist"):
        save_image(torch.rand(1, 3, 2, 2), tmp_path / "nope" / "o.png")
