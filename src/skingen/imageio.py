"""The only place that reads and writes image files.

Reading rules (every photo becomes 8-bit sRGB ``uint8 [H,W,3]``):
- EXIF orientation is applied; an embedded ICC profile is converted to sRGB when Pillow can.
- Grayscale (L, LA, 1, I, I;16, F) is replicated to three channels; 16-bit values are scaled by
  255/65535 (full 16-bit range, rounded); float images are taken as [0, 1].
- Palette images are expanded; CMYK is converted by Pillow (Adobe-inverted JPEGs included).
- Transparency (RGBA, LA, PA) is composited over **white**.

Mask rule (every mask becomes ``bool [H,W]``, True = lesion): channels are reduced by their maximum;
values are scaled to [0, 1] by the file's range (a mask whose largest value is 1 is taken as {0, 1}
labels, 8-bit as /255, 16-bit as /65535); a pixel is lesion when its value is >= 0.5. This reads
{0,1}, {0,255} and anti-aliased masks the same way.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from skingen.errors import SkingenError
from skingen.runs import atomic_path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Checked from the header, before decoding: a 243 KB PNG claiming 15000x15000 px took 2.9 GB. 64 MP holds
# every clinical camera photo in common use (a 45 MP DSLR, a 48-50 MP phone sensor) with room to spare.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = 200_000_000  # Pillow's own guard for callers that open images elsewhere


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _open(path: Path, max_pixels: int | None = None) -> Image.Image:
    if not path.is_file():
        raise SkingenError(f"{path}: file not found")
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        im = Image.open(path)  # reads the header only
        w, h = im.size
        if w * h > limit:
            im.close()
            raise SkingenError(f"{path}: {w}x{h} px ({w * h / 1e6:.1f} MP) is above the pixel limit of "
                               f"{limit:,} px; raise it with --max-pixels if the photo is genuine")
        im.load()  # decode now, so truncated files fail here and not later
    except UnidentifiedImageError:
        raise SkingenError(f"{path}: not a readable image") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise SkingenError(f"{path}: cannot decode image ({exc})") from None
    try:
        return ImageOps.exif_transpose(im)
    except Exception:  # broken EXIF must not lose an otherwise good photo
        return im


def _to_srgb(im: Image.Image) -> Image.Image:
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK"):
        return im
    try:
        from PIL import ImageCms

        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
        return ImageCms.profileToProfile(im, src, dst, outputMode=out_mode)
    except Exception:  # unusable profile: keep the pixels as they are
        return im


def _high_depth_to_uint8(im: Image.Image) -> np.ndarray:
    """I;16*, I and F modes -> uint8 [H,W] by the rule in the module docstring."""
    arr = np.asarray(im)
    if im.mode == "F":
        return np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    arr = arr.astype(np.float64)
    scale = 255.0 / 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 1.0
    return np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read a photo as sRGB ``uint8 [H,W,3]``; raises ``SkingenError`` naming the file on failure, and for
    images above ``max_pixels`` (default :data:`MAX_PIXELS`) before decoding them."""
    path = Path(path)
    im = _to_srgb(_open(path, max_pixels))
    if im.mode.startswith("I") or im.mode == "F":
        gray = _high_depth_to_uint8(im)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb)


def read_mask(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read a lesion mask as ``bool [H,W]`` (True = lesion) by the rule in the module docstring."""
    path = Path(path)
    im = _open(path, max_pixels)
    if im.mode == "P":
        im = im.convert("RGB")
    if im.mode.startswith("I") or im.mode == "F":
        arr = np.asarray(im).astype(np.float64)
        top = arr.max(initial=0)
        scale = 1.0 if top <= 1 else 65535.0 if (im.mode.startswith("I;16") or top > 255) else 255.0
        return arr / scale >= 0.5
    if im.mode == "1":
        return np.asarray(im, dtype=bool)
    arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im).astype(np.float64)
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    scale = 1.0 if arr.max(initial=0) <= 1 else 255.0
    return arr / scale >= 0.5


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) after EXIF orientation, without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except (OSError, UnidentifiedImageError) as exc:
        raise SkingenError(f"{path}: not a readable image ({exc})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def write_image(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Write ``uint8 [H,W,3]`` (or ``[H,W]``) atomically; format from the suffix (PNG lossless)."""
    path = Path(path)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise SkingenError(f"write_image expects uint8, got {arr.dtype} for {path}")
    im = Image.fromarray(arr)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP",
           ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower())
    if fmt is None:
        raise SkingenError(f"unsupported image format for writing: {path}")
    params = {"quality": quality} if fmt in ("JPEG", "WEBP") else {"compress_level": 3} if fmt == "PNG" else {}
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt, **params)


def write_mask(path: str | Path, lesion: np.ndarray) -> None:
    """Write a boolean mask as an 8-bit PNG with values {0, 255}."""
    write_image(path, (np.asarray(lesion, dtype=bool).astype(np.uint8) * 255))


RESIZE_FILTERS = {"nearest": Image.NEAREST, "box": Image.BOX, "bilinear": Image.BILINEAR,
                  "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def resize_image(image: np.ndarray, size: int | tuple[int, int], method: str) -> np.ndarray:
    """The one resize of an image: ``uint8 [H,W,C]`` (or ``float32 [H,W]``) -> ``size`` (``S`` for
    ``S x S``, or ``(H, W)``) with a PIL filter (``RESIZE_FILTERS``; PIL's filters antialias when
    shrinking). Each caller names its filter and says why: LANCZOS for prepared crops, BICUBIC for
    metrics' image sets, BOX (area average) for downscaled work copies."""
    height, width = (size, size) if isinstance(size, int) else size
    return np.asarray(Image.fromarray(image).resize((width, height), RESIZE_FILTERS[method]))


def to_tensor(image: np.ndarray):
    """``uint8 [H,W,3]`` -> float tensor ``[3,H,W]`` in [-1, 1]."""
    import torch

    return torch.tensor(image).permute(2, 0, 1).float().div(127.5).sub(1.0)


def from_tensor(images) -> np.ndarray:
    """Float tensor ``[3,H,W]`` or ``[N,3,H,W]`` in [-1, 1] -> ``uint8 [H,W,3]`` / ``[N,H,W,3]`` (rounded, clipped)."""
    import torch

    arr = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return arr.movedim(-3, -1).numpy()
