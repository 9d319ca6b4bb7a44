"""Run folders and safe writes.

A run folder is numbered (``runs/00012-dcgan-demo/``) and created with an atomic ``mkdir``, so two
processes never share one and nothing earlier is overwritten. Every file is written atomically
(temp file in the same folder, then ``os.replace``): an interrupted write leaves the old file or none.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from skingen.errors import SkingenError

_RUN_RE = re.compile(r"^(\d{5})-")


def _current_umask() -> int:
    """The process umask: from /proc on Linux (no side effect), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success it replaces ``path`` atomically, on error it is removed.
    The file gets the mode a plain ``open`` would give (0666 less the umask), not mkstemp's private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_dir(out: str | Path, what: str = "output") -> Iterator[Path]:
    """Build the new folder ``out`` under a hidden staging name next to it; on success it is renamed
    to ``out``, on any error (or Ctrl-C) removed. ``out`` must not exist or be an empty folder, and not a
    mount point (it could never be replaced by the finished folder). An OS error while creating the
    staging folder or renaming it (read-only or full disk, busy folder) is a :class:`SkingenError`."""
    import shutil

    out = Path(out)
    check_new_folder(out, what)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise output_error(exc, out) from None
    try:
        yield staging
        try:
            if out.exists():
                out.rmdir()
            os.replace(staging, out)
        except OSError as exc:
            raise output_error(exc, out) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_new_folder(out: str | Path, what: str = "output", hint: str | None = None) -> Path:
    """The one "output folder must be new or empty" rule: refuse an ``out`` that is a non-empty folder, a
    file, or a mount point (before any work is done), so nothing earlier is ever overwritten. ``hint``
    replaces the default advice ("choose a new folder for the {what}"). Returns ``out`` as a Path."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SkingenError(f"{out} already exists and is not empty; {hint or f'choose a new folder for the {what}'}")
    if out.is_dir() and os.path.ismount(out):
        raise SkingenError(f"{out} is a mount point; it cannot be replaced by the finished {what} — "
                           f"choose a new folder inside it, e.g. {out / 'data'}")
    return out


def output_error(exc: OSError, out: str | Path) -> SkingenError:
    """One line for an OS error on the output side (disk full, read-only, busy): what failed, and where."""
    where = exc.filename or out
    return SkingenError(f"cannot write {out}: {exc.strerror or exc} ({where}); nothing was kept")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: str | Path, rows: list[dict[str, Any]], columns: Iterable[str] = ()) -> None:
    """Write ``rows`` as CSV atomically: ``columns`` first, then every other key in first-seen order
    (a row without a key leaves its cell empty, as does ``None``)."""
    cols = list(columns)
    for r in rows:
        cols += [k for k in r if k not in cols]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)


class JsonlWriter:
    """Appends one JSON object per line and flushes, so a crash loses at most the line being written."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, sort_keys=True, default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_text(path: Path, encoding: str = "utf-8") -> str:
    """The text of a project file; a missing, unreadable or non-UTF-8 file is one line naming it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SkingenError(f"{path}: not found") from None
    except OSError as exc:
        raise SkingenError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1  # guessing another encoding could silently misname files
        raise SkingenError(f"{path}: line {line} is not UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8 (e.g. "
                           f"'CSV UTF-8' in a spreadsheet program)") from None


def read_json(path: str | Path) -> dict[str, Any]:
    """The JSON object in a file skingen reads (``sample.json``, a checkpoint's ``config.json``, a pipeline's
    ``model_index.json``, ...): any damage (missing, unreadable, not UTF-8, not JSON, not an object) is one line
    naming the file. Checking the object's keys is the caller's part."""
    path = Path(path)
    try:
        obj = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise SkingenError(f"{path}: damaged (not valid JSON: {exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise SkingenError(f"{path}: damaged (JSON nested too deeply)") from None
    if not isinstance(obj, dict):
        raise SkingenError(f"{path}: damaged (expected a JSON object, found {type(obj).__name__})")
    return obj


def read_csv(path: str | Path, encoding: str = "utf-8") -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a CSV file skingen reads (manifests, face lists, labels): any damage (missing,
    unreadable, not UTF-8, NUL bytes, an unclosed quote, a huge field) is one line naming the file and line.
    ``encoding="utf-8-sig"`` for files people save from spreadsheets (a BOM)."""
    path = Path(path)
    text = _read_text(path, encoding)
    if "\x00" in text:  # Python >= 3.11 reads NUL bytes as text; in a CSV they mean a binary file
        raise SkingenError(f"{path}: damaged CSV at line {text[:text.index(chr(0))].count(chr(10)) + 1} (a NUL byte: "
                           f"a binary file?)")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise SkingenError(f"{path}: damaged CSV at line {reader.line_num} ({exc})") from None
    return list(reader.fieldnames or []), rows


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a torn last line (interrupted write) is ignored."""
    records = []
    lines = _read_text(Path(path)).splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise SkingenError(f"{path}: line {i + 1} is not valid JSON") from None
    return records


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", text).strip("-")[:40] or "run"


def new_run_dir(outdir: str | Path, *parts: str) -> Path:
    """Create ``outdir/NNNNN-part1-part2`` with the next free number; never reuses an existing folder."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    name = "-".join(_slug(p) for p in parts if p)
    for _ in range(1000):
        taken = [int(m.group(1)) for p in outdir.iterdir() if (m := _RUN_RE.match(p.name))]
        number = max(taken, default=-1) + 1
        path = outdir / f"{number:05d}-{name}" if name else outdir / f"{number:05d}"
        try:
            path.mkdir()  # atomic: fails if another process took this number first
            return path
        except FileExistsError:
            continue
    raise SkingenError(f"could not create a new run folder in {outdir}")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment_info(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, device, git sha and command line — what ``env.json`` records for every run."""
    from importlib import metadata

    versions = {}
    for pkg in ("skingen", "torch", "torchvision", "numpy", "pillow", "scikit-image", "diffusers", "accelerate"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    info: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": versions,
        "git_sha": _git_sha(),
        "command": sys.argv,
    }
    if "torch" in sys.modules:
        import torch

        info["cuda"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info.update(extra or {})
    return info


def peak_memory_mb(device: Any = None) -> float:
    """Peak memory so far: allocated CUDA memory on a GPU device, else this process's peak RSS."""
    import resource

    if device is not None and getattr(device, "type", str(device)).startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def write_env_json(run_dir: str | Path, **extra: Any) -> dict[str, Any]:
    info = environment_info(extra)
    write_json(Path(run_dir) / "env.json", info)
    return info
