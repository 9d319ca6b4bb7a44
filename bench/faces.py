"""Benchmark prepare's face filter on the 209 measles photos against a hand-made list of which show a face.

Usage: python bench/faces.py [--size 256]
Truth: bench/data/measles_faces.csv (file -> yes / partial / no, marked by eye on contact sheets of all 209
photos: yes = eyes visible (also under a censor bar), partial = mouth/nose/cheek without the eyes, no = none).
Prints, per detector (MTCNN, Haar) and threshold, photo-level precision (detected photos that show a face or part of one) and
recall (of the 'yes' photos, and of 'yes' + 'partial'); then, at the default setting, the crops each
``--faces`` policy keeps with centred crops (no masks) and with ``--auto-mask`` crops (boxes before the
quality filter). Writes bench/results/faces_{detector,policies,per_photo}.json.

Caveat: the detector's defaults were chosen on these same photos (no held-out set of labelled faces).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from skingen.data.crops import CropConfig, centred_box, lesion_boxes
from skingen.data.faces import FaceConfig, box_touches_face, is_face, raw_detections
from skingen.data.masks import AutoMaskConfig, auto_lesion_mask
from skingen.imageio import read_image

from table import RESULTS, print_and_save  # bench/table.py: scripts run with bench/ on sys.path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SKINGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
TRUTH = REPO / "bench" / "data" / "measles_faces.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256, help="crop size (sets the smallest box, as in prepare)")
    args = ap.parse_args()
    src = SHARED / "exanthem" / "viral_rash_measles"
    truth = {r["file"]: r["face"] for r in csv.DictReader(open(TRUTH, newline=""))}
    cfg = FaceConfig()
    min_side = int(np.ceil(args.size / CropConfig().max_upscale))
    detectors = {"mtcnn": (0.7, 0.8, 0.9, 0.95, 0.99), "haar": (3, 5, 8, 12, 20)}
    dets: dict[str, dict] = {d: {} for d in detectors}
    seconds: dict[str, list] = {d: [] for d in detectors}
    boxes = {}
    for i, f in enumerate(sorted(truth)):
        image = read_image(src / f)
        for det in detectors:
            t = time.perf_counter()
            dets[det][f] = raw_detections(image, replace(cfg, detector=det))
            seconds[det].append(time.perf_counter() - t)
        h, w = image.shape[:2]
        lesion, _ = auto_lesion_mask(image, AutoMaskConfig())
        auto = [b for b, _ in lesion_boxes(lesion, min_side, CropConfig())] or [centred_box(h, w)]
        boxes[f] = {"centred": [centred_box(h, w)], "auto-mask": auto}
        print(f"\r{i + 1}/{len(truth)} photos", end="", flush=True)
    print()
    pos = [f for f, v in truth.items() if v == "yes"]
    part = [f for f, v in truth.items() if v == "partial"]
    rows = []
    for det, thresholds in detectors.items():
        for k in thresholds:
            found = {f for f, ds in dets[det].items() if any(d.score >= k for d in ds)}
            tp = len(found & set(pos)) + len(found & set(part))
            rows.append({"detector": det, "threshold": k, "photos_detected": len(found),
                         "precision": round(tp / len(found), 3) if found else None,
                         "recall_yes": f"{len(found & set(pos))}/{len(pos)} = {len(found & set(pos)) / len(pos):.3f}",
                         "recall_yes_partial": f"{tp}/{len(pos) + len(part)} = {tp / (len(pos) + len(part)):.3f}",
                         "false_photos": len(found - set(pos) - set(part)),
                         "s_per_photo": round(float(np.mean(seconds[det])), 2),
                         "default": det == cfg.detector and k == (cfg.min_probability if det == "mtcnn" else cfg.min_neighbors)})
    print(f"N = {len(truth)} photos: {len(pos)} yes, {len(part)} partial, {len(truth) - len(pos) - len(part)} no; "
          f"busy shared 2-core CPU, long side <= {cfg.max_side} px; threshold = probability (mtcnn) or hits (haar)")
    print_and_save(rows, ["detector", "threshold", "photos_detected", "precision", "recall_yes",
                          "recall_yes_partial", "false_photos", "s_per_photo", "default"], "faces_detector")
    faces = {f: [d.box for d in ds if is_face(d, cfg)] for f, ds in dets[cfg.detector].items()}
    policy_rows = []
    for mode in ("centred", "auto-mask"):
        total = sum(len(b[mode]) for b in boxes.values())
        kept_crops = sum(not box_touches_face(b, faces[f]) for f in boxes for b in boxes[f][mode])
        kept_photos = sum(len(boxes[f][mode]) for f in boxes if not faces[f])
        on_marked = sum(box_touches_face(b, faces[f]) for f in pos + part for b in boxes[f][mode])
        marked = sum(len(boxes[f][mode]) for f in pos + part)
        for policy, kept in (("keep", total), ("drop-crops", kept_crops), ("drop-photos", kept_photos)):
            policy_rows.append({"crops": mode, "policy": policy, "crops_kept": kept, "crops_lost": total - kept,
                                "lost_share": round((total - kept) / total, 3),
                                "note": f"{on_marked}/{marked} crops of marked photos touch a detected face"
                                if policy == "drop-crops" else ""})
    print_and_save(policy_rows, ["crops", "policy", "crops_kept", "crops_lost", "lost_share", "note"], "faces_policies")
    per_photo = [{"file": f, "truth": truth[f], "faces": faces[f],
                  "raw": {det: [[*d.box, round(d.score, 3)] for d in dets[det][f]] for det in detectors}}
                 for f in sorted(truth)]
    (RESULTS / "faces_per_photo.json").write_text(json.dumps(per_photo, indent=1))


if __name__ == "__main__":
    main()
