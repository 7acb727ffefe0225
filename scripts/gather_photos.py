"""Gather the real photographs and video frame pairs listed in ``scripts/photos.toml`` (issue 24) into a
training/validation folder for re-training and benchmarking the bundled fast networks.

Training and benchmarks only: the files come from packages installed on this machine (Debian packages,
a PyPI wheel), nothing is downloaded, and the folder is never shipped (``data/photos/`` is git-ignored).

    python scripts/gather_photos.py                       # writes data/photos/
    python scripts/gather_photos.py --out DIR --val-share 0.15 --seed 0

First every listed file is checked: a source whose package is not installed gives one line naming the
package and the command that installs it, a listed file absent from an installed package one line naming
both; either way the exit status is 2 and nothing is written (``--skip-missing`` leaves such sources out
instead). Then each photo is converted to RGB with its long side at most ``--max-side`` (PNG stays PNG,
the rest becomes JPEG) into ``DIR/train`` or ``DIR/val``; consecutive frame pairs (t, t+1) of the videos
go to ``DIR/frames/{train,val}`` (pairs across a cut are dropped); ``DIR/MANIFEST.json`` lists every file
with its source package, original path, licence and split.

The split is a hash of each file's group (a file is its own group unless the list says otherwise: two
views of one scene share one), so adding a file never moves another and a group never straddles the
splits; the videos are split whole, as the list says.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.util
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LIST = Path(__file__).resolve().with_name("photos.toml")
DEFAULT_OUT = ROOT / "data" / "photos"
SPLITS = ("train", "val")


@dataclass
class Photo:
    path: str
    group: str
    note: str = ""


@dataclass
class Video:
    path: str
    split: str
    step: int


@dataclass
class Source:
    name: str
    kind: str  # "deb" or "pip"
    package: str
    root: str
    copyright: str
    licence: str
    module: str = ""
    photos: list[Photo] = field(default_factory=list)
    videos: list[Video] = field(default_factory=list)

    def install_command(self) -> str:
        if self.kind == "deb":
            return f"apt-get install --no-install-recommends {self.package}"
        return f"pip install {self.package}"


class ListError(Exception):
    pass


def load_list(path: Path) -> list[Source]:
    """The sources of a file list (see scripts/photos.toml), checked for shape."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    sources = []
    for name, t in data.get("sources", {}).items():
        try:
            kind = t["kind"]
            if kind not in ("deb", "pip"):
                raise ListError(f"{path}: source {name}: kind must be 'deb' or 'pip', not {kind!r}")
            src = Source(name=name, kind=kind, package=t["package"], root=t["root"],
                         copyright=t["copyright"], licence=t["licence"], module=t.get("module", ""))
            if kind == "pip" and not src.module:
                raise ListError(f"{path}: source {name}: a pip source needs 'module'")
            for p in t.get("photos", []):
                if isinstance(p, str):
                    p = {"path": p}
                src.photos.append(Photo(path=p["path"], group=p.get("group", f"{name}:{p['path']}"),
                                        note=p.get("note", "")))
            for v in t.get("videos", []):
                if v["split"] not in SPLITS:
                    raise ListError(f"{path}: source {name}: video {v['path']}: split must be train or val")
                src.videos.append(Video(path=v["path"], split=v["split"], step=int(v.get("step", 10))))
        except KeyError as e:
            raise ListError(f"{path}: source {name}: missing key {e}") from None
        sources.append(src)
    return sources


