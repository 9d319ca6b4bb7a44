import numpy as np
import pytest
import torch
from PIL import Image

from skingen.errors import SkingenError
from skingen.imageio import from_tensor, read_image, read_mask, to_tensor, write_image


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = 255  # left half white
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (40, 20, 3)
    assert out[:20].mean() > 200 and out[20:].mean() < 50  # white half is now on top


def test_modes_become_rgb8(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(gray).save(tmp_path / "g.png")
    assert np.array_equal(read_image(tmp_path / "g.png"), np.repeat(gray[..., None], 3, 2))
    sixteen = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    Image.fromarray(sixteen).save(tmp_path / "s16.png")
    assert Image.open(tmp_path / "s16.png").mode.startswith("I")
    assert np.array_equal(read_image(tmp_path / "s16.png")[..., 0], gray)  # 65535 -> 255 exactly
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, ..., 3] = 255  # top opaque red, bottom transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [255, 0, 0] and out[3, 0].tolist() == [255, 255, 255]
    Image.fromarray(np.full((4, 4, 3), 100, np.uint8)).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (4, 4, 3)
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    red = read_image(tmp_path / "c.jpg")[0, 0]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"not an image")
    with pytest.raises(SkingenError, match="x.jpg"):
        read_image(tmp_path / "x.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(SkingenError, match="t.jpg.*(truncated|decode)"):
        read_image(tmp_path / "t.jpg")
    with pytest.raises(SkingenError, match="not found"):
        read_image(tmp_path / "missing.png")


@pytest.mark.parametrize("values", [(0, 1), (0, 255)])
def test_mask_binarisation(tmp_path, values):
    arr = np.array([[values[0], values[1]], [values[1], values[0]]], np.uint8)
    Image.fromarray(arr).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").tolist() == [[False, True], [True, False]]


def test_anti_aliased_mask_threshold_at_half(tmp_path):
    Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8)).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").tolist() == [[False, False, True, True]]


def test_tensor_roundtrip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = to_tensor(img)
    assert t.shape == (3, 5, 7) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(from_tensor(t), img)
    write_image(tmp_path / "o.png", img)
    assert np.array_equal(read_image(tmp_path / "o.png"), img)
    assert from_tensor(torch.stack([t, t])).shape == (2, 5, 7, 3)


def test_imageio_is_the_one_reader_and_resize():
    # issue 30: data/demo.py opened images itself; data/faces.py and data/neardup.py resized with PIL
    import re
    from pathlib import Path

    import skingen

    src = Path(skingen.__file__).parent
    allowed = {"imageio.py": ("open", "resize"), "viz.py": ("resize",), "eval/features.py": ("resize",)}
    found = []
    for file in sorted(src.rglob("*.py")):
        rel = file.relative_to(src).as_posix()
        text = file.read_text()
        for what, pattern in (("open", r"Image\.open\("), ("resize", r"\.(resize|thumbnail)\(\s*\(")):
            if re.search(pattern, text) and what not in allowed.get(rel, ()):
                found.append(f"{rel}: {what}")
    assert not found, found
