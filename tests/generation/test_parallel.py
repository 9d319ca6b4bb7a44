"""Generation spread over processes and shards gives the one-process folder, byte for byte."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skingen.cli import app
from skingen.errors import SkingenError
from skingen.generation.merge import PER_SHARD, merge_folders
from skingen.generation.parallel import Shard, batches, block, parse_shard, shard_batches, shard_items
from skingen.generation.inpaint_folder import InpaintConfig, inpaint_to_folder
from skingen.generation.sample_folder import SampleConfig, sample_to_folder
from skingen.seeding import format_seeds, parse_seeds
from tests.conftest import tiny_runs

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def runs(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return tiny_runs(tiny_data, out, ("dermgan", "inpaint"))


def env() -> dict:
    """The environment of a child process: this checkout's source first, one thread (as torchrun gives)."""
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}


def torchrun(*args: str) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "skingen.cli", *args], env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def manifest(folder: Path) -> list[dict]:
    with open(folder / "manifest.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds_per_image"} for r in csv.DictReader(fh)]


def summary(folder: Path) -> dict:
    name = "sample.json" if (folder / "sample.json").is_file() else "inpaint.json"
    meta = json.loads((folder / name).read_text())
    return {k: v for k, v in meta.items() if k not in PER_SHARD}


def assert_same_folder(a: Path, b: Path) -> None:
    """Same files with the same bytes (manifest and summary: equal up to timing and how the work was spread)."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:
        if rel.suffix == ".png" or rel.parts[0] == "runs":
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert manifest(a) == manifest(b)
    assert summary(a) == summary(b)


def test_shards_and_processes_partition_the_one_process_batches():
    items = list(range(23))
    one = batches(items, 4)
    assert [len(c) for c in one] == [4, 4, 4, 4, 4, 3]
    assert block(6, 0, 4) == (0, 2) and block(6, 3, 4) == (5, 6)  # 2, 2, 1, 1 batches
    for count in (1, 2, 3, 6):
        parts = [shard_batches(items, 4, Shard(k, count), rank, world)
                 for k in range(count) for world in [2] for rank in range(world)]
        assert [c for part in parts for c in part] == one  # in order, nothing lost or repeated
    assert shard_items(items, 4, Shard(1, 3)) == list(range(8, 16))
    assert shard_items(items, 4, Shard(6, 7)) == []  # 6 batches for 7 shards: the last one has none
    assert parse_shard("2/8") == Shard(2, 8) and parse_shard(None) == Shard(0, 1)
    for bad in ("3/3", "1", "a/2", "1/0", "-1/2"):
        with pytest.raises(SkingenError, match="--shard"):
            parse_shard(bad)
    for seeds in ([0, 1, 2, 3, 10], [5], [9, 8, 7], [1, 3, 4, 5, 100, 101]):
        assert parse_seeds(format_seeds(seeds)) == seeds
    assert format_seeds([0, 1, 2, 3, 10]) == "0-3,10"


def test_torchrun_two_processes_sample_byte_identical(runs, tmp_path):
    one = tmp_path / "one"
    sample_to_folder(runs["dermgan"], one, list(range(32)), SampleConfig(batch=16))  # tests run one thread, as torchrun does
    res = torchrun("sample", str(runs["dermgan"]), "--seeds", "0-31", "--out", str(tmp_path / "two"), "--cpu")
    assert "2 process(es)" in res.stderr and res.stderr.count("wrote 32 images") == 1  # rank 0 speaks
    assert_same_folder(one, tmp_path / "two")
    assert len(list((tmp_path / "two" / "lesion").glob("*.png"))) == 32  # conditions of both processes
    assert json.loads((tmp_path / "two" / "sample.json").read_text())["processes"] == 2
    assert not list(tmp_path.glob(".two*"))  # no staging left behind


def test_torchrun_jobs_share_a_group_that_is_destroyed_at_exit(runs, tmp_path):
    """A gloo group left to interpreter finalisation can abort a process after its work succeeded (SIGABRT,
    "terminate called without an active exception": CI, stop 37): it is destroyed at exit, while Python is
    whole; until then a process may run several jobs."""
    script = tmp_path / "job.py"
    script.write_text(
        "import atexit, os\nimport torch.distributed as dist\n"
        "from skingen.generation.sample_folder import SampleConfig, sample_to_folder\n"
        f"for out in ('a', 'b'):\n"
        f"    sample_to_folder({str(runs['dermgan'])!r}, {str(tmp_path)!r} + '/' + out, list(range(4)), SampleConfig(batch=2))\n"
        "seen = [dist.is_initialized()]\n"
        "atexit._run_exitfuncs()\n"
        f"open({str(tmp_path)!r} + '/rank' + os.environ['RANK'], 'w').write(str(seen + [dist.is_initialized()]))\n")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script)], env=env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    for rank in (0, 1):  # the group lives through both jobs and is gone after the exit functions
        assert (tmp_path / f"rank{rank}").read_text() == "[True, False]"
    assert_same_folder(tmp_path / "a", tmp_path / "b")


def test_torchrun_two_processes_inpaint_byte_identical(runs, tiny_data, tmp_path):
    cfg = InpaintConfig(params={"steps": 2, "size": 6.0}, n=3, runs=2, seed=5, solver_steps=2, batch=2)
    inpaint_to_folder(runs["inpaint"], f"{tiny_data}:val", tmp_path / "one", cfg)
    torchrun("inpaint", str(runs["inpaint"]), "--from", f"{tiny_data}:val", "--crops", "3", "--runs", "2", "--seed", "5",
             "--solver-steps", "2", "--batch", "2", "--steps", "2", "--region-size", "6", "--out", str(tmp_path / "two"), "--cpu")
    assert_same_folder(tmp_path / "one", tmp_path / "two")
    assert [r["seed"] for r in manifest(tmp_path / "two")] == [str(s) for s in range(5, 11)]


def shard_cli(run, out, shard, *extra):
    res = runner.invoke(app, ["sample", str(run), "--seeds", "0-11", "--batch", "2", "--out", str(out), "--cpu",
                              *(["--shard", shard] if shard else []), *extra])
    assert res.exit_code == 0, res.output
    return res


def test_three_shards_merged_equal_the_unsharded_folder(runs, tmp_path):
    shard_cli(runs["dermgan"], tmp_path / "all", None)
    for k in range(3):
        shard_cli(runs["dermgan"], tmp_path / f"s{k}", f"{k}/3")
    assert [r["seed"] for r in manifest(tmp_path / "s1")] == [str(s) for s in range(4, 8)]
    assert json.loads((tmp_path / "s1" / "sample.json").read_text())["shard"] == "1/3"
    res = runner.invoke(app, ["merge", str(tmp_path / "merged"), *(str(tmp_path / f"s{k}") for k in (2, 0, 1))])
    assert res.exit_code == 0 and "3 shard(s), 12 images" in res.output, res.output
    assert_same_folder(tmp_path / "all", tmp_path / "merged")
    meta = json.loads((tmp_path / "merged" / "sample.json").read_text())
    assert meta["n"] == 12 and meta["shard"] is None and len(meta["merged_from"]) == 3


def test_more_shards_than_batches_merge_byte_identical(runs, tmp_path):
    """32 seeds at batch 16 are 2 batches: of 3 shards one is idle, succeeds with an empty folder, and merges."""
    def run(out, *shard):
        res = runner.invoke(app, ["sample", str(runs["dermgan"]), "--seeds", "0-31", "--batch", "16", "--out",
                                  str(out), "--cpu", *shard])
        assert res.exit_code == 0, res.output
        return res
    run(tmp_path / "all")
    idle = [run(tmp_path / f"s{k}", "--shard", f"{k}/3") for k in range(3)][2]
    assert "shard 2/3 has no work" in idle.output and "--batch 11" in idle.output
    assert manifest(tmp_path / "s2") == [] and not list((tmp_path / "s2").glob("*.png"))
    merge_folders(tmp_path / "merged", [tmp_path / f"s{k}" for k in range(3)])
    assert_same_folder(tmp_path / "all", tmp_path / "merged")


def test_an_idle_inpaint_shard_writes_an_empty_folder(runs, tiny_data, tmp_path):
    kw = dict(params={"steps": 2, "size": 6}, n=1, runs=2, solver_steps=2, batch=2)
    for k in range(2):
        inpaint_to_folder(runs["inpaint"], tiny_data, tmp_path / f"s{k}", InpaintConfig(shard=f"{k}/2", **kw))
    inpaint_to_folder(runs["inpaint"], tiny_data, tmp_path / "all", InpaintConfig(**kw))
    assert manifest(tmp_path / "s1") == []
    merge_folders(tmp_path / "merged", [tmp_path / "s0", tmp_path / "s1"])
    assert_same_folder(tmp_path / "all", tmp_path / "merged")


def test_inpaint_shards_merge(runs, tiny_data, tmp_path):
    kw = dict(params={"steps": 2, "size": 6}, n=2, runs=2, solver_steps=2, batch=1)
    inpaint_to_folder(runs["inpaint"], tiny_data, tmp_path / "all", InpaintConfig(**kw))
    for k in range(2):
        inpaint_to_folder(runs["inpaint"], tiny_data, tmp_path / f"s{k}", InpaintConfig(shard=f"{k}/2", **kw))
    merge_folders(tmp_path / "merged", [tmp_path / "s0", tmp_path / "s1"])
    assert_same_folder(tmp_path / "all", tmp_path / "merged")
    meta = json.loads((tmp_path / "merged" / "inpaint.json").read_text())
    ref = json.loads((tmp_path / "all" / "inpaint.json").read_text())
    assert meta["images"] == 4 and meta["evaluations_per_image"] == ref["evaluations_per_image"]
    assert meta["pixels_per_image"] == ref["pixels_per_image"]


def test_merge_refuses_mismatched_overlapping_or_missing_shards(runs, tiny_data, tmp_path):
    for k in range(3):
        shard_cli(runs["dermgan"], tmp_path / f"s{k}", f"{k}/3")
    shard_cli(runs["dermgan"], tmp_path / "b0", "0/3", "--no-ema")      # other weights
    shard_cli(runs["dermgan"], tmp_path / "o1", "1/2")                  # another split of the job: overlaps
    shard_cli(runs["dermgan"], tmp_path / "l0", "0/3", "--layouts")    # another condition
    cases = [(["s0", "s1"], "seeds 8-11 of the job (0-11) are in none"),
             (["s0", "s1", "s2", "o1"], "is in both"),
             (["b0", "s1", "s2"], "differ in 'ema'"),
             (["l0", "s1", "s2"], "differ in 'layouts'"),
             (["s0", "s0"], "given twice")]
    for names, message in cases:
        res = runner.invoke(app, ["merge", str(tmp_path / "m"), *(str(tmp_path / n) for n in names)])
        assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output, (names, res.output)
        assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".m.*"))
    inp = tmp_path / "inp"
    inpaint_to_folder(runs["inpaint"], tiny_data, inp, InpaintConfig(n=1, solver_steps=1, batch=1))
    with pytest.raises(SkingenError, match="cannot merge sample.json folders with inpaint.json"):
        merge_folders(tmp_path / "m", [tmp_path / "s0", inp])
    with pytest.raises(SkingenError, match="not a finished folder"):
        merge_folders(tmp_path / "m", [tmp_path / "s0", tiny_data])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(SkingenError, match="not empty"):
        merge_folders(tmp_path / "full", [tmp_path / f"s{k}" for k in range(3)])


KILLER = """
import os, signal, sys
from skingen.generation.sample_folder import SampleConfig, sample_to_folder
def progress(done, total):
    if done >= 2:  # the first batch of the shard is written, then the job is killed
        os.kill(os.getpid(), getattr(signal, sys.argv[3]))
