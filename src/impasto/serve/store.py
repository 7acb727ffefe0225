"""The server's history on disk, under ``--data``:

    DATA/uploads/<uid>.<ext>, <uid>.json      an uploaded (or bundled example) image and its name and size
    DATA/uploads/<uid>.poster.jpg             a clip's first frame, small (the page shows it as the clip)
    DATA/jobs/<jid>/job.json                  the job: settings, state, progress, losses, times, message
    DATA/jobs/<jid>/content.<ext>, style-N.<ext>   its inputs (hard links to the uploads, or copies)
    DATA/jobs/<jid>/preview.jpg               the latest live image (a video job's: its latest finished
                                              frame), result.png (a video job's: result.mp4), thumb.jpg

Every file is written atomically (:mod:`impasto.atomic`, which every job uses and which loads
no PyTorch: the server process never does), the ``.json`` last, so a file another process or a crash left half-made is
never listed. Every id is made here (``secrets.token_hex``) and checked against its pattern on
every lookup: no string from a client ever becomes a path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image

from ..atomic import TEMP_PREFIX, atomic_bytes, atomic_write

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TEMP_PREFIXES = (".tmp-", TEMP_PREFIX)       # an earlier release's, and impasto.atomic's
UPLOAD_ID = re.compile(r"(?:[0-9a-f]{16}|ex-[a-z0-9][a-z0-9_-]{0,47})\Z")
JOB_ID = re.compile(r"[0-9a-f]{16}\Z")
# The formats the server takes, the file extension it stores each under and its media type.
FORMATS = {"PNG": (".png", "image/png"), "JPEG": (".jpg", "image/jpeg"), "WEBP": (".webp", "image/webp")}
# The clips the server takes (``kind`` "clip"), by the extension it stores each under.
CLIP_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm", ".gif": "image/gif",
              ".webp": "image/webp"}
MEDIA_TYPES = {**dict(FORMATS.values()), **CLIP_TYPES}
STATES = ("queued", "running", "done", "cancelled", "interrupted", "failed")
ENDED = frozenset(STATES[2:])
JOB_FILES = ("result.png", "result.mp4", "preview.jpg", "thumb.jpg")
FRAMES_GLOB = "result.mp4.frames-*"   # a video job's finished frames while it runs (impasto.video.cache)
THUMB_SIDE = 256
EXAMPLE_PHOTOS = ("tubingen",)  # examples/CREDITS.md: the one photograph; the other images are paintings


def now() -> str:
    """The time as ISO 8601 in UTC, to the millisecond (jobs sort by it)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_id() -> str:
    return secrets.token_hex(8)


# ---------------------------------------------------------------- atomic files

def write_atomic(path: Path, data: bytes) -> Path:
    """``data`` written to a temporary file beside ``path``, then renamed into place."""
    return atomic_bytes(path, data)


def write_json(path: Path, value) -> Path:
    return write_atomic(path, json.dumps(value, indent=1, allow_nan=False).encode())


