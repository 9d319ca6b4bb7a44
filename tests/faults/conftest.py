"""Shared helpers for the fault suite: a tiny trained run to damage, and the one-line-error check.

Every test here stands for one case of issue 21 (bad input or a fault on the output side) and was run
once against the code before the fix, where it failed (see the commit that added it)."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import tiny_config
from tests.rating.conftest import make_study, rating_sources  # noqa: F401  (fixtures for the rating cases)

# two snapshots (step 2 and step 4), so a damaged latest one has an intact predecessor
FAST = ("train.images=32", "train.batch=8", "train.tick=32", "train.snapshot=16", "train.grid=4")


def assert_one_line_error(res, *fragments: str) -> str:
    """A CLI result that ended in skingen's one-line error (exit 1, no traceback); returns that line."""
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def trained_run(tiny_data, tmp_path_factory) -> Path:
    from skingen.train.loop import train

    return train("dcgan", tiny_data, tiny_config("dcgan", *FAST), outdir=tmp_path_factory.mktemp("fault_runs"), cpu=True)


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of the trained run, free to damage."""
    return Path(shutil.copytree(trained_run, tmp_path / trained_run.name))
