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
