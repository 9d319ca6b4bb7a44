"""Evaluation on real measles crops (skipped with a reason when ../shared/data is absent; required in CI)."""

import csv

import numpy as np
import pytest

from skingen.config import from_dict
from skingen.data.manifest import read_manifest
from skingen.data.faces import FaceConfig
from skingen.data.prepare import PrepareConfig, prepare
from skingen.data.sources import CsvColumns
from skingen.eval.evaluate import EvaluateConfig, evaluate
from skingen.data.imagesets import open_data, open_folder
from skingen.imageio import read_image, write_image
from tests.conftest import shared_data


@pytest.mark.shared_data
def test_metrics_rank_a_colour_cast_and_flag_copies_on_measles(tmp_path):
    root = shared_data() / "exanthem" / "viral_rash_measles"
    with open(root / "metadata.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if not r["content_flag"]][::4]  # 51 photos, spread over the set
    subset = tmp_path / "subset.csv"
    with open(subset, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    data = tmp_path / "data"
    # faces kept: this measures the metrics on real crops, not prepare's face filter (tests/data/test_faces.py)
    prepare(subset, data, PrepareConfig(size=64, auto_mask=True, faces=FaceConfig(policy="keep")),
            columns=CsvColumns(image="file", group="near_dup_group"), root=root, workers=2)
    manifest = read_manifest(data)
    test = [r for r in manifest if r["split"] == "test"]
    train = [r for r in manifest if r["split"] == "train"]
    cast = np.array([30, 0, -20])  # a warm colour cast of the whole set
    sets = {"floor": [], "cast": [], "copies": []}
    for r in test:
        img = read_image(data / r["image"])
        sets["floor"].append(img)
        sets["cast"].append(np.clip(img.astype(int) + cast, 0, 255).astype(np.uint8))
    picked = np.random.default_rng(0).choice(len(train), 12, replace=False)
    sets["copies"] = [read_image(data / train[i]["image"]) for i in picked]
    for name, images in sets.items():
        for i, img in enumerate(images):
            write_image(tmp_path / name / f"{i:03d}.jpg", img, quality=90)
    cfg = from_dict(EvaluateConfig, {"metrics": ["fid", "swd", "memorisation"], "features": ["colour"]})
    ev = evaluate(open_data(f"{data}:train"), [open_folder(tmp_path / n) for n in sets], cfg)
    m = {s["name"]: s["metrics"] for s in ev.record["sets"]}
    assert m["cast"]["fid/colour"]["value"] > 3 * m["floor"]["fid/colour"]["value"]
    # the cast lives in the low-pass residual (16 px level); finer levels are band-pass and barely change
    assert m["cast"]["swd"]["levels"][16] > 1.3 * m["floor"]["swd"]["levels"][16]
    assert m["cast"]["swd"]["mean"] > 1.2 * m["floor"]["swd"]["mean"]
    assert m["copies"]["memorisation"]["fraction"] == 1.0
    assert m["floor"]["memorisation"]["fraction"] < 0.1  # test photos are never in train (grouped splits)
