import pytest
import torch

from skingen.data.datasets import ManifestDataset
from skingen.data.prepare import PrepareConfig, prepare
from skingen.errors import SkingenError


@pytest.fixture(scope="module")
def data(demo_raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "data"
    prepare(demo_raw / "images", out, PrepareConfig(size=32), masks=demo_raw / "masks")
    return out


def test_items(data):
    ds = ManifestDataset(data, split="train")
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["coloured"].shape == (3, 32, 32)
    assert item["lesion"].shape == (1, 32, 32) and set(item["lesion"].unique().tolist()) <= {0.0, 1.0}
    assert -1 <= item["image"].min() and item["image"].max() <= 1
    assert ds.labels == [""] and item["label"] == 0
    total = sum(len(ManifestDataset(data, split=s)) for s in ("train", "val", "test"))
    assert total == len(ManifestDataset(data, split=None))
    with pytest.raises(SkingenError, match="unknown split"):
        ManifestDataset(data, split="training")


def test_flips_are_deterministic_and_consistent(data):
    plain = ManifestDataset(data, split=None)
    a = ManifestDataset(data, split=None, flip=True, seed=3)
    b = ManifestDataset(data, split=None, flip=True, seed=3)
    flipped = 0
    for i in range(len(plain)):
        x, y, p = a[i], b[i], plain[i]
        assert torch.equal(x["image"], y["image"])
        if not torch.equal(x["image"], p["image"]):
            flipped += 1
            assert torch.equal(x["image"], p["image"].flip(-1)) and torch.equal(x["lesion"], p["lesion"].flip(-1))
            assert torch.equal(x["coloured"], p["coloured"].flip(-1))
    assert 0 < flipped < len(plain)


def test_resize_label_column_and_in_memory_cache(data):
    from skingen.data.datasets import InMemoryDataset

    small = ManifestDataset(data, split="train", size=16, label_column="split")
    item = small[0]
    assert item["image"].shape == (3, 16, 16) and item["lesion"].shape == (1, 16, 16)
    assert set(item["lesion"].unique().tolist()) <= {0.0, 1.0}  # nearest: still binary
    assert small.labels == ["test", "train", "val"] and item["label"] == 1
    cached = InMemoryDataset(small)
    assert len(cached) == len(small)
    for i in (0, len(small) - 1):
        a, b = cached[i], small[i]
        assert a["id"] == b["id"] and torch.equal(a["lesion"], b["lesion"])
        assert (a["image"] - b["image"]).abs().max() <= 1 / 127.5 + 1e-6  # 8-bit storage
    with pytest.raises(SkingenError, match="no column 'ita_category'"):
        ManifestDataset(data, label_column="ita_category")
