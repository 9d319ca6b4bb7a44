"""Generating from `skingen train sd-lora` runs (issue 32) on scripts/make_tiny_sd.py's tiny random pipelines:
`sample` (text-to-image, prompts in the manifest), `inpaint` (kept pixels bit-exact), `plan` (evaluations, GPU time
from a measured row), `merge`, and augment's memorisation gate and `evaluate` on the generated set."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skingen.cli import app
from skingen.data.manifest import read_manifest, write_manifest
from skingen.downstream.augment import augment
from skingen.downstream.memgate import GateConfig
from skingen.generation.plan import GPU_COLUMNS, plan_job
from skingen.imageio import read_image, write_image
from skingen.run_folder import RunFolder
from tests.generation.test_sd_backend import _make_tiny_sd

pytest.importorskip("peft")
runner = CliRunner()
PROMPT = "a close-up photo of sks exanthem skin rash"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_data):
    from skingen.train.sd_lora import resolve_config, train_sd_lora

    root = tmp_path_factory.mktemp("sd-lora-gen")
    cfg = resolve_config(None, ["train.steps=2", "train.batch=2", "train.lr=1e-2"])
    return {kind: train_sd_lora(_make_tiny_sd()(root / kind, inpainting=kind == "inpainting"), tiny_data, cfg,
                                outdir=root / "runs", cpu=True) for kind in ("text-to-image", "inpainting")}


@pytest.mark.parametrize("kind", ["text-to-image", "inpainting"])
def test_sample_writes_labels_and_prompts_and_images_depend_on_the_seed_only(runs, tmp_path, kind):
    args = ["sample", str(runs[kind]), "--solver-steps", "2", "--cpu"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "all"), "--n", "4"])
    assert res.exit_code == 0, res.output
    rows = read_manifest(tmp_path / "all")
    assert [r["seed"] for r in rows] == ["0", "1", "2", "3"]
    assert {(r["label"], r["prompt"], r["model"]) for r in rows} == {("exanthem", PROMPT, "sd-lora")}
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "part"), "--seeds", "2-3", "--batch", "1"])
    assert res.exit_code == 0, res.output
    for name in ("seed000002.png", "seed000003.png"):
        a, b = read_image(tmp_path / "all" / name), read_image(tmp_path / "part" / name)
        assert a.shape == (32, 32, 3) and np.abs(a.astype(int) - b).max() <= 1  # batch of 4 vs 1: float rounding
    images = [read_image(tmp_path / "all" / f"seed{s:06d}.png") for s in range(4)]
    assert not np.array_equal(images[0], images[1])


def test_inpaint_from_the_run_keeps_pixels_bit_exact_and_records_the_prompt(runs, tiny_data, tmp_path):
    out = tmp_path / "inp"
    res = runner.invoke(app, ["inpaint", str(runs["inpainting"]), "--from", str(tiny_data), "--out", str(out),
                              "--n", "3", "--steps", "2", "--size", "0.3", "--solver-steps", "2", "--cpu"])
    assert res.exit_code == 0, res.output
    sources = {r["id"]: read_image(tiny_data / r["image"]) for r in read_manifest(tiny_data)}
    rows = read_manifest(out)
    assert len(rows) == 3
    for r in rows:
        assert r["model"] == "sd-lora" and r["prompt"] == PROMPT and "step-000002" in r["checkpoint"]
        image, edits = read_image(out / r["image"]), read_image(out / r["edit_map"])[..., 0]
        kept = edits == 0
        assert kept.any() and not kept.all()
        assert np.array_equal(image[kept], sources[r["parent_id"]][kept])  # bit-exact
        assert not np.array_equal(image[~kept], sources[r["parent_id"]][~kept])
    res = runner.invoke(app, ["inpaint", str(runs["text-to-image"]), "--from", str(tiny_data), "--out",
                              str(tmp_path / "no"), "--cpu"])
    assert res.exit_code == 1 and "text-to-image pipeline" in res.output and "skingen sample" in res.output


@pytest.mark.parametrize("kind,job", [("text-to-image", "sample"), ("inpainting", "inpaint")])
def test_plan_counts_evaluations_and_times_from_a_measured_gpu_row(runs, kind, job):
    run = runs[kind]
    plan = plan_job(run, 12000, batch=2, solver_steps=2, **({"region": {"steps": 1}} if job == "inpaint" else {}))
    assert plan.kind == job and plan.family == "sd-lora" and plan.size == 32
    assert plan.evaluations_per_image > 0 and plan.to_dict()["evaluations"] == plan.evaluations_per_image * 12000
    assert any("no measured GPU figure for sd-lora" in n for n in plan.notes) and not plan.gpu
    table = run / "gpu_figures.csv"  # a planted row (not a measurement): the plan must scale it
    with open(table, "w", newline="") as fh:
        writer = csv.DictWriter(fh, GPU_COLUMNS)
        writer.writeheader()
        writer.writerow({"card": "test card", "kind": job, "family": "sd-lora", "size": 32, "precision": "fp16",
                         "batch": 8, "seconds_per_image": 0.5, "measured": "planted"})
    try:
        plan = plan_job(run, 12000, batch=2, solver_steps=2, **({"region": {"steps": 1}} if job == "inpaint" else {}))
    finally:
        table.unlink()
    assert [g["predicted_s"] for g in plan.gpu] == [{1: 6000.0, 8: 750.0}]


def test_planted_copies_of_training_crops_are_caught_by_augments_gate(runs, tmp_path_factory, tmp_path):
    """On test_memgate.py's distinct textures, 16 train / 4 val / 4 test (the demo crops resemble each other across
    splits: a copy of a train crop is also near a val one there)."""
    from skingen.train.sd_lora import resolve_config, train_sd_lora
    from tests.downstream.test_memgate import texture

    real = tmp_path / "real"
    real_rows = []
    for i in range(24):
        split = "train" if i < 16 else "val" if i < 20 else "test"
        write_image(real / "images" / f"r{i:02d}.png", texture(i))
        real_rows.append({"id": f"r{i:02d}", "image": f"images/r{i:02d}.png", "label": "exanthem",
                          "source_id": f"photo{i}", "split": split, "origin": "real"})
    write_manifest(real, real_rows)
    pipe = RunFolder(runs["text-to-image"]).config()["pipeline_folder"]
    run = train_sd_lora(pipe, real, resolve_config(None, ["train.steps=2", "train.batch=2"]), outdir=tmp_path / "runs",
                        cpu=True)
    out = tmp_path / "synth"
    res = runner.invoke(app, ["sample", str(run), "--out", str(out), "--n", "6", "--solver-steps", "2", "--cpu"])
    assert res.exit_code == 0, res.output
    rows = read_manifest(out)
    planted = set()
    for k, r in enumerate(real_rows[:3]):  # exact copies of training crops, as a memorising LoRA would draw them
        write_image(out / f"copy{k}.png", read_image(real / r["image"]))
        rows.append({**rows[0], "id": f"copy-{k}", "image": f"copy{k}.png", "seed": 100 + k, "source_id": f"copy-{k}"})
        planted.add(f"copy-{k}")
    write_manifest(out, rows)
    # no --train: the gate finds the training crops through the run's provenance (its config.yaml)
    report = augment(real, [str(out)], tmp_path / "aug", gate=GateConfig(features=("pixels:64",)))
    kept = {r["id"] for r in read_manifest(tmp_path / "aug") if r["origin"] == "synthetic"}
    gate = report.memorised["synth"]
    assert (gate["checked"], gate["flagged"], gate["dropped"]) == (9, 3, 3)
    assert kept == {r["id"] for r in rows} - planted
    with open(tmp_path / "aug" / "memorised.csv", newline="") as fh:
        assert {r["id"]: r["nearest_train_id"] for r in csv.DictReader(fh)} == {f"copy-{k}": f"r{k:02d}" for k in range(3)}
    # evaluate takes the same set unchanged: KID against the test crops, memorisation against the train split
    res = runner.invoke(app, ["evaluate", "--real", f"{real}:test", "--synthetic", str(out), "--out", str(tmp_path / "ev"),
                              "--features", "pixels:8", "--metrics", "kid,memorisation", "--no-cache", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())["sets"][0]["metrics"]
    assert (metrics["memorisation"]["flagged"], metrics["memorisation"]["n_fake"]) == (3, 9)
    assert metrics["kid/pixels8"]["n_fake"] == 9 and np.isfinite(metrics["kid/pixels8"]["value"])


def test_sharded_sample_merges_into_the_one_process_set(runs, tmp_path):
    args = ["sample", str(runs["text-to-image"]), "--n", "4", "--batch", "2", "--solver-steps", "2", "--cpu"]
    for k in (0, 1):
        res = runner.invoke(app, [*args, "--shard", f"{k}/2", "--out", str(tmp_path / f"s{k}")])
        assert res.exit_code == 0, res.output
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "one")]).exit_code == 0
    res = runner.invoke(app, ["merge", str(tmp_path / "merged"), str(tmp_path / "s0"), str(tmp_path / "s1")])
    assert res.exit_code == 0, res.output
    for s in range(4):
        name = f"seed{s:06d}.png"
        assert (tmp_path / "merged" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