def read_json(path: Path) -> dict | None:
    """A JSON object from ``path``, or None if it is missing or not one (a damaged history entry)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_png_or_jpeg(image: Image.Image, path: Path, quality: int = 90) -> Path:
    """A PIL image as PNG or JPEG (by ``path``'s extension), atomically."""
    fmt = "PNG" if path.suffix == ".png" else "JPEG"
    rgb = image.convert("RGB")
    return atomic_write(path, lambda tmp: rgb.save(tmp, fmt, **({"quality": quality} if fmt == "JPEG" else {})))


def save_thumb(image: Image.Image, path: Path) -> Path:
    """The history's small picture: the long side at most :data:`THUMB_SIDE`, JPEG."""
    small = image.convert("RGB")
    small.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    return write_png_or_jpeg(small, path, quality=85)


# ---------------------------------------------------------------- the store

class Store:
    """Uploads and jobs under one data folder; see the module's docstring for the layout."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.uploads = self.root / "uploads"
        self.jobs = self.root / "jobs"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.jobs.mkdir(exist_ok=True)
        self.models = self.root / "models"   # fast models the user trained (impasto train, impasto export)
        self.models.mkdir(exist_ok=True)
        self._remove_temporaries()

    def trained_models(self) -> dict[str, Path]:
        """The fast models in ``DATA/models`` (``NAME.pt`` from ``impasto train``, ``NAME.onnx`` from
        ``impasto export``), by the name the page shows, ``NAME (yours)``; read afresh at each call,
        so a model put there is offered without a restart. Only names of letters, digits, ``_ . -``."""
        found = {}
        for path in sorted(self.models.iterdir()):
            if path.suffix.lower() in (".pt", ".onnx") and path.is_file() and _MODEL_NAME.fullmatch(path.stem):
                found.setdefault(f"{path.stem} (yours)", path)
        return found

    def _remove_temporaries(self) -> None:
        """Temporary files a stopped server or worker left behind (never listed, never served)."""
        for folder in [self.uploads, *(p for p in self.jobs.iterdir() if p.is_dir())]:
            for p in folder.iterdir():
                if p.name.startswith(TEMP_PREFIXES) and p.is_file():
                    p.unlink(missing_ok=True)

    # ---------------------------------------------------------- uploads

    def add_upload(self, data: bytes, fmt: str, name: str, width: int, height: int, uid: str | None = None) -> dict:
        """Keep an image already checked (:data:`FORMATS`); returns its record."""
        uid = uid or new_id()
        ext = FORMATS[fmt][0]
        meta = {"id": uid, "kind": "image", "name": name, "width": width, "height": height, "format": fmt, "ext": ext,
                "created": now()}
        write_atomic(self.uploads / f"{uid}{ext}", data)
        write_json(self.uploads / f"{uid}.json", meta)
        return meta

    def add_clip(self, data: bytes, probe: dict, name: str, poster: Image.Image) -> dict:
        """Keep a clip already checked (``probe``: ext, format, width, height, frames, fps, duration,
        audio); its first frame as a small poster JPEG beside it."""
        uid = new_id()
        ext = probe["ext"]
        if ext not in CLIP_TYPES:
            raise ValueError(f"not a clip extension: {ext}")
        meta = {"id": uid, "kind": "clip", "name": name, **probe, "created": now()}
        write_atomic(self.uploads / f"{uid}{ext}", data)
        save_thumb(poster, self.uploads / f"{uid}.poster.jpg")
        write_json(self.uploads / f"{uid}.json", meta)
        return meta

    def poster(self, uid) -> Path | None:
        meta = self.upload(uid)
        if meta is None or meta.get("kind") != "clip":
            return None
        path = self.uploads / f"{uid}.poster.jpg"
        return path if path.is_file() else None

    def upload(self, uid) -> dict | None:
        """An upload's record (with ``path``), or None for an id that is malformed or unknown."""
        if not isinstance(uid, str) or not UPLOAD_ID.match(uid):
            return None
        meta = read_json(self.uploads / f"{uid}.json")
        if meta is None or meta.get("ext") not in MEDIA_TYPES:
            return None
        meta.setdefault("kind", "image")  # uploads kept before clips were taken
        path = self.uploads / f"{uid}{meta['ext']}"
        return {**meta, "path": path} if path.is_file() else None

    def add_examples(self, folder: Path | None) -> list[dict]:
        """The bundled example images, copied into the uploads once, each under the id ``ex-<name>``."""
        if folder is None or not folder.is_dir():
            return []
        examples = []
        for path in sorted(folder.iterdir()):
            uid = "ex-" + re.sub(r"[^a-z0-9_-]", "-", path.stem.lower())[:47]
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp") or not UPLOAD_ID.match(uid):
                continue
            if self.upload(uid) is None and not self._copy_example(path, uid):
                continue
            examples.append({"name": path.stem, "kind": "photo" if path.stem in EXAMPLE_PHOTOS else "painting",
                             "upload": uid, "url": f"/api/uploads/{uid}"})
        return examples

    def _copy_example(self, path: Path, uid: str) -> bool:
        try:
            data = path.read_bytes()
            with Image.open(path) as img:
                fmt, (width, height) = img.format, img.size
        except (OSError, ValueError):
            return False
        if fmt not in FORMATS:
            return False
        self.add_upload(data, fmt, path.name, width, height, uid)
        return True

    # ---------------------------------------------------------- jobs

    def job_dir(self, jid) -> Path | None:
        if not isinstance(jid, str) or not JOB_ID.match(jid):
            return None
        return self.jobs / jid

    def create_job(self, record: dict, content: dict, styles: list[dict]) -> dict:
        """A new job's folder: its inputs (linked or copied from the uploads), then its job.json."""
        folder = self.jobs / record["id"]
        folder.mkdir()
        inputs = {"content": self._link(content, folder / f"content{content['ext']}"),
                  "styles": [self._link(s, folder / f"style-{i + 1}{s['ext']}") for i, s in enumerate(styles)]}
        record["files"] = inputs
        self.save_job(record)
        return record

    @staticmethod
    def _link(upload: dict, target: Path) -> str:
        try:
            os.link(upload["path"], target)
        except OSError:  # another file system, or no hard links: a copy
            shutil.copyfile(upload["path"], target)
        return target.name

    def save_job(self, record: dict) -> None:
        write_json(self.jobs / record["id"] / "job.json", record)

    def load_jobs(self) -> list[dict]:
        """Every job kept, oldest first (a damaged job.json is left alone and not listed)."""
        jobs = []
        for folder in self.jobs.iterdir():
            if not JOB_ID.match(folder.name):
                continue
            record = read_json(folder / "job.json")
            if record is None or record.get("id") != folder.name or record.get("state") not in STATES:
                print(f"impasto: warning: {folder}/job.json is damaged; that job is not listed", file=sys.stderr)
                continue
            jobs.append(record)
        return sorted(jobs, key=lambda r: (r.get("seq", 0), r.get("created", "")))

    def job_file(self, jid, name: str) -> Path | None:
        """One of :data:`JOB_FILES` of a job, if it exists."""
        folder = self.job_dir(jid)
        if folder is None or name not in JOB_FILES:
            return None
        path = folder / name
        return path if path.is_file() else None

    def input_path(self, record: dict, name: str) -> Path:
        return self.jobs / record["id"] / name

    def interrupt(self, record: dict, message: str) -> dict:
        """A job the server stopped under (state running or queued) marked "interrupted"; a running
        one keeps its last live image as its result (a video job: as its thumbnail only, and its
        frames made so far are removed)."""
        folder = self.jobs / record["id"]
        preview = folder / "preview.jpg"
        if record.get("method") == "video":
            for frames in folder.glob(FRAMES_GLOB):
                shutil.rmtree(frames, ignore_errors=True)
            if record["state"] == "running" and not record.get("thumb") and preview.is_file():
                try:
                    with Image.open(preview) as img:
                        save_thumb(img, folder / "thumb.jpg")
                    record["thumb"] = True
                except (OSError, ValueError):
                    pass
        elif record["state"] == "running" and not record.get("result") and preview.is_file():
            try:
                with Image.open(preview) as img:
                    img.load()
                    write_png_or_jpeg(img, folder / "result.png")
                    save_thumb(img, folder / "thumb.jpg")
                record["result"] = record["thumb"] = True
            except (OSError, ValueError):
                pass
        record.update(state="interrupted", message=message, ended=now())
        self.save_job(record)
        return record
