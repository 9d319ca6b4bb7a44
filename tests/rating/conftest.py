"""Shared fixtures for the rating tests: small real + synthetic sources, a study builder and a way to fill a
study with planted answers (raters answering by a rule that sees the truth)."""

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from skingen.data.manifest import write_manifest
from skingen.imageio import write_image

# condition_ita values whose categories are light (> 41), tan (10..28) and dark (< -30), in turn
FAKE_A_ITA = (45.0, 20.0, -40.0)


def write_fakes(out: Path, n: int = 12, size: int = 24, seed: int = 1, manifest: dict | None = None) -> Path:
    """``n`` noise PNGs ``seedNNNNNN.png`` of ``size`` px; with ``manifest`` (extra columns, each a value or
    a callable ``i -> value``) also a ``manifest.csv`` as `skingen sample` writes it."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        name = f"seed{i:06d}.png"
        write_image(out / name, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        extra = {k: (v(i) if callable(v) else v) for k, v in (manifest or {}).items()}
        rows.append({"id": f"syn-{out.name}-{i:02d}", "image": name, "origin": "synthetic", "seed": i, **extra})
    if manifest is not None:
        write_manifest(out, rows)
    return out


@pytest.fixture(scope="session")
def rating_sources(tiny_data, tmp_path_factory) -> tuple[Path, list[Path]]:
    """(real data folder of 32 px crops, [fake_a, fake_b]): ``fake_a`` (12 images, 24 px) has a manifest with
    model ``dcgan`` and a ``condition_ita`` cycling through :data:`FAKE_A_ITA` (light, tan, dark); ``fake_b``
    (12 images) is a plain folder (its set name is the folder name, ``fake_b``)."""
    root = tmp_path_factory.mktemp("rating")
    fake_a = write_fakes(root / "fake_a", seed=1,
                         manifest={"model": "dcgan", "condition_ita": lambda i: FAKE_A_ITA[i % len(FAKE_A_ITA)]})
    fake_b = write_fakes(root / "fake_b", seed=2)
    return tiny_data, [fake_a, fake_b]


@pytest.fixture
def make_study(rating_sources, tmp_path) -> Callable[..., Path]:
    """``make_study(name="study", n=3, fakes=None, **RatingStudyConfig fields) -> study folder`` under ``tmp_path``;
    ``fakes`` = ``--synthetic`` specs (default: both fake folders, so sets ``dcgan`` and ``fake_b``)."""
    from skingen.rating.study import RatingStudyConfig, create_study, sources_from_args

    real, fakes = rating_sources

    def make(name: str = "study", n: int = 3, fakes_: list[str] | None = None, **cfg) -> Path:
        study = tmp_path / name
        specs = fakes_ if fakes_ is not None else [str(f) for f in fakes]
        create_study(study, sources_from_args(str(real), specs), RatingStudyConfig(n=n, **cfg))
        return study

    return make


# A rule gets (question, truths) and returns (answer, confidence) or None to stop answering.
Rule = Callable[[dict, dict], "tuple[str, int | None] | None"]


def answer_as(study: Path, rule: Rule, rt_ms: int = 1000):
    """Start one rater and answer its questions in order by ``rule(question, truths)`` until it returns
    None or the study ends. ``question`` is ``next_question``'s dict plus ``truth``/``source`` of its first
    image and, for pairs, ``real_side`` ('left'/'right'). Returns the rater."""
    from skingen.rating import session as S
    from skingen.rating.results import image_table

    truths = image_table(study)
    rater = S.start_rater(study)
    while True:
        q = S.next_question(study, rater)
        if q["finished"]:
            return rater
        first = truths[q["images"][0]]
        q = {**q, "truth": first["truth"], "source": first["source"]}
        if q["mode"] == "pair":
            q["real_side"] = "left" if first["truth"] == "real" else "right"
            q["source"] = truths[q["images"][1 if first["truth"] == "real" else 0]]["source"]
        reply = rule(q, truths)
        if reply is None:
            return rater
        S.record_answer(study, rater, q["position"], q["item"], reply[0], reply[1], rt_ms)


def correct_rule(q: dict, truths: dict):
    """Always right: single -> the truth (confidence 5); pair -> the real side; likert 5 for real, 1 for synthetic."""
    if q["mode"] == "single":
        return q["truth"], 5
    if q["mode"] == "pair":
        return q["real_side"], None
    return ("5" if q["truth"] == "real" else "1"), None
