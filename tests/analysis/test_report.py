import csv
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from skingen.analysis.difficulty import AutoencoderConfig
from skingen.analysis.measure import AnalyzeConfig, _crop_job, _run_jobs
from skingen.analysis.report import analyze, write_ita_columns
from skingen.data.skintone import measure_skin_tone
from skingen.cli import app
from skingen.data.manifest import manifest_sha256, read_manifest
from skingen.data.prepare import PrepareConfig, prepare
from skingen.errors import SkingenError
from skingen.imageio import read_image, read_mask

TINY = AnalyzeConfig(gmm_samples=3000, autoencoder=AutoencoderConfig(size=32, channels=(8, 16), latent_channels=4, epochs=2))


@pytest.fixture(scope="module")
def prepared(demo_raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis") / "data"
    prepare(demo_raw / "images", out, PrepareConfig(size=32), masks=demo_raw / "masks")
    return out


@pytest.fixture
def data(prepared, tmp_path):
    """A private copy: analyze writes ITA columns into the manifest."""
    return shutil.copytree(prepared, tmp_path / "data")


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_report_files_and_manifest_columns(data, tmp_path):
    before = read_manifest(data)
    res = analyze(data, tmp_path / "rep", TINY)
    stats = read_csv(tmp_path / "rep" / "stats.csv")
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    html = (tmp_path / "rep" / "report.html").read_text()
    assert [r["id"] for r in stats] == [r["id"] for r in before] and res.images == len(before)
    assert sum(summary["ita"]["counts"].values()) == len(before) and summary["photos"]["used"] == 12
    assert summary["autoencoder"]["error_after_training"] < summary["autoencoder"]["error_before_training"]
    assert sorted(int(r["ae_rank"]) for r in stats) == list(range(1, len(stats) + 1))
    assert "rgb2lab" in html and "approximate" in html and html.count("data:image/png") >= 8
    after = read_manifest(data)
    for b, a in zip(before, after):  # every earlier column kept as it was
        assert all(a[k] == v for k, v in b.items())
    assert [a["ita_category"] for a in after] == [s["ita_category"] for s in stats]
    assert all(abs(float(a["ita"]) - float(s["ita"])) < 0.01 for a, s in zip(after, stats))
    assert all(a["photo_ita_category"] not in ("", "unknown") for a in after)
    # Re-running replaces the columns (no duplicates) with the same values, into a new folder only.
    analyze(data, tmp_path / "rep2", TINY, autoencoder=False)
    header = (data / "manifest.csv").read_text().splitlines()[0].split(",")
    assert header.count("ita") == 1 and header.count("photo_ita_category") == 1
    assert read_manifest(data) == after
    assert "Skipped (--no-autoencoder)" in (tmp_path / "rep2" / "report.html").read_text()
    with pytest.raises(SkingenError, match="not empty"):
        analyze(data, tmp_path / "rep", TINY, autoencoder=False)


def test_ita_agrees_with_the_demo_truth(demo_raw):
    """Whole demo photos: the measured ITA equals that of the rendered healthy skin (exact skin mask) and the
    category matches the true base colour for 9 of the 12 photos (lighting and JPEG move the rest)."""
    truth = read_csv(demo_raw / "truth.csv")
    tones = [measure_skin_tone(read_image(demo_raw / t["image"]), read_mask(demo_raw / t["lesion"])) for t in truth]
    assert np.median([abs(m.ita - float(t["rendered_ita"])) for m, t in zip(tones, truth)]) < 0.5
    assert sum(m.category == t["true_ita_category"] for m, t in zip(tones, truth)) >= 9


def test_workers_give_the_same_stats(prepared):
    jobs = [(prepared, r["image"], r["lesion"], 0.05, True, 16) for r in read_manifest(prepared)]
    one = _run_jobs(_crop_job, jobs, 1, lambda d, t: None)
    two = _run_jobs(_crop_job, jobs, 2, lambda d, t: None)
    assert len(one) == len(two) == len(jobs) >= 8
    for (s1, h1, t1), (s2, h2, t2) in zip(one, two):
        assert s1.keys() == s2.keys() and all(s1[k] == s2[k] or (np.isnan(s1[k]) and np.isnan(s2[k])) for k in s1)
        assert np.array_equal(h1, h2) and np.array_equal(t1, t2) and t1.shape == (16, 16, 3)


def test_moved_data_folder_skips_the_photo_figure(data, tmp_path):
    info = json.loads((data / "prepare.json").read_text())
    info["input"] = str(tmp_path / "gone")
    (data / "prepare.json").write_text(json.dumps(info))
    analyze(data, tmp_path / "rep", TINY, autoencoder=False)
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["photos"]["used"] == 0 and "none of the 12 original photos were found" in summary["photos"]["note"]
    assert "Skipped: none of the 12 original photos" in (tmp_path / "rep" / "report.html").read_text()
    assert summary["ita"]["photo_counts"] is None and all(r["photo_ita"] == "" for r in read_manifest(data))


def test_manifest_changed_meanwhile_is_not_overwritten(data):
    rows = read_manifest(data)
    stale = manifest_sha256(data)
    (data / "manifest.csv").write_text((data / "manifest.csv").read_text() + "\n")
    text = (data / "manifest.csv").read_text()
    ok, note = write_ita_columns(data, rows, np.zeros(len(rows)), np.zeros(len(rows)), stale)
    assert not ok and "changed while" in note and (data / "manifest.csv").read_text() == text


def test_cli_analyze(data, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["analyze", str(data), "--out", str(tmp_path / "r"), "--no-autoencoder", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "ITA category" in res.output and (tmp_path / "r" / "report.html").is_file()
    again = runner.invoke(app, ["analyze", str(data), "--out", str(tmp_path / "r"), "--no-autoencoder"])
    assert again.exit_code == 1 and "not empty" in again.output and "Traceback" not in again.output
    dry = runner.invoke(app, ["analyze", str(data), "--out", str(tmp_path / "s"), "--set", "outliers.z=2.5", "--dry-run"])
    assert dry.exit_code == 0 and "z: 2.5" in dry.output and not (tmp_path / "s").exists()
    missing = runner.invoke(app, ["analyze", str(tmp_path / "nothing"), "--out", str(tmp_path / "t")])
    assert missing.exit_code == 1 and "no manifest.csv" in missing.output


def test_find_photos_relative_to_a_csv_root(tmp_path):
    from skingen.analysis.measure import find_photos

    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "sub" / "x.jpg").write_bytes(b"")
    (tmp_path / "lists").mkdir()
    (tmp_path / "data").mkdir()
    info = {"input": str(tmp_path / "lists" / "photos.csv"), "root": str(tmp_path / "root")}
    (tmp_path / "data" / "prepare.json").write_text(json.dumps(info))
    rows = [{"photo": "sub/x.jpg"}, {"photo": "sub/x.jpg"}, {"photo": "sub/missing.jpg"}]
    found, note = find_photos(tmp_path / "data", rows)
    assert found == {"sub/x.jpg": tmp_path / "root" / "sub" / "x.jpg"} and note == "1 of 2 original photos found"
    del info["root"]  # without --root the paths are relative to the CSV's folder
    (tmp_path / "data" / "prepare.json").write_text(json.dumps(info))
    assert find_photos(tmp_path / "data", rows)[0] == {}