def locate(src: Source, prefix: Path, site: Path | None) -> tuple[Path, Path] | None:
    """(directory of the files, copyright file) of an installed source; None when not installed.

    A Debian package is installed when its /usr/share/doc/PKG/copyright is there (under ``prefix``, a fake
    file-system root in the tests); a wheel when its module is found in ``site`` (a site-packages folder)
    or, without one, by the running interpreter.
    """
    if src.kind == "deb":
        copyright = prefix / src.copyright.lstrip("/")
        if not copyright.is_file():
            return None
        return prefix / src.root.lstrip("/"), copyright
    if site is not None:
        module_dir = site / src.module
        if not module_dir.is_dir():
            return None
    else:
        spec = importlib.util.find_spec(src.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        module_dir = Path(list(spec.submodule_search_locations)[0])
        site = module_dir.parent
    found = sorted(glob.glob(str(site / src.copyright)))
    if not found:
        return None
    return module_dir / src.root, Path(found[-1])


def check(sources: list[Source], prefix: Path, site: Path | None, skip_missing: bool = False
          ) -> tuple[dict[str, tuple[Path, Path]], list[str]]:
    """The located sources and the problems, one line each (an empty list: all there)."""
    located, problems = {}, []
    for src in sources:
        where = locate(src, prefix, site)
        if where is None:
            line = f"package {src.package} is not installed; install it with: {src.install_command()}"
            if skip_missing:
                print(f"skipped: {line}", file=sys.stderr)
            else:
                problems.append(line)
            continue
        base, copyright = where
        for rel in [p.path for p in src.photos] + [v.path for v in src.videos]:
            if not (base / rel).is_file():
                problems.append(f"{rel} is listed but missing from the installed package {src.package} "
                                f"(looked in {base})")
        if src.licence not in copyright.read_text(encoding="utf-8", errors="replace"):
            problems.append(f"licence {src.licence!r} of {src.package} not found in {copyright}")
        located[src.name] = where
    return located, problems


def split_of(key: str, val_share: float, seed: int) -> str:
    """'val' for about ``val_share`` of the keys: a hash of the key alone, so no key moves another."""
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return "val" if int.from_bytes(h[:8], "big") / 2**64 < val_share else "train"


def flat_name(source: str, rel: str) -> str:
    return f"{source}__{rel.replace('/', '__')}"


def save_photo(src_path: Path, dst_stem: Path, max_side: int) -> tuple[Path, tuple[int, int]]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # the wallpapers are large, and trusted
    with Image.open(src_path) as im:
        im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale when that is enough
        im = im.convert("RGB")
    if max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    if src_path.suffix.lower() == ".png":
        dst = dst_stem.with_suffix(".png")
        im.save(dst, optimize=False)
    else:
        dst = dst_stem.with_suffix(".jpg")
        im.save(dst, quality=95)
    return dst, im.size


def frame_pairs(video: Path, step: int, max_side: int, max_diff: float):
    """(t, frame t, frame t + 1) as RGB arrays, t = 0, step, 2 step, ...; pairs across a cut (mean
    absolute difference above ``max_diff``, in [0, 1]) are left out."""
    import cv2
    import numpy as np

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise RuntimeError(f"cannot open {video}")
    prev, t = None, 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            if max(h, w) > max_side:
                s = max_side / max(h, w)
                frame = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if prev is not None and (t - 1) % step == 0:
                diff = float(np.abs(rgb.astype(np.float32) - prev.astype(np.float32)).mean()) / 255
                if diff <= max_diff:
                    yield t - 1, prev, rgb
            prev, t = rgb, t + 1
    finally:
        cap.release()


def gather(sources, located, out: Path, val_share: float, seed: int, max_side: int,
           max_diff: float) -> dict:
    from PIL import Image

    for sub in ("train", "val", "frames"):
        shutil.rmtree(out / sub, ignore_errors=True)
    for d in [out / s for s in SPLITS] + [out / "frames" / s for s in SPLITS]:
        d.mkdir(parents=True, exist_ok=True)
    files, counts = [], {}
    for src in sources:
        if src.name not in located:
            continue
        base, copyright = located[src.name]
        for p in src.photos:
            split = split_of(p.group, val_share, seed)
            dst, size = save_photo(base / p.path, out / split / flat_name(src.name, p.path), max_side)
            entry = {"file": dst.relative_to(out).as_posix(), "kind": "photo", "source": src.name,
                     "package": src.package, "original": str(base / p.path), "licence": src.licence,
                     "split": split, "group": p.group, "width": size[0], "height": size[1]}
            if p.note:
                entry["note"] = p.note
            files.append(entry)
            counts.setdefault((src.name, "photos"), {"train": 0, "val": 0})[split] += 1
        for v in src.videos:
            stem = flat_name(src.name, v.path).rsplit(".", 1)[0]
            for t, a, b in frame_pairs(base / v.path, v.step, max_side, max_diff):
                for k, frame in ((0, a), (1, b)):
                    dst = out / "frames" / v.split / f"{stem}__{t:05d}_{k}.png"
                    Image.fromarray(frame).save(dst)
                    files.append({"file": dst.relative_to(out).as_posix(), "kind": "frame",
                                  "source": src.name, "package": src.package,
                                  "original": str(base / v.path), "licence": src.licence,
                                  "split": v.split, "group": f"{src.name}:{v.path}",
                                  "frame": t + k, "pair": f"{stem}__{t:05d}",
                                  "width": frame.shape[1], "height": frame.shape[0]})
                counts.setdefault((src.name, "frame pairs"), {"train": 0, "val": 0})[v.split] += 1
    manifest = {
        "about": "gathered by scripts/gather_photos.py from scripts/photos.toml; training and "
                 "benchmarks only, never shipped",
        "val_share": val_share, "seed": seed, "max_side": max_side, "max_pair_diff": max_diff,
        "sources": {s.name: {"kind": s.kind, "package": s.package, "licence": s.licence,
                             "copyright_file": str(located[s.name][1])}
                    for s in sources if s.name in located},
        "files": files,
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    for (name, what), c in counts.items():
        print(f"{name:30s} {what:12s} train {c['train']:4d}  val {c['val']:4d}")
    total = {s: sum(c[s] for (_, w), c in counts.items() if w == "photos") for s in SPLITS}
    pairs = {s: sum(c[s] for (_, w), c in counts.items() if w != "photos") for s in SPLITS}
    print(f"{'total':30s} {'photos':12s} train {total['train']:4d}  val {total['val']:4d}")
    print(f"{'total':30s} {'frame pairs':12s} train {pairs['train']:4d}  val {pairs['val']:4d}")
    print(f"wrote {out}")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    ap.add_argument("--val-share", type=float, default=0.15, help="share of photos for validation")
    ap.add_argument("--seed", type=int, default=0, help="changes which photos are in the validation split")
    ap.add_argument("--max-side", type=int, default=1024, help="long side of the written images, at most")
    ap.add_argument("--max-pair-diff", type=float, default=0.1,
                    help="drop a frame pair whose mean absolute difference (0-1) is larger: a cut")
    ap.add_argument("--list", type=Path, default=LIST, help="the file list (default scripts/photos.toml)")
    ap.add_argument("--root", type=Path, default=Path("/"),
                    help="file-system root the Debian packages are found under (default /)")
    ap.add_argument("--site-packages", type=Path, default=None,
                    help="where wheels' modules are found (default: as this interpreter imports them)")
    ap.add_argument("--skip-missing", action="store_true",
                    help="leave out the sources that are not installed instead of stopping")
    args = ap.parse_args(argv)
    if not 0 <= args.val_share < 1:
        ap.error("--val-share must be in [0, 1)")
    try:
        sources = load_list(args.list)
    except (ListError, OSError, tomllib.TOMLDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    located, problems = check(sources, args.root, args.site_packages, args.skip_missing)
    if problems:
        for line in problems:  # one line each, and nothing written
            print(f"error: {line}", file=sys.stderr)
        return 2
    out = args.out
    if out.exists() and any(out.iterdir()) and not (out / "MANIFEST.json").is_file():
        print(f"error: {out} is not empty and holds no MANIFEST.json: not writing into it", file=sys.stderr)
        return 2
    gather(sources, located, out, args.val_share, args.seed, args.max_side, args.max_pair_diff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
