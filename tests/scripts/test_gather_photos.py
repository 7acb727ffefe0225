"""scripts/gather_photos.py and its file list scripts/photos.toml (issue 24): the list against what is
installed here, and the script on a tiny fake file-system tree (so these pass without the packages)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gather_photos.py"


def _load():
    spec = importlib.util.spec_from_file_location("gather_photos", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gather_photos"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


gp = _load()
SOURCES = gp.load_list(gp.LIST)


# --- the real list --------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.name)
def test_listed_files_exist_where_installed(source):
    if gp.locate(source, Path("/"), None) is None:
        pytest.skip(f"{source.package} is not installed here ({source.install_command()})")
    located, problems = gp.check([source], Path("/"), None)
    assert problems == []
    assert source.name in located


def test_list_is_well_formed():
    assert {s.name for s in SOURCES} >= {"opencv-doc", "scikit-image", "mate-backgrounds",
                                         "plasma-workspace-wallpapers"}
    for s in SOURCES:
        paths = [p.path for p in s.photos]
        assert len(paths) == len(set(paths)), s.name
        assert all(not p.startswith("/") and ".." not in p for p in paths), s.name
        assert s.licence and s.photos, s.name
    groups = {}
    for s in SOURCES:
        for p in s.photos:
            groups.setdefault(p.group, []).append(p.path)
    assert sum(len(s.photos) for s in SOURCES) >= 60
    videos = {v.path: v.split for s in SOURCES for v in s.videos}
    assert videos == {"data/vtest.avi": "train", "data/Megamind.avi": "train", "data/tree.avi": "val"}


# --- a fake tree ----------------------------------------------------------------------------------------


def _image(path: Path, seed: int, size=(40, 30)):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _video(path: Path, frames: int = 9):
    cv2 = pytest.importorskip("cv2")
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    assert w.isOpened()
    for i in range(frames):  # a slowly moving gradient: no cuts
        x = (np.arange(32)[None, :, None] * 6 + i * 2) % 256
        w.write(np.broadcast_to(x, (24, 32, 3)).astype(np.uint8).copy())
    w.release()


DEB_PHOTOS = [f"pics/p{i:02d}.jpg" for i in range(14)] + ["pics/q.png"]


def _write_list(path: Path, extra: list[str] = (), video: bool = False) -> Path:
    photos = [f'"{p}"' for p in DEB_PHOTOS + list(extra)]
    photos += ['{ path = "pair/left.jpg", group = "fake:pair" }',
               '{ path = "pair/right.jpg", group = "fake:pair" }']
    videos = '\nvideos = [{ path = "clip.avi", split = "val", step = 3 }]' if video else ""
    path.write_text(f"""
[sources.fake-deb]
kind = "deb"
package = "fake-photos"
root = "/usr/share/fake-photos"
copyright = "/usr/share/doc/fake-photos/copyright"
licence = "CC0-1.0"
photos = [{", ".join(photos)}]{videos}

