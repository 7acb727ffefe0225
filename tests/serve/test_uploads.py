"""Uploads (:mod:`impasto.serve.uploads`), through the HTTP API: kept under a name the server makes, the
client's name only shown, images told apart and checked, the size and pixel limits held while a file
arrives; nothing is written of a refused upload.
"""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from serve.helpers import files_under, png  # noqa: E402


def test_an_upload_is_kept_under_a_name_the_server_makes(bare):
    data = png((40, 30))
    r = bare.upload("../../../etc/evil name.png", data)
    assert r.status_code == 201, r.text
    up = r.json()
    assert len(up["id"]) == 16 and int(up["id"], 16) >= 0
    assert (up["name"], up["width"], up["height"], up["url"]) == ("evil name.png", 40, 30, f"/api/uploads/{up['id']}")
    assert up["kind"] == "image"
    uploads = bare.data / "uploads"
    assert (uploads / f"{up['id']}.png").read_bytes() == data
    assert not any("evil" in name for name in files_under(bare.data.parent))
    got = bare.get(up["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png" and got.content == data


def test_a_client_name_is_only_shown():
    from impasto.serve.uploads import client_name

    assert client_name(b"C:\\Users\\me\\..\\x\x07y\x1b.png") == "xy.png"
    assert client_name("a/b/" + "n" * 300) == "n" * 100
    assert client_name(None) == client_name(b"../") == "upload"


def test_jpeg_and_webp_are_taken(bare):
    for fmt, mime in (("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        r = bare.upload(f"x.{fmt.lower()}", png((20, 10), fmt=fmt), mime)
        assert r.status_code == 201, r.text
        assert bare.get(r.json()["url"]).headers["content-type"] == mime


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    return out.getvalue()


@pytest.mark.parametrize("name, data, message", [
    ("notes.txt", b"a shopping list, not a picture\n", "notes.txt is not an image (PNG, JPEG, WebP) or a clip "
                                                       "(MP4, MOV, WebM, animated GIF or WebP)"),
    ("cut.png", png((64, 48))[:300], "cut.png is not an image (PNG, JPEG, WebP): this PNG file is damaged or truncated"),
    ("still.gif", _gif(), "still.gif is not an image (PNG, JPEG, WebP); it is a GIF of one frame (a GIF is taken as "
                          "a clip when it is animated)"),
    ("empty.png", b"", "empty.png is not an image (PNG, JPEG, WebP) or a clip (MP4, MOV, WebM, animated GIF or WebP): "
                       "the file is empty"),
])
def test_what_is_not_an_image_is_refused_and_nothing_is_written(bare, name, data, message):
    before = files_under(bare.data)
    r = bare.upload(name, data)
    assert (r.status_code, r.json()) == (415, {"error": message})
    assert files_under(bare.data) == before


def test_an_upload_over_the_size_limit_is_refused_while_it_arrives(bare):
    before = files_under(bare.data)
    r = bare.upload("big.png", os.urandom(200_001))
    assert (r.status_code, r.json()) == (413, {"error": "big.png is too large (the limit is 0.2 MB per file)"})

    async def chunks():  # no Content-Length: counted as it streams
        head = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="stream.png"\r\n'
                b"Content-Type: image/png\r\n\r\n")
        yield head
        for _ in range(30):
            yield b"\0" * 10_000
        yield b"\r\n--b--\r\n"

    r = bare.post("/api/uploads", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json()) == (413, {"error": "stream.png is too large (the limit is 0.2 MB per file)"})
    assert files_under(bare.data) == before


def test_an_image_over_the_pixel_limit_is_refused(bare):
    before = files_under(bare.data)
    r = bare.upload("wide.png", png((600, 500)))  # 300,000 pixels over 250,000, a few kB
    assert (r.status_code, r.json()) == (413, {"error": "wide.png is too large: 600x500 pixels, over the limit "
                                                        "of 0.25 million pixels"})
    assert files_under(bare.data) == before
