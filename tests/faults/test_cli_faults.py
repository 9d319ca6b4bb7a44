"""Everyday bad input to the CLI: one line and exit 1, never a traceback, never a half-made run."""

import json

import pytest
from typer.testing import CliRunner

from skingen.cli import app
from skingen.errors import SkingenError
from skingen.seeding import parse_seeds
from tests.faults.conftest import assert_one_line_error

runner = CliRunner()


@pytest.mark.parametrize("text", ["2e-4", "2E-4", "1e3", "+.5", "+3.0e-2", "1_000.5"])
def test_floats_in_every_spelling_python_or_yaml_accepts(tmp_path, text):
    # before: "config key 'model.lr_g' expects float, got '2e-4'"
    from skingen.train.loop import resolve_config

    expected = float(text)
    assert resolve_config("dcgan", None, [f"model.lr_g={text}"]).model.lr_g == expected
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"model:\n  lr_g: {text}\n")
    assert resolve_config("dcgan", cfg_file).model.lr_g == expected
    with pytest.raises(SkingenError, match="'model.lr_g' must be > 0"):  # parsed, then refused by its range
        resolve_config("dcgan", None, [f"model.lr_g=-{text.lstrip('+')}"])


def test_set_float_on_the_command_line(tmp_path):
    res = runner.invoke(app, ["train", "dcgan", "--data", str(tmp_path), "--set", "model.lr_g=2e-4", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "lr_g: 0.0002" in res.output


def test_a_word_for_a_float_is_still_an_error():
    from skingen.train.loop import resolve_config

    with pytest.raises(SkingenError, match="expects float"):
        resolve_config("dcgan", None, ["model.lr_g=fast"])


def test_an_invalid_model_config_leaves_no_run_folder(tiny_data, tmp_path):
    # before: the error came after runs/00000-dcgan-data/ was created, which stayed behind empty
    res = runner.invoke(app, ["train", "dcgan", "--data", str(tiny_data), "--outdir", str(tmp_path / "runs"),
                              "--config", "tiny/dcgan", "--set", "model.size=33", "--cpu"])
    assert_one_line_error(res, "33")
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_a_huge_seed_range_is_capped_with_a_clear_message():
    # before: MemoryError
    with pytest.raises(SkingenError, match="at most 1,000,000 seeds"):
        parse_seeds("0-99999999999")
    assert len(parse_seeds("0-999999")) == 1_000_000


def test_a_huge_seed_range_on_the_command_line(trained_run, tmp_path):
    res = runner.invoke(app, ["sample", str(trained_run), "--out", str(tmp_path / "s"), "--seeds", "0-99999999999"])
    assert_one_line_error(res, "seeds")
    assert not (tmp_path / "s").exists()


def test_an_impossible_port_is_a_one_line_error(make_study, monkeypatch):
    # before: OverflowError from the socket layer
    import uvicorn

    study = make_study()
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start a server"))
    res = runner.invoke(app, ["rate", "serve", "--study", str(study), "--port", "99999"])
    assert_one_line_error(res, "--port")


@pytest.mark.parametrize("command", ["serve", "report"])
def test_a_corrupt_study_database_is_a_one_line_error(make_study, tmp_path, monkeypatch, command):
    import uvicorn

    study = make_study()
    db = study / "study.sqlite"
    for extra in study.glob("study.sqlite-*"):
        extra.unlink()
    db.write_bytes(b"this is not a database" * 100)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start a server"))
    args = ["rate", "serve", "--study", str(study)] if command == "serve" else \
        ["rate", "report", str(study), "--out", str(tmp_path / "r")]
    assert_one_line_error(runner.invoke(app, args), "study.sqlite")


def test_seeds_option_still_parses_lists():
    assert parse_seeds("3,0-2,3") == [3, 0, 1, 2]
    assert json.dumps(parse_seeds("5")) == "[5]"


def test_disk_full_while_sampling_is_one_line_and_keeps_nothing(trained_run, tmp_path, monkeypatch):
    # before: a traceback ending in OSError: [Errno 28]
    import errno
    import os

    import skingen.generation.sample_folder as S

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(S, "write_image", full)
    res = runner.invoke(app, ["sample", str(trained_run), "--out", str(tmp_path / "s"), "--n", "2"])
    assert_one_line_error(res, "No space left on device", "seed000000.png")
    assert list(tmp_path.iterdir()) == []


def test_error_lines_print_brackets_literally(tmp_path):
    # before: rich read a path's brackets as markup: "[red]" vanished, "[/x]" raised MarkupError (a traceback)
    for name in ("[red]missing", "x[/oops]missing"):
        res = runner.invoke(app, ["prepare", str(tmp_path / name), "--out", str(tmp_path / "d")])
        assert_one_line_error(res, name)


@pytest.mark.parametrize("text", [b"{{{: [", b"just a line", b"\xff\xfe\x00\xd8"])
def test_a_damaged_run_config_is_a_one_line_error_on_resume(run_copy, text):
    # before: a YAMLError / AttributeError traceback
    (run_copy / "config.yaml").write_bytes(text)
    res = runner.invoke(app, ["train", "dcgan", "--resume", str(run_copy), "--set", "train.images=48", "--cpu"])
    assert_one_line_error(res, "config.yaml")


def test_a_config_file_that_is_not_text_is_a_one_line_error(tmp_path):
    # before: UnicodeDecodeError
    (tmp_path / "c.yaml").write_bytes(b"size: 64\nlabel: \xe9\xff\n")
    res = runner.invoke(app, ["prepare", str(tmp_path), "--out", str(tmp_path / "d"), "--config",
                              str(tmp_path / "c.yaml"), "--dry-run"])
    assert_one_line_error(res, "c.yaml")


SUMMARY_DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "a list": lambda text: "[]",
    "text seconds": lambda text: text.replace('"seconds_model": ', '"seconds_model": "x", "was": '),
    "binary": lambda text: "\udcff\udcfe",
}


@pytest.mark.parametrize("damage", SUMMARY_DAMAGE, ids=list(SUMMARY_DAMAGE))
def test_merge_of_a_shard_with_a_damaged_summary_is_one_line_naming_it(trained_run, tmp_path, damage):
    # issue 29: `merge` with a damaged sample.json was a traceback
    shards = []
    for k in range(2):
        shards.append(tmp_path / f"s{k}")
        res = runner.invoke(app, ["sample", str(trained_run), "--out", str(shards[-1]), "--n", "4", "--batch", "2",
                                  "--cpu", "--shard", f"{k}/2"])
        assert res.exit_code == 0, res.output
    summary = shards[1] / "sample.json"
    summary.write_bytes(SUMMARY_DAMAGE[damage](summary.read_text()).encode("utf-8", "surrogateescape"))
    res = runner.invoke(app, ["merge", str(tmp_path / "m"), *map(str, shards)])
    assert_one_line_error(res, "s1", "sample.json")
    assert not (tmp_path / "m").exists()


def test_a_damaged_manifest_cell_is_one_line_on_merge(trained_run, tmp_path):
    shard = tmp_path / "s0"
    res = runner.invoke(app, ["sample", str(trained_run), "--out", str(shard), "--n", "2", "--cpu", "--shard", "0/1"])
    assert res.exit_code == 0, res.output
    manifest = shard / "manifest.csv"
    manifest.write_text(manifest.read_text().replace(",0,", ",zero,", 1))
    assert_one_line_error(runner.invoke(app, ["merge", str(tmp_path / "m"), str(shard)]), "manifest.csv", "zero")


@pytest.mark.parametrize("shard", ["١/٢", "²/3", "0/1e9", "0/999999999"])
def test_shards_take_ascii_digits_within_bounds(trained_run, tmp_path, shard):
    # before: '²/3' was a ValueError traceback ('²'.isdigit() but not int()); '١/٢' was read as 1/2
    res = runner.invoke(app, ["sample", str(trained_run), "--out", str(tmp_path / "s"), "--n", "2", "--cpu",
                              "--shard", shard])
    assert_one_line_error(res, "--shard")


def test_option_values_are_text_as_typed_not_yaml(tmp_path, demo_raw, tiny_data):
    # before: `--faces off` reached the config as YAML's False ("expects str, got False")
    res = runner.invoke(app, ["prepare", str(demo_raw / "images"), "--out", str(tmp_path / "p"), "--faces", "off",
                              "--dry-run"])
    assert_one_line_error(res, "faces policy must be one of", "'off'")
    res = runner.invoke(app, ["evaluate", "--real", str(tiny_data), "--synthetic", str(tiny_data), "--out",
                              str(tmp_path / "e"), "--features", "pixels:100000"])
    assert_one_line_error(res, "pixels:100000", "1..256")


def test_options_of_the_other_kind_of_input_or_job_are_refused(demo_raw, trained_run, tmp_path):
    # issue 29: the option fuzz found these accepted and silently ignored
    res = runner.invoke(app, ["prepare", str(demo_raw / "images"), "--out", str(tmp_path / "p"),
                              "--label-column", "diagnosis"])
    assert_one_line_error(res, "--label-column", "apply to a CSV input")
    res = runner.invoke(app, ["plan", str(trained_run), "--n", "4", "--shape", "box", "--cpu"])
    assert_one_line_error(res, "--shape", "apply to inpaint plans", "sample plan")
