"""`prepare` on hostile input and a failing output disk."""

import csv
import errno
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from skingen.cli import app
from skingen.data.prepare import PrepareConfig, prepare
from skingen.errors import SkingenError
from skingen.imageio import write_image, write_mask
from tests.conftest import rgb_noise
from tests.faults.conftest import assert_one_line_error

runner = CliRunner()
CFG = PrepareConfig(size=32)


def _photos(folder: Path, n: int = 3, size: int = 48) -> Path:
    for i in range(n):
        write_image(folder / f"p{i}.png", rgb_noise(size, size, seed=i))
    return folder


def _skipped(out: Path) -> dict[str, str]:
    with open(out / "skipped.csv", newline="", encoding="utf-8") as fh:
        return {r["path"]: r["reason"] for r in csv.DictReader(fh)}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_disk_full_aborts_and_removes_the_staging_folder(tmp_path, monkeypatch):
    # before: exit 0, two of three good photos skipped as "unexpected error: [Errno 28]"
    import skingen.data.prepare as P

    calls = []
    real_write = P.write_image

    def full_disk(path, image, *a, **k):
        calls.append(path)
        if len(calls) >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, image, *a, **k)

    monkeypatch.setattr(P, "write_image", full_disk)
    src = _photos(tmp_path / "src")
    (tmp_path / "outs").mkdir()
    with pytest.raises(SkingenError, match="No space left on device"):
        prepare(src, tmp_path / "outs" / "d", CFG, workers=1)
    assert list((tmp_path / "outs").iterdir()) == []  # neither the folder nor its staging copy

    res = runner.invoke(app, ["prepare", str(src), "--out", str(tmp_path / "outs" / "e"), "--size", "32",
                              "--workers", "1"])
    assert_one_line_error(res, "No space left on device")
    assert list((tmp_path / "outs").iterdir()) == []


