import numpy as np
import pytest

from skingen.errors import SkingenError
from skingen.eval.evaluate import evaluate
from skingen.eval.features import PixelExtractor
from skingen.eval.fid import KidConfig, frechet_distance, kernel_distance
from skingen.eval.floor import FloorConfig, floor_at, floor_set
from skingen.data.imagesets import open_data, open_folder
from skingen.eval.report import summary_table, swd_table
from tests.eval.conftest import make_data_folder, make_image_folder, skin_images
from tests.eval.test_evaluate import fast_config


def _gauss(n: int, seed: int, d: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def test_floor_of_the_whole_set_is_the_plain_distance_and_fid_floor_rises_at_small_n():
    real, floor = _gauss(200, 0), _gauss(60, 1)
    kid = KidConfig(subsets=20)
    whole = floor_at(real, floor, 100, FloorConfig(), kid, seed=0)  # N above the floor set's size: all of it, once
    assert whole["n"] == 60 and whole["draws"] == 1 and whole["fid_std"] == 0
    assert whole["fid"] == frechet_distance(real, floor) and whole["kid"] == kernel_distance(real, floor, kid, 0).mean
    # same distribution: FID's bias grows as N shrinks, which is why the floor is taken at the row's N
    small, mid = (floor_at(real, floor, n, FloorConfig(draws=5), kid, seed=0) for n in (8, 30))
    assert small["draws"] == 5 and small["fid_std"] > 0 and small["fid"] > mid["fid"] > whole["fid"]
    assert floor_at(real, floor, 8, FloorConfig(draws=5), kid, seed=0) == small  # seeded
    with pytest.raises(SkingenError, match="floor.draws"):
        FloorConfig(draws=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("floor")
    splits = ["train"] * 20 + ["val"] * 4 + ["test"] * 10
    return make_data_folder(root / "data", skin_images(34, 32, seed=0), splits)


def test_the_floor_set_is_another_split(data, tmp_path):
    assert floor_set(open_data(f"{data}:test"), FloorConfig())[0].split == "train"
    assert floor_set(open_data(f"{data}:train"), FloorConfig())[0].split == "test"
    assert floor_set(open_data(f"{data}:val"), FloorConfig())[0].split == "test"
    assert floor_set(open_data(f"{data}:test"), FloorConfig(set=f"{data}:val"))[0].split == "val"
    none, note = floor_set(open_data(f"{data}:test"), FloorConfig(set="none"))
    assert none is None and "floor.set=none" in note
    plain = make_image_folder(tmp_path / "plain", skin_images(4, 32, seed=3))
    none, note = floor_set(open_folder(plain), FloorConfig())
    assert none is None and "--floor DATA:split" in note
    with pytest.raises(SkingenError, match="is the reference set itself"):
        floor_set(open_data(f"{data}:test"), FloorConfig(set=f"{data}:test"))


def test_every_fid_and_kid_carries_the_floor_at_its_n(data, tmp_path):
    fake = make_image_folder(tmp_path / "fake", skin_images(6, 32, seed=7, shift=(30, 0, 0)))
    cfg = fast_config(metrics=("fid", "kid", "swd"), features=("pixels:8",), floor={"draws": 2})
    rec = evaluate(open_data(f"{data}:test"), [open_folder(fake)], cfg).record
    fid, kid = rec["sets"][0]["metrics"]["fid/pixels8"], rec["sets"][0]["metrics"]["kid/pixels8"]
    assert rec["floor"]["split"] == "train" and rec["floor"]["n"] == 20
    assert fid["floor"]["n"] == kid["floor"]["n"] == 6 and fid["floor"]["draws"] == 2
    # recomputed by hand from the features: the same draws of 6 train images against the 10 test images
    ex = PixelExtractor(8)
    test = np.concatenate([ex(b) for _, b in open_data(f"{data}:test").batches(32, 50)])
    train = np.concatenate([ex(b) for _, b in open_data(f"{data}:train").batches(32, 50)])
    expected = floor_at(test, train, 6, FloorConfig(draws=2), cfg.kid, cfg.seed)
    assert fid["floor"]["value"] == pytest.approx(expected["fid"]) and kid["floor"]["value"] == pytest.approx(expected["kid"])
    assert fid["value"] > fid["floor"]["value"]  # the colour-shifted set is worse than real images at N=6
    header, rows = summary_table(rec)
    row = dict(zip(header, rows[0]))
    assert row["FID floor"].startswith(f"{expected['fid']:.4g} ± ")
    sw, floor_swd = rec["sets"][0]["metrics"]["swd"], rec["floor"]["swd"]
    assert sw["vs_floor"][16] == pytest.approx(sw["levels"][16] / floor_swd["levels"][16])
    assert sw["worst_vs_floor_level"] == 16  # a colour cast lives in the low-pass residual
    assert row["SWD worst level"] == f"{sw['worst_vs_floor']:.2g}× floor (16 px)"
    swd_header, swd_rows = swd_table(rec)
    assert swd_rows[-1][0].startswith("floor: ") and swd_rows[-1][1] == "20"
