"""The memorisation gate of augment (issue 19): copies of training crops are dropped, copies of test crops refused."""

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from skingen.data.manifest import read_manifest, write_manifest
from skingen.downstream.augment import NO_GENERATOR, augment
from skingen.downstream.memgate import GateConfig
from skingen.errors import SkingenError
from skingen.imageio import read_image, write_image

PIXELS = GateConfig(features=("pixels:64",))


def texture(seed: int, size: int = 32) -> np.ndarray:
    """A smooth skin-like texture, different for every seed."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    base = np.array([200, 150, 130]) + rng.normal(0, 20, 3)
    noise = gaussian_filter(rng.normal(0, 1, (size, size, 3)), sigma=(2, 2, 0))
    return np.clip(base + 60 * noise, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """16 train, 4 val, 4 test crops, one photo (group) each."""
    out = tmp_path_factory.mktemp("memgate") / "real"
    rows = []
    for i in range(24):
        split = "train" if i < 16 else "val" if i < 20 else "test"
        rid = f"r{i:02d}"
        write_image(out / "images" / f"{rid}.png", texture(i))
        rows.append({"id": rid, "image": f"images/{rid}.png", "label": "exanthem", "source_id": f"photo{i}",
                     "split": split, "origin": "real"})
    write_manifest(out, rows)
    return out


def synthetic(folder, images: dict[str, np.ndarray]):
    rows = []
    folder.mkdir(parents=True)
    for name, img in images.items():
        Image.fromarray(img).save(folder / f"{name}.png")
        rows.append({"id": name, "image": f"{name}.png", "label": "exanthem", "source_id": name, "split": "train",
                     "origin": "synthetic", "model": "dcgan", "checkpoint": ""})
    write_manifest(folder, rows)
    return folder


def kept_synthetic(aug) -> set[str]:
    return {r["id"] for r in read_manifest(aug) if r["origin"] == "synthetic"}


def memorised_rows(aug) -> dict[str, dict]:
    with open(aug / "memorised.csv", newline="") as fh:
        return {r["id"]: r for r in csv.DictReader(fh)}


def test_copies_of_training_crops_are_dropped_and_genuine_samples_kept(real, tmp_path):
    train = {r["id"]: read_image(real / r["image"]) for r in read_manifest(real) if r["split"] == "train"}
    copies = {f"exact-{k}": train[k] for k in ("r00", "r05", "r11")}
    copies |= {f"jpeg-{k}": jpeg(train[k]) for k in ("r02", "r07", "r15")}
    genuine = {f"genuine-{i}": texture(1000 + i) for i in range(8)}
    synth = synthetic(tmp_path / "synth", copies | genuine)
    report = augment(real, [str(synth)], tmp_path / "aug", train=str(real), gate=PIXELS)
    assert kept_synthetic(tmp_path / "aug") == set(genuine)
    assert report.summary(False)[1] == ["synth: generator training data unverified: no checkpoint recorded"]
    gate = report.memorised["synth"]
    assert (gate["checked"], gate["flagged"], gate["dropped"], gate["kept"]) == (14, 6, 6, 0)
    flagged = memorised_rows(tmp_path / "aug")
    assert set(flagged) == set(copies)
    for name, row in flagged.items():  # each copy is traced to the crop it copies
        assert row["nearest_train_id"] == name.split("-")[1] and float(row["ratio_pixels64"]) < 1 / 3
    assert (tmp_path / "aug" / "memorised.png").is_file()
    meta = json.loads((tmp_path / "aug" / "augment.json").read_text())
    assert meta["memorisation_gate"]["synth"]["dropped"] == 6 and meta["allow_memorised"] is False
    sheet = (tmp_path / "aug" / "DATASHEET.md").read_text()
    assert "synth: 6 of 14 (42.9%) near-copies of training images, 6 dropped" in sheet

    report = augment(real, [str(synth)], tmp_path / "aug2", train=str(real), gate=PIXELS, allow_memorised=True)
    assert kept_synthetic(tmp_path / "aug2") == set(copies | genuine)
    assert report.memorised["synth"]["kept"] == 6 and report.memorised["synth"]["dropped"] == 0


def test_a_copy_of_a_test_crop_is_an_error_naming_both_files(real, tmp_path):
    test_row = next(r for r in read_manifest(real) if r["split"] == "test")
    synth = synthetic(tmp_path / "leak", {"fine": texture(2000), "sneaky": jpeg(read_image(real / test_row["image"]))})
    with pytest.raises(SkingenError, match=r"sneaky\.png is a near-copy of held-out image .*" + test_row["image"]):
        augment(real, [str(synth)], tmp_path / "out", train=str(real), gate=PIXELS, allow_memorised=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["mirror", "rot90", "rot270-mirror", "shift2", "jpeg50"])
def test_transformed_copies_of_a_test_crop_are_refused(real, tmp_path, kind):
    test_row = next(r for r in read_manifest(real) if r["split"] == "test")
    crop = read_image(real / test_row["image"])
    copy = {"mirror": crop[:, ::-1], "rot90": np.rot90(crop), "rot270-mirror": np.rot90(crop, 3)[:, ::-1],
            "shift2": np.pad(crop, ((2, 0), (2, 0), (0, 0)), mode="edge")[:-2, :-2],
            "jpeg50": jpeg(crop, 50)}[kind]
    genuine = {f"genuine-{i}": texture(4000 + i) for i in range(6)}  # no false refusal of new textures
    synth = synthetic(tmp_path / "leak", genuine | {"sneaky": np.ascontiguousarray(copy)})
    with pytest.raises(SkingenError, match=r"sneaky\.png is a near-copy of held-out image .*" + test_row["image"]):
        augment(real, [str(synth)], tmp_path / "out", train=str(real), gate=PIXELS, allow_memorised=True)
    augment(real, [str(synthetic(tmp_path / "fine", genuine))], tmp_path / "ok", train=str(real), gate=PIXELS)


def test_a_set_without_provenance_needs_train(real, tmp_path):
    synth = synthetic(tmp_path / "orphan", {"a": texture(3000)})
    with pytest.raises(SkingenError, match="give them with --train DATA"):
        augment(real, [str(synth)], tmp_path / "out", gate=PIXELS)


def children(folder, parents: dict[str, str], images: dict[str, np.ndarray]):
    """A set made from real train crops, as inpaint and tone write it: each row names its parent."""
    synthetic(folder, images)
    rows = read_manifest(folder)
    for r in rows:
        r.update(parent_id=parents[r["id"]], model="opencv:shiftmap")
    write_manifest(folder, rows)
    return folder


def test_a_set_made_from_train_crops_keeps_its_children_and_drops_copies_of_other_photos(real, tmp_path):
    """An inpainted or toned crop is near its parent by design: kept and listed (own_parent = 1), no --train
    needed; an image that copies another photo than its parent is still dropped."""
    train = {r["id"]: read_image(real / r["image"]) for r in read_manifest(real) if r["split"] == "train"}
    rng = np.random.default_rng(0)
    kids = {f"kid-{k}": np.clip(train[k].astype(int) + rng.integers(-6, 7, train[k].shape), 0, 255).astype(np.uint8)
            for k in ("r01", "r04", "r09")}
    parents = {f"kid-{k}": k for k in ("r01", "r04", "r09")} | {"cuckoo": "r02"}
    synth = children(tmp_path / "tone", parents, kids | {"cuckoo": train["r13"]})  # says r02, copies r13
    report = augment(real, [str(synth)], tmp_path / "aug", gate=PIXELS)
    assert kept_synthetic(tmp_path / "aug") == set(kids)
    gate = report.memorised["tone"]
    assert (gate["checked"], gate["flagged"], gate["dropped"], gate["own_parent"]) == (4, 1, 1, 3)
    listed = memorised_rows(tmp_path / "aug")
    assert {k: (r["nearest_train_id"], r["own_parent"], r["kept"]) for k, r in listed.items()} == {
        "kid-r01": ("r01", "1", "1"), "kid-r04": ("r04", "1", "1"), "kid-r09": ("r09", "1", "1"),
        "cuckoo": ("r13", "0", "0")}
    assert "3 near their own parent's photo (made from it: kept)" in (tmp_path / "aug" / "DATASHEET.md").read_text()
    assert report.checks["tone"] == NO_GENERATOR and report.summary(False)[1] == []  # nothing to verify, no note
    named_twice = augment(real, [str(synth)], tmp_path / "aug2", train=f"{real}/../real:train", gate=PIXELS)
    assert named_twice.memorised["tone"] == gate  # --train naming the same crops another way changes nothing


def test_a_loose_hash_pair_is_a_copy_only_when_the_pictures_align(tmp_path):
    """The shift-tolerant pair (hash within 24 bits, thumbnails within 8) also joins crops of nearly featureless
    skin of different photos; aligning the pictures tells a shifted copy (residual 0) from another photo."""
    from skingen.data.neardup import Fingerprints, aligned_residual, fingerprint, transformed_copies

    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    base = np.array([205.0, 160.0, 140.0]) + 12 * gaussian_filter(rng.normal(0, 1, (64, 64, 3)), (6, 6, 0))
    mine = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)      # flat skin, fine grain
    other = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)     # same layout, other grain
    shifted = np.ascontiguousarray(np.pad(mine, ((3, 0), (3, 0), (0, 0)), mode="edge")[:-3, :-3])
    assert aligned_residual(shifted, mine)[0] < 1.0 < 4.0 < aligned_residual(other, mine)[0]

    _, ph, th = fingerprint(mine)
    loose = ph ^ 0b1111_1111_1111  # 12 bits away: past prepare's rule (10), within the loose one (24)
    for name, picture in (("other", other), ("shifted", shifted)):
        write_image(tmp_path / f"{name}.png", picture)
        ref = Fingerprints((str(tmp_path / f"{name}.png"),), np.array([loose], np.uint64), th[None])
        found = transformed_copies([mine], ["mine"], ref)
        assert found == ([] if name == "other" else [("mine", str(tmp_path / "shifted.png"))]), name
