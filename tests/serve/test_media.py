"""Clips uploaded (:mod:`impasto.serve.media`), through the HTTP API: taken as their own kind of upload
with a poster, or refused with the line ``impasto video`` gives, within the server's clip limits.
"""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from serve.helpers import clip, files_under, gif, png  # noqa: E402


def test_clips_are_taken_as_their_own_kind_of_upload(bare):
    data = clip()
    r = bare.upload("walk.mp4", data, "video/mp4")
    assert r.status_code == 201, r.text
    up = r.json()
    assert {k: up[k] for k in ("kind", "name", "width", "height", "frames", "fps", "duration", "audio")} == {
        "kind": "clip", "name": "walk.mp4", "width": 48, "height": 32, "frames": 6, "fps": 12.0, "duration": 0.5,
        "audio": False}
    got = bare.get(up["url"])
    assert got.headers["content-type"] == "video/mp4" and got.content == data
    poster = bare.get(up["poster"])
    assert poster.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(poster.content)).size == (48, 32)
    assert (bare.data / "uploads" / f"{up['id']}.mp4").is_file()
    webm = bare.upload("walk.webm", clip(fmt="webm", codec="libvpx-vp9"), "video/webm").json()
    assert (webm["kind"], webm["frames"]) == ("clip", 6)
    animated = bare.upload("loop.gif", gif(), "image/gif").json()
    assert (animated["kind"], animated["frames"], animated["fps"], animated["width"]) == ("clip", 4, 20.0, 20)
    assert bare.get(animated["url"]).headers["content-type"] == "image/gif"
    assert bare.get(f"/api/uploads/{bare.upload('p.png', png((8, 8))).json()['id']}/poster").status_code == 404


def _avi() -> bytes:
    return clip(fmt="avi", codec="mpeg4")


@pytest.mark.parametrize("name, make, status, message", [
    ("long.mp4", lambda: clip(frames=31, fps=25), 413,
     "long.mp4 is too long: more than 30 frames (the limit is 30 frames per clip)"),
    ("slow.mp4", lambda: clip(frames=6, fps=2), 413, "slow.mp4 is too long: more than 2 s (the limit is 2 s per clip)"),
    ("long.gif", lambda: gif(frames=31), 413, "long.gif is too long: 31 frames (the limit is 30 frames per clip)"),
    ("wide.mp4", lambda: clip(frames=2, size=(128, 96)), 413,
     "wide.mp4 is too large: 128x96 pixels a frame, over the limit of 0.01 million pixels per frame of a clip"),
    ("big.mp4", lambda: os.urandom(200_001), 413, "big.mp4 is too large (the limit is 0.2 MB per file)"),
    ("old.avi", _avi, 415, "old.avi is a video in the avi format; a clip is MP4, MOV, WebM, animated GIF or WebP"),
    ("cut.mp4", lambda: clip()[:400], 415, "cut.mp4 is not an image (PNG, JPEG, WebP) or a clip (MP4, MOV, WebM, "
                                          "animated GIF or WebP)"),
    # its index whole, its last packets gone: the video decodes, the sound does not (impasto video refuses it too)
    ("short.mp4", lambda: (lambda data: data[:int(len(data) * 0.8)])(clip(frames=12, audio=True, faststart=True)), 415,
     "short.mp4: cannot decode its audio (aac): Invalid data found when processing input"),
])
def test_clips_too_long_too_large_or_not_taken_are_refused_and_nothing_is_written(bare, name, make, status, message):
    before = files_under(bare.data)
    r = bare.upload(name, make(), "video/mp4")
    assert (r.status_code, r.json()) == (status, {"error": message})
    assert files_under(bare.data) == before
