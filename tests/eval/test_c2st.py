"""The critic (classifier two-sample test): grouped folds, a planted difference seen, none seen where there is none."""

import numpy as np
import pytest

from skingen.errors import SkingenError
from skingen.eval.c2st import C2stConfig, c2st, outer_folds, photo_groups

FAST = C2stConfig(c=0.01, repeats=2, n_boot=200)


def _sets(n_photos: int, crops: int, dim: int = 16, shift: float = 0.0, seed: int = 0):
    """Real crops (``crops`` per photo, photo-specific offsets) and one synthetic child per real crop of
    another set of photos, shifted by ``shift`` in every feature."""
    rng = np.random.default_rng(seed)
    real = np.repeat(rng.normal(size=(n_photos, dim)) * 2, crops, 0) + rng.normal(size=(n_photos * crops, dim))
    photo = np.repeat(rng.normal(size=(n_photos, dim)) * 2, crops, 0)
    fake = photo + rng.normal(size=(n_photos * crops, dim)) + shift
    rid = [f"r{i}" for i in range(len(real))]
    rsrc = [f"p{i // crops}" for i in range(len(real))]
    # each synthetic image is a child of a crop of photo q{i // crops}; those crops are not in the real set
    fid = [f"f{i}" for i in range(len(fake))]
    fsrc = [f"q{i // crops}" for i in range(len(fake))]
    fpar = [f"c{i}" for i in range(len(fake))]
    return real, fake, (rid, rsrc, [""] * len(rid)), (fid, fsrc, fpar)


def test_photo_groups_unions_photos_and_parents():
    # a: photo P; b: photo P (same group); c: child of b with no source -> with P; d: photo Q; e: child of e0 (absent)
    g = photo_groups(["a", "b", "c", "d", "e"], ["P", "P", "", "Q", ""], ["", "", "b", "", "e0"])
    assert g[0] == g[1] == g[2]
    assert len({g[0], g[3], g[4]}) == 3
    # a synthetic image whose source_id is Q and whose parent is a (photo P) joins P and Q into one group
    g = photo_groups(["a", "d", "s"], ["P", "Q", "Q"], ["", "", "a"])
    assert g[0] == g[1] == g[2]


def test_folds_never_split_a_photo_or_a_parent():
    ids = [f"r{i}" for i in range(40)] + [f"s{i}" for i in range(40)]
    src = [f"P{i // 4}" for i in range(40)] + [""] * 40
    par = [""] * 40 + [f"r{(7 * i) % 40}" for i in range(40)]  # children of real crops, scattered over photos
    groups = photo_groups(ids, src, par)
    y = np.r_[np.zeros(40, int), np.ones(40, int)]
    for repeat in range(3):
        held = np.full(80, -1)
        for k, (tr, te) in enumerate(outer_folds(y, groups, 5, 0, repeat)):
            assert not set(groups[tr]) & set(groups[te])
            held[te] = k
        assert (held >= 0).all()
        for i in range(40, 80):  # each child is held out with its parent crop and that crop's photo
            parent = ids.index(par[i])
            assert held[i] == held[parent]
            assert set(held[[j for j in range(40) if src[j] == src[parent]]]) == {held[i]}


def test_c2st_sees_a_planted_shift_and_not_its_absence():
    same = c2st(*_sets(30, 3), cfg=FAST)
    shifted = c2st(*_sets(30, 3, shift=1.5), cfg=FAST)
    assert shifted.auroc > 0.9 and shifted.auroc_ci[0] > 0.8
    assert abs(same.auroc - 0.5) < 0.12 and same.auroc_ci[0] < 0.5 < same.auroc_ci[1]
    assert same.scores.shape == (180,) and same.n_groups == 60


def test_c2st_is_deterministic_and_needs_two_groups_per_side():
    a = c2st(*_sets(12, 2, shift=0.3), cfg=FAST, seed=3)
    b = c2st(*_sets(12, 2, shift=0.3), cfg=FAST, seed=3)
    assert np.array_equal(a.scores, b.scores) and a.auroc == b.auroc
    real, fake, rg, fg = _sets(12, 2)
    with pytest.raises(SkingenError, match="2 photo groups"):
        c2st(real, fake[:2], rg, ([fg[0][0], fg[0][1]], ["q0", "q0"], ["", ""]), FAST)


def test_evaluate_c2st_reports_floor_and_scores(tmp_path):
    from skingen.config import from_dict
    from skingen.data.imagesets import open_data, open_folder
    from skingen.eval.evaluate import EvaluateConfig, evaluate
    from skingen.eval.report import write_report
    from skingen.runs import read_csv
    from tests.eval.conftest import make_data_folder, make_image_folder, skin_images

    data = make_data_folder(tmp_path / "data", skin_images(60, 32, seed=0), ["train"] * 40 + ["test"] * 20)
    shifted = make_image_folder(tmp_path / "shifted", skin_images(20, 32, seed=7, shift=(25, -10, -10)))
    cfg = from_dict(EvaluateConfig, {"metrics": ["c2st"], "features": ["colour"],
                                     "c2st": {"features": "colour", "c": 0.1, "repeats": 2, "n_boot": 100}})
    result = evaluate(open_data(f"{data}:train"), [open_folder(shifted)], cfg, cache=None)
    c = result.record["sets"][0]["metrics"]["c2st"]
    assert c["auroc"] > 0.9 and c["n_fake"] == 20 and c["n_real"] == 40
    assert c["floor"]["n"] == 20 and c["floor"]["auroc"] < c["auroc"] - 0.2  # test crops vs train: same distribution
    write_report(result, tmp_path / "report")
    scores = read_csv(tmp_path / "report" / "c2st_scores.csv")[1]
    assert len(scores) == 60 and {r["origin"] for r in scores} == {"real", "synthetic"}
    assert "Critic (C2ST)" in (tmp_path / "report" / "report.md").read_text()
