"""A stopped study, run again, trains only the classifiers it is missing and gives the numbers of an unbroken run."""

import numpy as np
import pytest

from skingen.downstream.study import StudyConfig, run_study
from skingen.downstream.train import TrainConfig

TINY = TrainConfig(size=16, images=128, batch=16, eval_every=64)


class Stop(Exception):
    pass


def stop_after(n: int):
    def progress(done, total, what):
        if done == n:
            raise Stop(what)
    return progress


def test_stopped_study_resumes_from_its_trained_classifiers(planted, tmp_path, monkeypatch):
    monkeypatch.setenv("SKINGEN_CACHE_DIR", str(tmp_path / "cache"))
    cfg = StudyConfig(fractions=(1.0,), seeds=2, ratios=(0,), n_boot=10, train=TINY)  # real, real+classical: 4 classifiers
    unbroken = run_study(planted, [], StudyConfig(**{**cfg.__dict__, "classifier_cache": False}))
    assert not (tmp_path / "cache" / "classifiers").exists()

    with pytest.raises(Stop):
        run_study(planted, [], cfg, progress=stop_after(3))  # stopped after 3 of the 4
    assert len(list((tmp_path / "cache" / "classifiers").glob("*/cell.json"))) == 3

    lines = []
    resumed = run_study(planted, [], cfg, log=lines.append)
    assert [("from the cache" in line) for line in lines] == [True, True, True, False]
    for key, p in unbroken.probs.items():
        assert np.array_equal(resumed.probs[key], p), key  # the same numbers as the run that was never stopped
    assert [r["val_balanced_accuracy"] for r in resumed.runs] == [r["val_balanced_accuracy"] for r in unbroken.runs]
    assert resumed.best is not None and resumed.best_run["arm"] == unbroken.best_run["arm"]


def test_changed_recipe_or_damaged_entry_trains_again(planted, tmp_path, monkeypatch):
    monkeypatch.setenv("SKINGEN_CACHE_DIR", str(tmp_path / "cache"))
    cfg = StudyConfig(fractions=(1.0,), seeds=1, ratios=(0,), classical=False, n_boot=10, train=TINY)
    run_study(planted, [], cfg)
    lines = []
    run_study(planted, [], StudyConfig(**{**cfg.__dict__, "train": TrainConfig(**{**TINY.__dict__, "lr": 1e-3})}),
              log=lines.append)
    assert "from the cache" not in lines[0]  # another learning rate: another classifier
    for weights in (tmp_path / "cache" / "classifiers").glob("*/model.safetensors"):
        weights.write_bytes(b"damaged")
    lines = []
    again = run_study(planted, [], cfg, log=lines.append)
    assert "from the cache" not in lines[0] and again.runs[0]["test_balanced_accuracy"] > 0