def test_a_duplicate_is_judged_only_against_photos_that_were_used(tmp_path):
    # before: b.png (good mask) skipped as "exact duplicate of a.png", which itself was skipped
    img = rgb_noise(48, 48, seed=7)
    write_image(tmp_path / "src" / "a.png", img)
    write_image(tmp_path / "src" / "b.png", img)
    mask = np.zeros((48, 48), bool)
    mask[10:30, 10:30] = True
    write_mask(tmp_path / "masks" / "b.png", mask)
    write_mask(tmp_path / "masks" / "a.png", mask)
    good = (tmp_path / "masks" / "a.png").read_bytes()
    (tmp_path / "masks" / "a.png").write_bytes(good[: len(good) // 2])  # truncated
    report = prepare(tmp_path / "src", tmp_path / "d", CFG, masks=tmp_path / "masks", workers=1)
    assert report.photos_used == 1
    skipped = _skipped(tmp_path / "d")
    assert set(skipped) == {"a.png"} and "cannot decode" in skipped["a.png"]
    assert not skipped["a.png"].startswith("exact duplicate")
    with open(tmp_path / "d" / "manifest.csv", newline="") as fh:
        assert {r["photo"] for r in csv.DictReader(fh)} == {"b.png"}


def test_an_all_zero_mask_skips_the_photo_with_a_reason(tmp_path):
    # before: crops with lesion_fraction 0.0000 and an empty lesion mask, silently
    _photos(tmp_path / "src", n=2)
    write_mask(tmp_path / "masks" / "p0.png", np.zeros((48, 48), bool))
    full = np.zeros((48, 48), bool)
    full[5:40, 5:40] = True
    write_mask(tmp_path / "masks" / "p1.png", full)
    prepare(tmp_path / "src", tmp_path / "d", CFG, masks=tmp_path / "masks", workers=1)
    skipped = _skipped(tmp_path / "d")
    assert "no lesion" in skipped["p0.png"]
    with open(tmp_path / "d" / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["photo"] for r in rows} == {"p1.png"} and all(float(r["lesion_fraction"]) > 0 for r in rows)


def test_dangling_symlinks_are_listed_in_skipped_csv(tmp_path):
    src = _photos(tmp_path / "src", n=2)
    os.symlink(tmp_path / "gone.png", src / "link.png")
    prepare(src, tmp_path / "d", CFG, workers=1)
    assert "broken" in _skipped(tmp_path / "d")["link.png"]


def test_a_non_utf8_file_name_is_processed(tmp_path):
    # before: UnicodeEncodeError while writing the manifest aborted the whole run
    src = _photos(tmp_path / "src", n=2)
    odd = os.path.join(os.fsencode(src), b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
    write_image(Path(os.fsdecode(odd)), rgb_noise(48, 48, seed=11))
    res = runner.invoke(app, ["prepare", str(src), "--out", str(tmp_path / "d"), "--size", "32", "--workers", "1"])
    assert res.exit_code == 0, res.output
    with open(tmp_path / "d" / "manifest.csv", newline="", encoding="utf-8") as fh:
        photos = {r["photo"] for r in csv.DictReader(fh)}
    assert "caf\\xe9.png" in photos and len(photos) == 3


def test_a_latin1_csv_is_a_one_line_error(tmp_path):
    _photos(tmp_path / "src", n=1)
    (tmp_path / "src" / "list.csv").write_bytes("image,label\np0.png,\xe9ruption\n".encode("latin-1"))
    res = runner.invoke(app, ["prepare", str(tmp_path / "src" / "list.csv"), "--out", str(tmp_path / "d")])
    assert_one_line_error(res, "list.csv", "UTF-8")


def test_a_read_only_out_is_a_one_line_error(tmp_path, monkeypatch):
    src = _photos(tmp_path / "src", n=1)
    parent = tmp_path / "ro"
    parent.mkdir()
    if os.geteuid() != 0:
        parent.chmod(0o555)
    else:  # root ignores permissions: fake the refusal the file system would give
        real_mkdir = Path.mkdir

        def refuse(self, *a, **k):
            if self.parent == parent:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(Path, "mkdir", refuse)
    res = runner.invoke(app, ["prepare", str(src), "--out", str(parent / "d"), "--size", "32"])
    parent.chmod(0o755)
    assert_one_line_error(res, "Permission denied")


def test_a_mount_point_as_out_is_refused_before_any_work(tmp_path, monkeypatch):
    # before: all the work was done, then renaming over the mount point failed with a traceback (EBUSY)
    src = _photos(tmp_path / "src", n=1)
    mount = tmp_path / "mnt"
    mount.mkdir()
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mount or real_ismount(p))
    res = runner.invoke(app, ["prepare", str(src), "--out", str(mount), "--size", "32"])
    assert_one_line_error(res, "mount point")
    assert _leftovers(tmp_path) == []


def test_a_failing_final_rename_is_a_one_line_error(tmp_path, monkeypatch):
    import skingen.runs as R

    real_replace = os.replace

    def busy(a, b):
        if Path(a).name.startswith(".d.partial"):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(b))
        return real_replace(a, b)

    monkeypatch.setattr(R.os, "replace", busy)
    src = _photos(tmp_path / "src", n=1)
    res = runner.invoke(app, ["prepare", str(src), "--out", str(tmp_path / "d"), "--size", "32"])
    assert_one_line_error(res, "busy")
    assert _leftovers(tmp_path) == []


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width`` x ``height`` px (its pixel data is far too short)."""
    raw = zlib.compress(b"\0" * 64)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_images_above_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    # before: Pillow (limit 200 MP, errors only above twice that) allocated the claimed size and decoded
    from PIL import Image

    src = _photos(tmp_path / "src", n=1)
    _png_claiming(src / "bomb.png", 9000, 9000)  # 81 MP, above the 64 MP default
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or real_load(self))
    prepare(src, tmp_path / "d", CFG, workers=1)
    reason = _skipped(tmp_path / "d")["bomb.png"]
    assert "81.0 MP" in reason and "--max-pixels" in reason
    assert (9000, 9000) not in decoded


def test_max_pixels_option_sets_the_limit(tmp_path):
    src = _photos(tmp_path / "src", n=2, size=48)
    write_image(src / "big.png", rgb_noise(64, 64, seed=5))
    res = runner.invoke(app, ["prepare", str(src), "--out", str(tmp_path / "d"), "--size", "32",
                              "--max-pixels", "3000", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "--max-pixels" in _skipped(tmp_path / "d")["big.png"]


def test_disk_full_in_a_worker_process_aborts_too(tmp_path, monkeypatch):
    # workers are spawned (skingen.workers), so a monkeypatch here does not reach them: a sitecustomize on their
    # PYTHONPATH fakes the full disk in every worker process instead
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import errno, os\n"
        "import skingen.data.prepare as P\n"
        "def full_disk(path, image, *a, **k):\n"
        "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))\n"
        "P.write_image = full_disk\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]))
    src = _photos(tmp_path / "src", n=5)
    (tmp_path / "outs").mkdir()
    with pytest.raises(SkingenError, match="No space left on device"):
        prepare(src, tmp_path / "outs" / "d", CFG, workers=2)
    assert list((tmp_path / "outs").iterdir()) == []
