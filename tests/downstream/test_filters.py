"""``augment --filter``: the critic drops a planted blurred subset, the label filter drops off-class images, the
result is the same for a seed, and val/test images are never read."""

import shutil

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from skingen.data.imagesets import open_folder
from skingen.data.manifest import read_manifest, write_manifest
from skingen.downstream.augment import load_synthetic
from skingen.downstream.filters import filter_sets, parse_filter
from skingen.errors import SkingenError
from skingen.imageio import read_image, write_image
from skingen.runs import read_csv

from .conftest import write_planted
from .test_augment import augment

COLOUR = "colour"  # weights-free, and it sees blur (the spread of L*a*b* values narrows)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_planted(tmp_path_factory.mktemp("filt") / "data", {"a": 36, "b": 36}, size=24)


def _children(data, out, blurred: bool, label="a"):
    """One child of every real train image of ``label``: an exact copy, or a sigma=1.5 blur of it."""
    rows = []
    for r in read_manifest(data):
        if r["split"] != "train" or r["label"] != label:
            continue
        img = read_image(data / r["image"])
        if blurred:
            img = np.clip(np.round(gaussian_filter(img.astype(float), (1.5, 1.5, 0))), 0, 255).astype(np.uint8)
        name = f"{'blur' if blurred else 'copy'}-{r['id']}.png"
        write_image(out / name, img)
        rows.append({"id": name[:-4], "image": name, "label": label, "origin": "synthetic", "model": "planted",
                     "checkpoint": "", "split": "train", "parent_id": r["id"], "source_id": r["source_id"]})
    return rows


@pytest.fixture(scope="module")
def mixed(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed") / "mixed"
    write_manifest(out, _children(data, out, False) + _children(data, out, True))
    return out


def _filter(data, synthetic, spec, seed=0):
    sets = [load_synthetic(str(synthetic))]
    return filter_sets(sets, data, read_manifest(data), parse_filter(spec, COLOUR), seed), sets


def test_the_critic_drops_the_blurred_copies(data, mixed):
    rows, sets = _filter(data, mixed, "critic:0.5")
    kept = {r["id"] for r in rows if r["kept"]}
    assert len(kept) == len(rows) // 2 == 24
    assert sum(k.startswith("copy-") for k in kept) >= 22  # the blurred ones score as synthetic
    assert {r["id"] for r in sets[0].rows} == kept and all("filter_score" in r for r in sets[0].rows)
    blur = np.mean([r["score"] for r in rows if r["id"].startswith("blur-")])
    copy = np.mean([r["score"] for r in rows if r["id"].startswith("copy-")])
    assert blur > copy  # strong L2 keeps probabilities near 0.5; the order is what counts


def test_filters_are_deterministic_for_a_seed(data, mixed):
    for spec in ("critic:0.3", "label:0.5"):
        assert _filter(data, mixed, spec, 4)[0] == _filter(data, mixed, spec, 4)[0]


def test_label_filter_drops_images_of_another_class(data, tmp_path):
    out = tmp_path / "s"
    rows = _children(data, out, False, "a") + [{**r, "label": "a", "id": "wrong-" + r["id"]}
                                                for r in _children(data, out, False, "b")]
    write_manifest(out, rows)
    scored, _ = _filter(data, out, "label:0.5")
    assert all(r["kept"] == (not r["id"].startswith("wrong-")) for r in scored)


def test_filter_never_reads_val_or_test(data, mixed, tmp_path):
    before = {spec: _filter(data, mixed, spec)[0] for spec in ("critic:0.5", "label:0.5")}
    other = tmp_path / "data"
    shutil.copytree(data, other)
    held = [r for r in read_manifest(other) if r["split"] != "train"]
    for i, r in enumerate(held):  # planted val/test: blurred and relabelled images, then no files at all
        img = gaussian_filter(read_image(other / r["image"]).astype(float), (2, 2, 0)).astype(np.uint8)
        write_image(other / r["image"], img)
    rows = read_manifest(other)
    for r in rows:
        if r["split"] != "train":
            r["label"] = "a"
    write_manifest(other, rows)
    after = {spec: _filter(other, mixed, spec)[0] for spec in before}
    for r in held:
        (other / r["image"]).unlink()
    gone = {spec: _filter(other, mixed, spec)[0] for spec in before}
    assert before == after == gone


def test_augment_writes_filtered_csv_manifest_and_datasheet(data, mixed, tmp_path):
    # allow_memorised: the exact copies would be dropped by the memorisation gate before the filter sees them
    report = augment(data, [str(mixed)], tmp_path / "aug", filter_spec=parse_filter("critic:0.5", COLOUR),
                     allow_memorised=True)
    assert report.synthetic == {"mixed": 24}
    scored = read_csv(tmp_path / "aug" / "filtered.csv")[1]
    assert len(scored) == 48 and sum(int(r["kept"]) for r in scored) == 24
    synth = [r for r in read_manifest(tmp_path / "aug") if r["origin"] == "synthetic"]
    assert {r["id"] for r in synth} == {r["id"] for r in scored if r["kept"] == "1"}
    assert all(r["filter_score"] for r in synth)
    assert "critic:0.5" in (tmp_path / "aug" / "DATASHEET.md").read_text()
    assert len(load_synthetic(str(tmp_path / "aug")).rows) == 24  # a filtered set feeds `downstream`
    assert len(open_folder(tmp_path / "aug")) == 24  # and `evaluate --fake`: its synthetic images only


@pytest.mark.parametrize("bad", ["critic", "critic:0", "critic:1.5", "label:2", "label:x", "best:0.3", "critic:nan"])
def test_bad_filters_are_one_line_errors(bad):
    with pytest.raises(SkingenError, match="--filter"):
        parse_filter(bad)
