"""DATASHEET.md beside every synthetic set (issue 19)."""

import csv
import re

import pytest

from skingen.data.manifest import manifest_sha256
from skingen.data.datasheet import checkpoint_sha256
from skingen.generation.sample_folder import SampleConfig, sample_to_folder
from tests.conftest import tiny_runs


@pytest.fixture(scope="module")
def dcgan_run(tiny_data, tmp_path_factory):
    return tiny_runs(tiny_data, tmp_path_factory.mktemp("runs"), ("dcgan",))["dcgan"]


def test_sample_writes_a_datasheet_with_provenance_counts_and_skin_tones(dcgan_run, tiny_data, tmp_path):
    sample_to_folder(dcgan_run, tmp_path / "s", list(range(5)), SampleConfig(batch=5))
    sheet = (tmp_path / "s" / "DATASHEET.md").read_text()
    with open(tmp_path / "s" / "manifest.csv", newline="") as fh:
        ckpt = next(csv.DictReader(fh))["checkpoint"]
    with open(tiny_data / "manifest.csv", newline="") as fh:
        n_train = sum(r["split"] == "train" for r in csv.DictReader(fh))
    assert checkpoint_sha256(ckpt) in sheet and len(checkpoint_sha256(ckpt)) == 64
    assert f"split `train`, {n_train} crops, manifest sha256 `{manifest_sha256(tiny_data)}`" in sheet
    assert "- synthetic images: 5" in sheet and "per label: exanthem 5" in sheet
    assert "Not for diagnosis" in sheet and "Not measured by this command" in sheet
    # the ITA table: one column for the output, one for the training set; each sums to its count
    table = [line for line in sheet.splitlines() if line.startswith("| ") and "ITA category" not in line]
    synth_counts = [int(re.match(r"(\d+)", cells.split("|")[2].strip()).group(1)) for cells in table]
    train_counts = [int(re.match(r"(\d+)", cells.split("|")[3].strip()).group(1)) for cells in table]
    assert sum(synth_counts) == 5 and sum(train_counts) == n_train
    assert sheet.split("## Command")[1].split("##")[0].count("```") == 2  # the command line, as run (here: pytest)


def test_checkpoint_hash_changes_with_any_file(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"1")
    before = checkpoint_sha256(tmp_path)
    (tmp_path / "a.bin").write_bytes(b"2")
    assert checkpoint_sha256(tmp_path) != before
    assert checkpoint_sha256(tmp_path / "gone") == ""
