import json

import pytest

from skingen.runs import JsonlWriter, atomic_path, new_run_dir, read_jsonl, write_csv, write_env_json


def test_run_dirs_are_numbered_and_never_reused(tmp_path):
    a = new_run_dir(tmp_path, "dcgan", "demo")
    b = new_run_dir(tmp_path, "dcgan", "demo")
    assert a.name == "00000-dcgan-demo" and b.name == "00001-dcgan-demo"
    (tmp_path / "00007-other").mkdir()
    assert new_run_dir(tmp_path, "cvae").name == "00008-cvae"


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_jsonl_ignores_torn_last_line(tmp_path):
    path = tmp_path / "stats.jsonl"
    with JsonlWriter(path) as w:
        w.write({"step": 1})
        w.write({"step": 2})
    with open(path, "a") as fh:
        fh.write('{"step": 3')  # interrupted mid-line
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]


def test_env_json(tmp_path):
    info = write_env_json(tmp_path, manifest_sha256="abc")
    saved = json.loads((tmp_path / "env.json").read_text())
    assert saved["manifest_sha256"] == "abc" and "numpy" in saved["versions"] and info["python"]


def test_write_csv_columns_first_then_first_seen_keys(tmp_path):
    write_csv(tmp_path / "t.csv", [{"b": 1, "a": None}, {"c": "x", "b": 2}], columns=("a",))
    assert (tmp_path / "t.csv").read_text().splitlines() == ["a,b,c", ",1,", ",2,x"]
    write_csv(tmp_path / "empty.csv", [], columns=("a", "b"))
    assert (tmp_path / "empty.csv").read_text().splitlines() == ["a,b"]


DAMAGED_JSON = {
    "truncated": b'{"model": "dcgan", "seeds": "0-',
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00",
    "a list": b"[1, 2, 3]",
    "nested": b"[" * 100_000 + b"]" * 100_000,
    "empty": b"",
}


@pytest.mark.parametrize("damage", DAMAGED_JSON, ids=list(DAMAGED_JSON))
def test_read_json_turns_any_damage_into_one_line_naming_the_file(tmp_path, damage):
    from skingen.errors import SkingenError
    from skingen.runs import read_json

    path = tmp_path / "sample.json"
    path.write_bytes(DAMAGED_JSON[damage])
    with pytest.raises(SkingenError, match="sample.json") as err:
        read_json(path)
    assert "\n" not in str(err.value)
    with pytest.raises(SkingenError, match="not found"):
        read_json(tmp_path / "missing.json")


DAMAGED_CSV = {
    "NUL byte": b"id,image,split\na\x00,b.png,train\n",
    "not UTF-8": b"id,image,split\n\xe9t\xe9,b.png,train\n",
    "huge field": b'id,image,split\n"' + b"x" * 200_000 + b'",b.png,train\n',
}


@pytest.mark.parametrize("damage", DAMAGED_CSV, ids=list(DAMAGED_CSV))
def test_read_csv_turns_any_damage_into_one_line_naming_the_file(tmp_path, damage):
    from skingen.data.manifest import read_manifest
    from skingen.errors import SkingenError

    (tmp_path / "manifest.csv").write_bytes(DAMAGED_CSV[damage])
    with pytest.raises(SkingenError, match="manifest.csv") as err:
        read_manifest(tmp_path)  # before: csv.Error / UnicodeDecodeError tracebacks
    assert "\n" not in str(err.value)


def test_read_csv_reads_a_spreadsheet_bom(tmp_path):
    from skingen.runs import read_csv

    (tmp_path / "faces.csv").write_bytes("\ufefffile,face\nIMG_1.JPG,yes\n".encode())
    assert read_csv(tmp_path / "faces.csv", encoding="utf-8-sig") == (["file", "face"],
                                                                       [{"file": "IMG_1.JPG", "face": "yes"}])
