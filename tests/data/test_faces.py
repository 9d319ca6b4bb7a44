"""Faces at prepare (issue 19): crops touching a face are dropped, with reasons and counts."""

import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

import skingen.data.prepare as prepare_module
import skingen.data.faces as faces_module
from skingen.data.faces import FaceConfig, box_touches_face, detect_faces, grown, raw_detections
from skingen.data.neardup import pixel_sha256
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


def test_bad_policy_or_detector_is_an_error():
    with pytest.raises(SkingenError, match="drop-crops"):
        FaceConfig(policy="blur")
    with pytest.raises(SkingenError, match="mtcnn, yunet, haar"):
        FaceConfig(detector="mtcnn+faceie")
    with pytest.raises(SkingenError, match="mtcnn, yunet, haar"):
        FaceConfig(detector="yunet+yunet")
    FaceConfig(detector="haar+yunet+mtcnn")


def test_grown_by_hand():
    assert grown((10, 20, 30, 60), 0.25, 100, 100) == (0, 10, 40, 70)  # side 40 -> 10 px on every side
    assert grown((10.5, 20.2, 30.5, 40.7), 0.0, 100, 100) == (10, 20, 31, 41)  # rounded outwards
    assert grown((90, 90, 99, 99), 0.5, 100, 95) == (85, 85, 100, 95)  # clipped to the photo


def _find_white(rgb, name, cfg):
    """A stand-in detector: the box around the pixels brighter than 200 of whatever image it is given."""
    ys, xs = np.nonzero(rgb.min(axis=2) > 200)
    return [(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1), 1.0, "mtcnn")] if len(xs) else []


def test_boxes_found_on_turned_photos_map_back(monkeypatch):
    image = np.zeros((60, 100, 3), np.uint8)
    image[10:20, 70:85] = 255  # the 'face': x 70..84, y 10..19
    monkeypatch.setattr(faces_module, "_find", _find_white)
    faces_module._MEMO.clear()
    cfg = FaceConfig(detector="mtcnn", angles=(0, 90, -90, 180, 45), margin=0.0, max_side=100)  # searched as is
    boxes = {d.angle: d.box for d in raw_detections(image, cfg)}
    assert boxes[0] == (70, 10, 85, 20)
    for angle in (90, -90, 180):  # quarter turns map back to the same pixels (bilinear edges: +-1 px)
        assert all(abs(a - b) <= 1 for a, b in zip(boxes[angle], boxes[0])), (angle, boxes[angle])
    x0, y0, x1, y1 = boxes[45]  # at 45 degrees: the upright box around the turned box holds the face
    assert x0 <= 70 and y0 <= 10 and x1 >= 85 and y1 >= 20 and (x1 - x0) * (y1 - y0) < 4 * 15 * 10
    faces_module._MEMO.clear()


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
    assert info["faces"] == {"policy": "drop-crops", "detector": "mtcnn+yunet", "reviewed": "builtin",
                             "photos_with_faces": 1, "crops_dropped": len(touching), "photos_dropped": 0,
                             "photos_marked": 0}
    with open(tmp_path / "drop" / "skipped.csv", newline="") as fh:
        reasons = [r["reason"] for r in csv.DictReader(fh)]
    assert sum("intersects a detected face" in r for r in reasons) == len(touching)
    assert sum(keep.crops.values()) == len(boxes_keep)
    # the only photo shows a face; the error says why (before: "see the reasons above", and none were printed)
    with pytest.raises(SkingenError, match=r"nothing usable.*1 file\(s\) skipped: 1 x .*face"):
        prepare(src, tmp_path / "photos", _cfg("drop-photos"), masks=masks)


def test_photos_marked_by_a_person_are_skipped(tmp_path):
    src = tmp_path / "src"
    for name in ("a.png", "b.png", "c.png"):
        write_image(src / "sub" / name, rgb_noise(64, 64, seed=len(name) + ord(name[0])))
    marks = tmp_path / "marks.csv"
    marks.write_text("file,face\nB.PNG,yes\nSub/c.png,partial\na.png,no\n")  # typed by hand: another case
    report = prepare(src, tmp_path / "d", PrepareConfig(size=32, faces=FaceConfig(policy="keep", marked=str(marks))))
    assert {r["photo"] for r in _manifest(tmp_path / "d")} == {"sub/a.png"}
    assert {s.path: s.reason for s in report.skipped} == {
        "sub/b.png": f"marked as showing a face in {marks}", "sub/c.png": f"marked as showing a face in {marks}"}
    assert json.loads((tmp_path / "d" / "prepare.json").read_text())["faces"]["photos_marked"] == 2
    with pytest.raises(SkingenError, match="file and face"):
        bad = tmp_path / "bad.csv"
        bad.write_text("name,x\na.png,1\n")
        prepare(src, tmp_path / "e", PrepareConfig(size=32, faces=FaceConfig(marked=str(bad))))


