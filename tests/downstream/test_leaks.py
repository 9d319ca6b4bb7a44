"""Leaks found by content (issue 21, item 1): the same photos prepared again under other ids are caught."""

import csv
import json

import pytest
import yaml

from skingen.data.manifest import read_manifest
from skingen.data.neardup import cross_matches, fingerprint, near_duplicate_pairs
from skingen.data.prepare import PrepareConfig, prepare
from skingen.data.sources import CsvColumns
from skingen.downstream.augment import augment, check_leakage, load_synthetic
from skingen.errors import SkingenError

from .conftest import write_synthetic


def _listing(path, photos, group_prefix):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "grp", "label"])
        for p in photos:
            w.writerow([p.name, f"{group_prefix}-{p.stem}", "exanthem"])
    return path


@pytest.fixture(scope="module")
def twice(demo_raw, tmp_path_factory):
    """The 12 demo photos prepared twice: A (the study's data) and B (a generator's data) with other group
    ids, order (so other crop ids) and seed: no id of B names a held-out photo of A."""
    tmp = tmp_path_factory.mktemp("twice")
    photos = sorted((demo_raw / "images").iterdir())
    a, b = tmp / "a", tmp / "b"
    cols = CsvColumns(image="file", group="grp")
    prepare(_listing(tmp / "a.csv", photos, "study"), a, PrepareConfig(size=32, seed=0), columns=cols,
            root=demo_raw / "images")
    prepare(_listing(tmp / "b.csv", photos[::-1], "gen"), b, PrepareConfig(size=48, seed=3), columns=cols,
            root=demo_raw / "images")
    return a, b


def _fake_run(tmp_path, data, split="train"):
    run = tmp_path / "runs" / "00000-dcgan"
    ckpt = run / "checkpoints" / "step-000010"
    ckpt.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"family": "dcgan", "data": str(data), "train": {"split": split}}))
    return ckpt


def test_generator_trained_on_held_out_photos_under_other_ids_is_refused(twice, tmp_path):
    a, b = twice
    rows_a, rows_b = read_manifest(a), read_manifest(b)
    held = {r["photo"] for r in rows_a if r["split"] != "train"}
    b_train = {r["photo"] for r in rows_b if r["split"] == "train"}
    assert held & b_train, "test premise: some photo held out in A is in B's train split"
    assert not {r["source_id"] for r in rows_a} & {r["source_id"] for r in rows_b}, "no id in common"
    synth = write_synthetic(tmp_path / "s", [{"label": "exanthem", "checkpoint": str(_fake_run(tmp_path, b))}] * 2)
    with pytest.raises(SkingenError, match="near-duplicate of (val|test) picture") as err:
        augment(a, [str(synth)], tmp_path / "out")
    leaked = sorted(held & b_train)
    assert any(p in str(err.value) for p in leaked)  # names the photo (both sides are the same file here)
    assert not (tmp_path / "out").exists()
    with pytest.raises(SkingenError, match="near-duplicate"):  # downstream runs the same check
        check_leakage(rows_a, load_synthetic(str(synth)), a)


def test_parents_taken_from_a_copy_of_held_out_photos_are_refused(twice, tmp_path):
    a, b = twice
    held = {r["photo"] for r in read_manifest(a) if r["split"] != "train"}
    parent = next(r for r in read_manifest(b) if r["photo"] in held)
    synth = write_synthetic(tmp_path / "p", [{"label": "exanthem", "parent_id": parent["id"], "condition": "data"}])
    (synth / "sample.json").write_text(json.dumps({"masks": f"{b}:{parent['split']}", "source": None}))
    with pytest.raises(SkingenError, match="parent/condition picture .* near-duplicate") as err:
        check_leakage(read_manifest(a), load_synthetic(str(synth)), a)
    assert parent["photo"] in str(err.value)


def test_a_generator_trained_on_the_train_photos_only_passes(twice, tmp_path):
    a, _ = twice
    rows = read_manifest(a)
    synth = load_synthetic(str(write_synthetic(tmp_path / "ok", [{"label": "exanthem",
                                                                  "checkpoint": str(_fake_run(tmp_path, a))}])))
    check_leakage(rows, synth, a)
    assert synth.generator_check == "ok"


def test_the_near_duplicate_rule_is_prepares_rule(demo_raw):
    from skingen.imageio import read_image

    photo = read_image(sorted((demo_raw / "images").iterdir())[0])
    other = read_image(sorted((demo_raw / "images").iterdir())[1])
    small = photo[::2, ::2]  # the same photo at half size
    fps = [fingerprint(x) for x in (photo, small, other)]
    ph = [f[1] for f in fps]
    th = [f[2] for f in fps]
    import numpy as np

    assert near_duplicate_pairs(np.array(ph, dtype=np.uint64), np.stack(th)) == [(0, 1)]
    assert cross_matches(np.array(ph[:1], dtype=np.uint64), np.stack(th[:1]),
                         np.array(ph[1:], dtype=np.uint64), np.stack(th[1:])) == [(0, 0)]