sample_to_folder(sys.argv[1], sys.argv[2], list(range(12)), SampleConfig(batch=2, shard="1/3"), progress=progress)
"""


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_killed_shard_leaves_no_folder_and_rerunning_it_recovers(runs, tmp_path, sig):
    out = tmp_path / "s1"
    res = subprocess.run([sys.executable, "-c", KILLER, str(runs["dermgan"]), str(out), sig], env=env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert not out.exists()  # never a visible half-written folder
    leftovers = list(tmp_path.glob(".s1.partial-*"))
    if sig == "SIGKILL":  # cannot be caught: the hidden staging folder stays, holding the images written so far
        assert len(leftovers) == 1 and len(list(leftovers[0].glob("seed*.png"))) == 2
    else:                 # SIGTERM (scancel, time limits) removes it
        assert leftovers == []
    shard_cli(runs["dermgan"], out, "1/3")
    for k in (0, 2):
        shard_cli(runs["dermgan"], tmp_path / f"s{k}", f"{k}/3")
    shard_cli(runs["dermgan"], tmp_path / "all", None)
    merge_folders(tmp_path / "merged", [tmp_path / f"s{k}" for k in range(3)])  # hidden leftovers are not read
    assert_same_folder(tmp_path / "all", tmp_path / "merged")
