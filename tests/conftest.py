import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # Tests use tiny tensors: one intra-op thread avoids OpenMP spin-waiting, which made the 16 px
    # overfit tests ~50x slower (2 s -> 100 s) on a busy 2-core machine.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory):
    """Features and trained classifiers that tests cache go to a folder of this test session, never to the
    user's cache (a test that wants its own, empty one sets SKINGEN_CACHE_DIR itself)."""
    before = os.environ.get("SKINGEN_CACHE_DIR")
    os.environ["SKINGEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("SKINGEN_CACHE_DIR", None)
    else:
        os.environ["SKINGEN_CACHE_DIR"] = before


def shared_data() -> Path:
    """../shared/data (or $SKINGEN_SHARED_DATA). Skips when absent, fails when CI says it must exist."""
    path = Path(os.environ.get("SKINGEN_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        if os.environ.get("SKINGEN_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"SKINGEN_REQUIRE_SHARED_DATA=1 but {path} does not exist")
        pytest.skip(f"shared real data not found at {path} (set SKINGEN_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> Path:
    """Twelve demo photos with masks, made once per test session."""
    from skingen.data.demo import write_demo_data

    return write_demo_data(tmp_path_factory.mktemp("demo") / "raw", n=12, seed=0)


def rgb_noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A textured skin-like uint8 [H,W,3] image that passes the quality filters."""
    rng = np.random.default_rng(seed)
    base = np.array([200, 150, 130], np.float32)
    img = base + rng.normal(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_data(demo_raw, tmp_path_factory) -> Path:
    """A prepared data folder of 32 px crops from the demo photos (given masks)."""
    from skingen.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("tiny") / "data"
    prepare(demo_raw / "images", out, PrepareConfig(size=32), masks=demo_raw / "masks", label="exanthem")
    return out


def fast(images: int = 32) -> tuple[str, ...]:
    """Overrides that train a tiny preset for ``images`` images, with one checkpoint at the end."""
    return (f"train.images={images}", "train.batch=8", f"train.tick={images}", f"train.snapshot={images}",
            "train.grid=4")


def tiny_runs(data: Path, out: Path, families: tuple[str, ...], images: int = 32) -> dict[str, Path]:
    """family -> run folder of its ``tiny/`` preset at 16 px, trained briefly on ``data`` (tests of what runs make)."""
    from skingen.train.loop import train

    return {f: train(f, data, tiny_config(f, *fast(images)), outdir=out, cpu=True) for f in families}


def tiny_config(family: str, *overrides: str):
    """The family's ``tiny/<family>`` preset at 16 px (every registered model must ship one)."""
    from skingen.train.loop import resolve_config

    return resolve_config(family, f"tiny/{family}", ["model.size=16", *overrides])
