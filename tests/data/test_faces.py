"""Faces at prepare (issue 19): crops touching a face are dropped, with reasons and counts."""

import csv
import json
import shutil

import numpy as np
import pytest

import skingen.data.prepare as prepare_module
from skingen.data.faces import FaceConfig, box_touches_face, detect_faces
from skingen.data.prepare import PrepareConfig, prepare
from skingen.errors import SkingenError
from skingen.imageio import read_image, write_image, write_mask
from tests.conftest import rgb_noise, shared_data


def test_box_touches_face_by_hand():
    face = [(100, 50, 140, 90)]  # x0, y0, x1, y1 (exclusive)
    assert box_touches_face((60, 40, 41), face)  # x 60..100 inclusive: shares column 100
    assert not box_touches_face((60, 40, 40), face)  # x 60..99: ends just before
    assert not box_touches_face((140, 50, 30), face)  # starts at x1
    assert box_touches_face((0, 0, 200), face)  # contains it
    assert not box_touches_face((0, 0, 200), [])


def test_bad_policy_is_an_error():
    with pytest.raises(SkingenError, match="drop-crops"):
        FaceConfig(policy="blur")


@pytest.fixture
def planted_face(tmp_path, monkeypatch):
    """One 200x200 photo with a lesion mask in all four corners and a 'face' the detector reports at the
    top-left corner (the detector is replaced: this tests the policies, not the detector)."""
    src, masks = tmp_path / "src", tmp_path / "masks"
    write_image(src / "kid.png", rgb_noise(200, 200, seed=1))
    lesion = np.zeros((200, 200), bool)
    for y, x in ((10, 10), (10, 150), (150, 10), (150, 150)):
        lesion[y:y + 40, x:x + 40] = True
    write_mask(masks / "kid.png", lesion)
    monkeypatch.setattr(prepare_module, "detect_faces", lambda image, cfg: [(0, 0, 60, 60)])
    return src, masks


def _cfg(policy):
    from skingen.data.crops import CropConfig

    return PrepareConfig(size=32, faces=FaceConfig(policy=policy),
                         crop=CropConfig(scales=(0.4,), component_margins=(), max_per_photo=8))


def test_policies_drop_the_crops_or_the_photo(planted_face, tmp_path):
    src, masks = planted_face
    keep = prepare(src, tmp_path / "keep", _cfg("keep"), masks=masks)
    drop = prepare(src, tmp_path / "drop", _cfg("drop-crops"), masks=masks)
    boxes_keep = [tuple(map(int, r["crop_box"].split(","))) for r in _manifest(tmp_path / "keep")]
    boxes_drop = [tuple(map(int, r["crop_box"].split(","))) for r in _manifest(tmp_path / "drop")]
    touching = [b for b in boxes_keep if b[0] < 60 and b[1] < 60]
    assert touching and set(boxes_drop) == set(boxes_keep) - set(touching)
    assert drop.dropped_crops["face"] == len(touching)
    info = json.loads((tmp_path / "drop" / "prepare.json").read_text())
    assert info["faces"] == {"policy": "drop-crops", "photos_with_faces": 1, "crops_dropped": len(touching),
                             "photos_dropped": 0, "photos_marked": 0}
    with open(tmp_path / "drop" / "skipped.csv", newline="") as fh:
        reasons = [r["reason"] for r in csv.DictReader(fh)]
    assert sum("intersects a detected face" in r for r in reasons) == len(touching)
    assert sum(keep.crops.values()) == len(boxes_keep)
    with pytest.raises(SkingenError, match="nothing usable"):  # the only photo shows a face
        prepare(src, tmp_path / "photos", _cfg("drop-photos"), masks=masks)


def test_photos_marked_by_a_person_are_skipped(tmp_path):
    src = tmp_path / "src"
    for name in ("a.png", "b.png", "c.png"):
        write_image(src / "sub" / name, rgb_noise(64, 64, seed=len(name) + ord(name[0])))
    marks = tmp_path / "marks.csv"
    marks.write_text("file,face\nb.png,yes\nsub/c.png,partial\na.png,no\n")
    report = prepare(src, tmp_path / "d", PrepareConfig(size=32, faces=FaceConfig(policy="keep", marked=str(marks))))
    assert {r["photo"] for r in _manifest(tmp_path / "d")} == {"sub/a.png"}
    assert {s.path: s.reason for s in report.skipped} == {
        "sub/b.png": f"marked as showing a face in {marks}", "sub/c.png": f"marked as showing a face in {marks}"}
    assert json.loads((tmp_path / "d" / "prepare.json").read_text())["faces"]["photos_marked"] == 2
    with pytest.raises(SkingenError, match="file and face"):
        bad = tmp_path / "bad.csv"
        bad.write_text("name,x\na.png,1\n")
        prepare(src, tmp_path / "e", PrepareConfig(size=32, faces=FaceConfig(marked=str(bad))))


def _manifest(folder):
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.shared_data
def test_real_faces_are_found_and_kept_out_of_the_crops(tmp_path):
    root = shared_data() / "exanthem" / "viral_rash_measles"
    # marked in bench/data/measles_faces.csv: train_29 and train_Measles_33 show a face, test_51 does not
    src = tmp_path / "src"
    src.mkdir()
    for name in ("train_29.png", "train_Measles_33.jpg", "test_51.png"):
        shutil.copy(root / name, src / name)
    assert detect_faces(read_image(src / "train_29.png"))
    assert not detect_faces(read_image(src / "test_51.png"))
    report = prepare(src, tmp_path / "d", PrepareConfig(size=64, auto_mask=True))
    rows = _manifest(tmp_path / "d")
    for r in rows:  # no crop of a face photo touches a detected face
        x0, y0, x1, y1 = map(int, r["crop_box"].split(","))
        assert not box_touches_face((x0, y0, x1 - x0), detect_faces(read_image(src / r["photo"])))
    assert report.dropped_crops.get("face", 0) > 0
    assert any(r["photo"] == "test_51.png" for r in rows)