[sources.fake-pip]
kind = "pip"
package = "fake-wheel"
module = "fakemod"
root = "data"
copyright = "fake_wheel-*.dist-info/LICENSE.txt"
licence = "BSD-3-Clause"
photos = [{{ path = "cat.png", note = "CC0" }}]
""")
    return path


@pytest.fixture
def fake(tmp_path):
    """A fake file-system root holding the Debian package, a fake site-packages holding the wheel."""
    fs, site = tmp_path / "fs", tmp_path / "site"
    doc = fs / "usr/share/doc/fake-photos"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nCopyright: nobody\nLicense: CC0-1.0\n")
    base = fs / "usr/share/fake-photos"
    for i, p in enumerate(DEB_PHOTOS + ["pair/left.jpg", "pair/right.jpg", "extra/new.jpg"]):
        _image(base / p, i, size=(1500, 900) if i == 0 else (40, 30))
    _image(site / "fakemod/data/cat.png", 99)
    (site / "fake_wheel-1.0.dist-info").mkdir(parents=True)
    (site / "fake_wheel-1.0.dist-info/LICENSE.txt").write_text("Files: *\nLicense: BSD-3-Clause\n")
    args = ["--root", str(fs), "--site-packages", str(site)]
    return tmp_path, base, args


def test_missing_package_is_one_clear_line(fake, capsys):
    tmp, base, args = fake
    lst = _write_list(tmp / "list.toml")
    out = tmp / "out"
    rc = gp.main(["--list", str(lst), "--out", str(out), "--root", str(tmp / "empty"),
                  "--site-packages", str(tmp / "site")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert len(err) == 1  # the one clear line, and nothing else
    assert "fake-photos" in err[0] and "not installed" in err[0]
    assert "apt-get install --no-install-recommends fake-photos" in err[0]

    rc = gp.main(["--list", str(lst), "--out", str(out), "--root", str(tmp / "fs"),
                  "--site-packages", str(tmp / "nosite")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert len(err) == 1 and "fake-wheel" in err[0] and "pip install fake-wheel" in err[0]


def test_skip_missing_leaves_the_source_out(fake, capsys):
    tmp, base, args = fake
    lst = _write_list(tmp / "list.toml")
    out = tmp / "out"
    rc = gp.main(["--list", str(lst), "--out", str(out), "--root", str(tmp / "fs"),
                  "--site-packages", str(tmp / "nosite"), "--skip-missing"])
    assert rc == 0
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert {f["source"] for f in manifest["files"]} == {"fake-deb"}
    assert "fake-wheel" in capsys.readouterr().err


def test_missing_listed_file_names_file_and_package(fake, capsys):
    tmp, base, args = fake
    (base / "pics/p03.jpg").unlink()
    out = tmp / "out"
    rc = gp.main(["--list", str(_write_list(tmp / "list.toml")), "--out", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and not out.exists()
    assert len(err) == 1 and "pics/p03.jpg" in err[0] and "fake-photos" in err[0]


def test_wrong_licence_is_reported(fake, capsys):
    tmp, base, args = fake
    (tmp / "fs/usr/share/doc/fake-photos/copyright").write_text("License: GPL-2+\n")
    rc = gp.main(["--list", str(_write_list(tmp / "list.toml")), "--out", str(tmp / "out"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and "CC0-1.0" in err and not (tmp / "out").exists()


def _run(tmp, args, name, seed=0, share=0.3, extra=(), video=False, out=None):
    lst = _write_list(tmp / f"{name}.toml", list(extra), video)
    out = out or tmp / name
    assert gp.main(["--list", str(lst), "--out", str(out), "--seed", str(seed), "--val-share", str(share),
                    "--max-side", "256", *args]) == 0
    return out, json.loads((out / "MANIFEST.json").read_text())


def _splits(manifest):
    return {f["original"]: f["split"] for f in manifest["files"] if f["kind"] == "photo"}


def test_manifest_complete_and_splits_disjoint(fake, capsys):
    tmp, base, args = fake
    out, manifest = _run(tmp, args, "a")
    printed = capsys.readouterr().out
    assert "fake-deb" in printed and "fake-pip" in printed and "train" in printed
    files = manifest["files"]
    assert len(files) == len(DEB_PHOTOS) + 2 + 1
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    assert on_disk == {f["file"] for f in files}
    for f in files:
        assert f["kind"] == "photo" and f["split"] in ("train", "val")
        assert f["file"].startswith(f["split"] + "/")
        assert Path(f["original"]).is_file()
        assert f["licence"] == {"fake-deb": "CC0-1.0", "fake-pip": "BSD-3-Clause"}[f["source"]]
        assert f["package"] == {"fake-deb": "fake-photos", "fake-pip": "fake-wheel"}[f["source"]]
        with Image.open(out / f["file"]) as im:
            assert im.mode == "RGB" and max(im.size) <= 256 and im.size == (f["width"], f["height"])
    assert next(f for f in files if f["source"] == "fake-pip")["note"] == "CC0"
    splits = {"train", "val"}
    assert {f["split"] for f in files} == splits  # 30 %: both splits drawn from 18 files
    by_group = {}
    for f in files:
        by_group.setdefault(f["group"], set()).add(f["split"])
    assert all(len(s) == 1 for s in by_group.values())  # a group never straddles the splits
    assert by_group["fake:pair"] and len([f for f in files if f["group"] == "fake:pair"]) == 2


def test_split_is_deterministic_and_stable(fake, capsys):
    tmp, base, args = fake
    _, m1 = _run(tmp, args, "a")
    _, m2 = _run(tmp, args, "b")
    assert _splits(m1) == _splits(m2)
    _, m3 = _run(tmp, args, "c", extra=["extra/new.jpg"])  # one more file moves no other
    s3 = _splits(m3)
    assert len(s3) == len(_splits(m1)) + 1
    assert {k: v for k, v in s3.items() if not k.endswith("extra/new.jpg")} == _splits(m1)
    seeds = [_splits(_run(tmp, args, f"s{seed}", seed=seed)[1]) for seed in (1, 2, 3)]
    assert any(s != _splits(m1) for s in seeds)  # the seed does change the draw


def test_rerun_replaces_and_refuses_foreign_folder(fake, capsys):
    tmp, base, args = fake
    out, _ = _run(tmp, args, "a", seed=0)
    _run(tmp, args, "a2", seed=5, out=out)  # a previous output is replaced, not mixed
    manifest = json.loads((out / "MANIFEST.json").read_text())
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    assert on_disk == {f["file"] for f in manifest["files"]}
    foreign = tmp / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    rc = gp.main(["--list", str(_write_list(tmp / "l.toml")), "--out", str(foreign), *args])
    assert rc == 2 and sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]


def test_split_of():
    keys = [f"src:{i}" for i in range(2000)]
    a = [gp.split_of(k, 0.15, 0) for k in keys]
    assert a == [gp.split_of(k, 0.15, 0) for k in keys]
    assert 0.12 < a.count("val") / len(a) < 0.18
    assert a != [gp.split_of(k, 0.15, 1) for k in keys]
    assert all(gp.split_of(k, 0.0, 0) == "train" for k in keys)


def test_video_frame_pairs(fake, capsys):
    tmp, base, args = fake
    _video(base / "clip.avi", frames=9)
    out, manifest = _run(tmp, args, "v", video=True)
    frames = [f for f in manifest["files"] if f["kind"] == "frame"]
    assert {f["split"] for f in frames} == {"val"}
    assert all(f["file"].startswith("frames/val/") and (out / f["file"]).is_file() for f in frames)
    pairs = {}
    for f in frames:
        pairs.setdefault(f["pair"], []).append(f["frame"])
    assert sorted(sorted(v) for v in pairs.values()) == [[0, 1], [3, 4], [6, 7]]  # every 3rd (t, t+1)
    assert {f["original"] for f in frames} == {str(base / "clip.avi")}
    # the photos of the same run are still in photos' splits, and none is drawn from the video
    assert all(f["file"].split("/")[0] in ("train", "val") for f in manifest["files"] if f["kind"] == "photo")
    assert "frame pairs" in capsys.readouterr().out


def test_cut_is_dropped(tmp_path):
    pytest.importorskip("cv2")
    path = tmp_path / "cut.avi"
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(6):  # black, black, black | white, white, white: a cut between frames 2 and 3
        w.write(np.full((24, 32, 3), 0 if i < 3 else 255, np.uint8))
    w.release()
    ts = [t for t, _, _ in gp.frame_pairs(path, 1, 1024, 0.1)]
    assert ts == [0, 1, 3, 4]
