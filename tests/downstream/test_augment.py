import csv

import pytest
import yaml

from skingen.data.manifest import read_manifest
from skingen.downstream.augment import augment as _augment
from skingen.downstream.augment import water_fill
from skingen.downstream.memgate import GateConfig
from skingen.errors import SkingenError

from .conftest import write_synthetic


def augment(real, synthetic, out, **kw):
    """``augment`` with the memorisation gate in 64 px pixel space (no Inception weights needed) against the
    real train split for sets without provenance (the gate itself: test_memgate.py)."""
    return _augment(real, synthetic, out, **{"train": str(real), "gate": GateConfig(features=("pixels:64",)), **kw})


def test_refuses_children_of_held_out_images(planted, tmp_path):
    test_row = next(r for r in read_manifest(planted) if r["split"] == "test")
    val_row = next(r for r in read_manifest(planted) if r["split"] == "val")
    child = write_synthetic(tmp_path / "child", [{"label": "a", "parent_id": test_row["id"]}])
    with pytest.raises(SkingenError, match="child of test image"):
        augment(planted, [str(child)], tmp_path / "out1")
    same_group = write_synthetic(tmp_path / "group", [{"label": "a", "source_id": val_row["source_id"]}])
    with pytest.raises(SkingenError, match="from val group"):
        augment(planted, [str(same_group)], tmp_path / "out2")
    cond = write_synthetic(tmp_path / "cond", [{"label": "a", "condition_source_id": test_row["source_id"]}])
    with pytest.raises(SkingenError, match="condition_source_id"):
        augment(planted, [str(cond)], tmp_path / "out3")
    not_train = write_synthetic(tmp_path / "split", [{"label": "a", "split": "test"}])
    with pytest.raises(SkingenError, match="only join the train split"):
        augment(planted, [str(not_train)], tmp_path / "out4")
    assert not any((tmp_path / f"out{i}").exists() for i in range(1, 5))


def test_refuses_a_generator_trained_on_held_out_groups(planted, tmp_path):
    run = tmp_path / "runs" / "00000-dcgan"
    ckpt = run / "checkpoints" / "step-000010"
    ckpt.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"family": "dcgan", "data": str(planted), "train": {"split": None}}))
    synth = write_synthetic(tmp_path / "s", [{"label": "a", "checkpoint": str(ckpt)}])
    with pytest.raises(SkingenError, match=r"trained on \d+ group\(s\) that are held out here"):
        augment(planted, [str(synth)], tmp_path / "out")
    (run / "config.yaml").write_text(yaml.safe_dump({"family": "dcgan", "data": str(planted), "train": {"split": "train"}}))
    report = augment(planted, [str(synth)], tmp_path / "out")
    assert report.checks == {"s": "ok"}


def test_export_tree_manifest_and_ratio(planted, tmp_path):
    real = read_manifest(planted)
    parent = next(r for r in real if r["split"] == "train" and r["label"] == "a")
    synth = write_synthetic(tmp_path / "dcgan", [{"label": "b", "condition": "seed000000.png", "condition_ita": "41.5"}] * 3
                            + [{"label": "a", "parent_id": parent["id"], "source_id": parent["source_id"]}] * 2)
    report = augment(planted, [str(synth)], tmp_path / "aug", ratio=0.05, balance="label")
    rows = read_manifest(tmp_path / "aug")
    n_train = sum(r["split"] == "train" for r in real)
    synthetic = [r for r in rows if r["origin"] == "synthetic"]
    assert len(synthetic) == round(0.05 * n_train) == report.synthetic["dcgan"]
    assert {r["split"] for r in synthetic} == {"train"}
    assert len(rows) - len(synthetic) == len(real)
    for r in rows:  # an ordinary class-per-folder tree
        assert r["image"].startswith(f"{r['split']}/{r['label']}/") and (tmp_path / "aug" / r["image"]).is_file()
    with open(tmp_path / "aug" / "manifest.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert {"model", "checkpoint", "seed", "parent_id", "condition", "condition_ita", "synthetic_set"} <= set(header)
    cond = [r for r in synthetic if r["condition"]]
    assert all(r["condition"].startswith("extra/condition/") and (tmp_path / "aug" / r["condition"]).is_file() for r in cond)
    with pytest.raises(SkingenError, match="not empty"):
        augment(planted, [str(synth)], tmp_path / "aug")


def test_labels_and_balancing(planted, tmp_path):
    nolabel = write_synthetic(tmp_path / "gen", [{}] * 4)
    with pytest.raises(SkingenError, match="no label; give the set's class as"):
        augment(planted, [str(nolabel)], tmp_path / "o1")
    report = augment(planted, [f"{nolabel}:b"], tmp_path / "o2")
    assert report.synthetic == {"gen": 4}
    n_train_b = sum(r["split"] == "train" and r["label"] == "b" for r in read_manifest(planted))
    report = augment(planted, [f"{nolabel}:b"], tmp_path / "o2b", ratio=2 / n_train_b)  # ratio per class covered
    assert report.synthetic == {"gen": 2}
    with pytest.raises(SkingenError, match="not a class of the real data"):
        augment(planted, [f"{nolabel}:zebra"], tmp_path / "o3")
    with pytest.raises(SkingenError, match="needs an ita_category"):
        augment(planted, [f"{nolabel}:b"], tmp_path / "o4", balance="skin-tone")
    # water filling: the smaller class rises first, limited by what is available
    assert water_fill({"a": 10, "b": 4}, {"a": 5, "b": 5}, 8) == {"a": 3, "b": 5}
    assert water_fill({"a": 10, "b": 4}, {"a": 5, "b": 5}, 4) == {"a": 0, "b": 4}


def test_skin_tone_balance_fills_the_rarer_tone_first(planted, tmp_path):
    train = [r for r in read_manifest(planted) if r["split"] == "train"]
    tones = {t: sum(r["ita_category"] == t for r in train) for t in ("light", "dark")}
    rare, common = sorted(tones, key=lambda t: (tones[t], t))
    gap = tones[common] - tones[rare]
    synth = write_synthetic(tmp_path / "tone", [{"label": "a", "ita_category": t} for t in ("light", "dark") for _ in range(gap + 4)])
    n_train_a = sum(r["label"] == "a" for r in train)
    augment(planted, [str(synth)], tmp_path / "o", ratio=(gap + 2) / n_train_a, balance="skin-tone")
    added = [r["ita_category"] for r in read_manifest(tmp_path / "o") if r["origin"] == "synthetic"]
    assert added.count(rare) == gap + 1 and added.count(common) == 1


def test_a_set_without_an_origin_column_is_recorded_as_synthetic(planted, tmp_path):
    synth = write_synthetic(tmp_path / "bare", [{"label": "a"}] * 3)
    rows = read_manifest(synth)
    from skingen.data.manifest import write_manifest

    write_manifest(synth, [{k: v for k, v in r.items() if k != "origin"} for r in rows])  # drops the column
    assert "origin" not in read_manifest(synth)[0] or not read_manifest(synth)[0]["origin"]
    augment(planted, [str(synth)], tmp_path / "aug", ratio=0.05)
    added = [r for r in read_manifest(tmp_path / "aug") if r["id"].startswith("syn-")]
    assert added and {r["origin"] for r in added} == {"synthetic"}  # was recorded as real