def test_faces_a_person_marked_drop_their_crops(planted_face, tmp_path, monkeypatch):
    """faces.reviewed: boxes drawn by a person, found by the photo's pixel hash (the detector finds nothing)."""
    src, masks = planted_face
    monkeypatch.setattr(prepare_module, "detect_faces", lambda image, cfg: [])
    reviewed = tmp_path / "reviewed.csv"
    sha = pixel_sha256(read_image(src / "kid.png"))
    reviewed.write_text(f"file,pixel_sha256,x0,y0,x1,y1\nkid.png,{sha},150,150,200,200\nother.png,{'0' * 64},0,0,60,60\n")
    cfg = _cfg("drop-crops")
    keep = prepare(src, tmp_path / "keep", replace(cfg, faces=FaceConfig(policy="keep", reviewed=str(reviewed))),
                   masks=masks)
    drop = prepare(src, tmp_path / "drop", replace(cfg, faces=FaceConfig(reviewed=str(reviewed))), masks=masks)
    off = prepare(src, tmp_path / "off", replace(cfg, faces=FaceConfig(reviewed="")), masks=masks)
    boxes_keep = [tuple(map(int, r["crop_box"].split(","))) for r in _manifest(tmp_path / "keep")]
    boxes_drop = [tuple(map(int, r["crop_box"].split(","))) for r in _manifest(tmp_path / "drop")]
    touching = [b for b in boxes_keep if b[2] > 150 and b[3] > 150]
    assert touching and set(boxes_drop) == set(boxes_keep) - set(touching)
    assert drop.dropped_crops["face"] == len(touching) and "face" not in off.dropped_crops
    with open(tmp_path / "drop" / "skipped.csv", newline="") as fh:
        reasons = [r["reason"] for r in csv.DictReader(fh)]
    assert sum("intersects a face marked by a person" in r for r in reasons) == len(touching)
    assert sum(keep.crops.values()) == sum(off.crops.values()) == len(boxes_keep)
    reviewed.write_text("file,x0\nkid.png,1\n")
    faces_module._reviewed.cache_clear()
    with pytest.raises(SkingenError, match="pixel_sha256"):
        prepare(src, tmp_path / "bad", replace(cfg, faces=FaceConfig(reviewed=str(reviewed))), masks=masks)


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
    for detector in ("mtcnn", "yunet"):  # each detector alone, upright only
        cfg = FaceConfig(detector=detector, angles=(0,), margin=0.0)
        (x0, y0, x1, y1), = detect_faces(read_image(src / "train_29.png"), cfg)  # one face, centre ~(285, 160)
        assert x0 < 285 < x1 and y0 < 160 < y1 and 80 < x1 - x0 < 250, (detector, x0, y0, x1, y1)
        assert not detect_faces(read_image(src / "test_51.png"), cfg)
    assert detect_faces(read_image(src / "train_29.png"))
    assert not detect_faces(read_image(src / "test_51.png"))
    report = prepare(src, tmp_path / "d", PrepareConfig(size=64, auto_mask=True))
    rows = _manifest(tmp_path / "d")
    for r in rows:  # no crop of a face photo touches a detected face
        x0, y0, x1, y1 = map(int, r["crop_box"].split(","))
        assert not box_touches_face((x0, y0, x1 - x0), detect_faces(read_image(src / r["photo"])))
    assert report.dropped_crops.get("face", 0) > 0
    assert any(r["photo"] == "test_51.png" for r in rows)


@pytest.mark.shared_data
def test_default_prepare_keeps_marked_faces_out_where_the_detectors_miss_them(tmp_path):
    """Issue 19's must-hold on photos whose face no detector finds (chins at the top edge, a baby lying on its
    side): the default prepare (centred crops) writes none of their face crops; without the reviewed boxes it
    would write them all."""
    root = shared_data() / "exanthem" / "viral_rash_measles"
    names = ["train_Measles_69.jpg", "train_measles12.jpg", "train_Measles_55.jpg", "test_54.png"]
    src = tmp_path / "src"
    src.mkdir()
    for name in names + ["test_51.png"]:  # test_51: no face
        shutil.copy(root / name, src / name)
    boxes = {}
    with open(faces_module.REVIEWED, newline="") as fh:
        for r in csv.DictReader(fh):
            boxes.setdefault(r["file"].rsplit("/", 1)[-1], []).append(tuple(int(r[k]) for k in ("x0", "y0", "x1", "y1")))
    assert set(names) <= set(boxes) and "test_51.png" not in boxes

    def crops_on_faces(out, cfg):
        prepare(src, out, cfg)
        rows = _manifest(out)
        on_faces = []
        for r in rows:
            x0, y0, x1, y1 = map(int, r["crop_box"].split(","))
            if box_touches_face((x0, y0, x1 - x0), boxes.get(r["photo"], [])):
                on_faces.append(r["photo"])
        return rows, on_faces

    rows, on_faces = crops_on_faces(tmp_path / "default", PrepareConfig(size=128))
    assert on_faces == [] and [r["photo"] for r in rows] == ["test_51.png"]
    _, on_faces = crops_on_faces(tmp_path / "detector-only", PrepareConfig(size=128, faces=FaceConfig(reviewed="")))
    assert sorted(on_faces) == sorted(names)
