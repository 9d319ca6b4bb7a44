"""Procedural demo photos of maculopapular rash, with exact lesion masks and true skin colour.

Each photo is rendered in CIELAB so the healthy-skin colour is known exactly: a base skin colour
drawn over the whole ITA range (very light to dark), low-frequency tone variation and fine texture,
many small erythematous macules and papules with some confluent patches (their colour shift is
weaker and darker on dark skin, as erythema is in reality), then lighting (gradient, vignetting,
body-curvature shading), a non-skin background strip at an edge, blur, sensor noise and JPEG.

The exact masks are ``lesion`` (rash) and ``skin`` (skin, rash included). ``truth.csv`` records the
base skin colour (``true_L, true_a, true_b``), its ITA angle and category, and the same measured as the
median of the rendered healthy-skin pixels (``rendered_*``), which is what an estimator can see.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from skingen.data.skintone import ita_category, ita_degrees
from skingen.errors import SkingenError
from skingen.imageio import read_image, write_image, write_mask
from skingen.runs import check_new_folder, write_csv
from skingen.seeding import numpy_rng

TRUTH_COLUMNS = ("id", "image", "lesion", "skin", "label", "true_L", "true_a", "true_b", "true_ita",
                 "true_ita_category", "rendered_L", "rendered_a", "rendered_b", "rendered_ita", "lesion_fraction")


@dataclass(frozen=True)
class DemoPhoto:
    image: np.ndarray  # uint8 [H,W,3], before JPEG encoding
    lesion: np.ndarray  # bool [H,W]
    skin: np.ndarray  # bool [H,W]
    skin_lab: tuple[float, float, float]  # base healthy-skin colour
    region: np.ndarray | None = None  # bool [H,W]: where the rash would be (healthy photos only)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit std: [H,W] float32."""
    from scipy.ndimage import gaussian_filter

    n = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return n / (n.std() + 1e-8)


def _sample_skin_lab(rng: np.random.Generator) -> tuple[float, float, float]:
    """A base skin colour whose ITA is uniform over [-55, 65] degrees (dark to very light)."""
    ita = rng.uniform(-55.0, 65.0)
    b = rng.uniform(12.0, 20.0)
    L = 50.0 + b * np.tan(np.radians(ita))
    if L > 80.0:
        L, b = 80.0, 30.0 / np.tan(np.radians(ita))
    elif L < 25.0:
        L, b = 25.0, -25.0 / np.tan(np.radians(ita))
    a = rng.uniform(7.0, 13.0) + (4.0 if L < 45 else 0.0)
    return float(L), float(a), float(b)


def _rash_layout(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Lesion intensity ``float [H,W]`` in [0,1] (soft) and papule highlight map; macules + confluent patches."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    density = _smooth_noise(rng, (h, w), sigma=min(h, w) / 6)  # where the rash is dense
    intensity = np.zeros((h, w), np.float32)
    papules = np.zeros((h, w), np.float32)
    scale = min(h, w) / 320.0
    n = int(rng.uniform(60, 260) * (h * w) / (320 * 320))
    cy = rng.uniform(0, h, 4 * n)
    cx = rng.uniform(0, w, 4 * n)
    keep = density[cy.astype(int), cx.astype(int)] > rng.uniform(-0.8, 0.4)  # cluster macules
    for y, x in list(zip(cy[keep], cx[keep]))[:n]:
        r = rng.uniform(1.5, 6.0) * scale
        ry, rx = r * rng.uniform(0.7, 1.3), r * rng.uniform(0.7, 1.3)
        y0, y1 = int(max(0, y - 3 * ry)), int(min(h, y + 3 * ry + 1))
        x0, x1 = int(max(0, x - 3 * rx)), int(min(w, x + 3 * rx + 1))
        d2 = ((yy[y0:y1, x0:x1] - y) / ry) ** 2 + ((xx[y0:y1, x0:x1] - x) / rx) ** 2
        blob = np.clip((1.25 - d2) / 0.6, 0, 1)  # flat-topped macule with a soft rim
        strength = rng.uniform(0.55, 1.0)
        intensity[y0:y1, x0:x1] = np.maximum(intensity[y0:y1, x0:x1], blob * strength)
        if rng.random() < 0.25:  # raised papule: a small specular highlight
            papules[y0:y1, x0:x1] = np.maximum(papules[y0:y1, x0:x1], np.exp(-d2 * 6))
    if rng.random() < 0.6:  # confluent patches where density is high, with ragged edges
        rough = density + 0.35 * _smooth_noise(rng, (h, w), 2.5 * scale)
        patch = gaussian_filter((rough > rng.uniform(1.3, 1.9)).astype(np.float32), 1.5 * scale)
        mottle = 0.75 + 0.25 * _smooth_noise(rng, (h, w), 3 * scale).clip(-1, 1)
        intensity = np.maximum(intensity, np.clip(patch * 1.6 - 0.3, 0, 1) * rng.uniform(0.6, 0.85) * mottle)
    # Diffuse sub-threshold redness between macules (below 0.5, so not in the lesion mask).
    intensity = np.maximum(intensity, np.clip(0.12 + 0.12 * density, 0, 0.35))
    return intensity, papules


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Non-skin mask ``bool [H,W]``: a strip with a wavy boundary at one edge (none in ~30% of photos)."""
    if rng.random() < 0.3:
        return np.zeros((h, w), bool)
    side = rng.integers(4)
    n = h if side in (0, 1) else w
    depth = rng.uniform(0.06, 0.22) * (w if side in (0, 1) else h)
    wave = depth * (1 + 0.3 * np.sin(np.linspace(0, rng.uniform(2, 7), n) + rng.uniform(0, 6)))
    if side in (0, 1):  # left / right
        xs = np.arange(w)[None, :]
        edge = wave[:, None]
        return xs < edge if side == 0 else xs >= w - edge
    ys = np.arange(h)[:, None]
    edge = wave[None, :]
    return ys < edge if side == 2 else ys >= h - edge


def render_demo_photo(seed: int, size: tuple[int, int] | None = None, rash: bool = True) -> DemoPhoto:
    """Render one photo. ``seed`` fixes everything; ``size`` (H, W) defaults to a random 256..480 px.
    ``rash=False`` renders the same skin without rash (a "healthy" photo; the random draws are unchanged)."""
    from scipy.ndimage import gaussian_filter
    from skimage.color import lab2rgb

    rng = numpy_rng(seed, "demo-photo")
    h, w = size if size is not None else (int(rng.integers(256, 481)), int(rng.integers(256, 481)))
    L0, a0, b0 = _sample_skin_lab(rng)
    # Healthy skin: tone variation (blotchy, low frequency) + fine texture (pores, hair follicles).
    lab = np.empty((h, w, 3), np.float32)
    lab[..., 0] = L0 + 2.5 * _smooth_noise(rng, (h, w), min(h, w) / 8) + 1.5 * _smooth_noise(rng, (h, w), 0.8)
    lab[..., 1] = a0 + 1.0 * _smooth_noise(rng, (h, w), min(h, w) / 10)
    lab[..., 2] = b0 + 0.8 * _smooth_noise(rng, (h, w), min(h, w) / 10)
    # Rash: erythema raises a*, lowers L*; on dark skin it is subtler and darker (violaceous).
    intensity, papules = _rash_layout(rng, h, w)
    region = None
    if not rash:
        region = intensity >= 0.5
        intensity, papules = np.zeros_like(intensity), np.zeros_like(papules)
    darkness = np.clip((60.0 - L0) / 35.0, 0, 1)
    d_a = rng.uniform(10, 22) * (1 - 0.5 * darkness)
    d_L = -rng.uniform(3, 8) - 5 * darkness
    d_b = rng.uniform(-3, 2)
    lab[..., 0] += intensity * d_L
    lab[..., 1] += intensity * d_a
    lab[..., 2] += intensity * d_b
    lesion = intensity >= 0.5
    rgb = lab2rgb(lab).astype(np.float32)
    rgb += papules[..., None] * 0.035  # papule sheen
    # Background (cloth / wall) strip: a flat colour with its own texture, no rash.
    background = _background(rng, h, w)
    bg_col = rng.choice([[0.2, 0.3, 0.6], [0.85, 0.85, 0.88], [0.25, 0.5, 0.3], [0.15, 0.15, 0.17], [0.6, 0.55, 0.5]])
    bg = np.asarray(bg_col, np.float32) + 0.03 * _smooth_noise(rng, (h, w), 3)[..., None]
    rgb = np.where(background[..., None], bg, rgb)
    lesion &= ~background
    skin = ~background
    # Lighting: linear gradient + vignetting + body-curvature shading (mean about 1).
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    grad = ((xx / w - 0.5) * np.cos(angle) + (yy / h - 0.5) * np.sin(angle)) * rng.uniform(0.1, 0.6)
    r2 = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2)
    vignette = -rng.uniform(0, 0.5) * (r2 - r2.mean())
    curve = 0.0
    if rng.random() < 0.6:  # a limb or torso: darker towards its sides
        t = (xx / w if rng.random() < 0.5 else yy / h) - 0.5
        curve = -rng.uniform(0.1, 0.4) * (t ** 2 * 4 - 1 / 3)
    light = 1.0 + grad + vignette + curve
    cast = 1.0 + rng.normal(0, 0.03, 3).astype(np.float32)  # mild white-balance error
    rgb = rgb * light[..., None] * cast
    # Optics and sensor: slight defocus, noise.
    rgb = gaussian_filter(rgb, (rng.uniform(0.0, 0.8),) * 2 + (0,))
    rgb = rgb + rng.normal(0, rng.uniform(0.004, 0.015), rgb.shape).astype(np.float32)
    image = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    return DemoPhoto(image=image, lesion=lesion, skin=skin, skin_lab=(L0, a0, b0),
                     region=None if region is None else region & ~background)


def write_demo_data(out: str | Path, n: int = 200, seed: int = 0,
                    progress: Callable[[int, int], None] | None = None, healthy: float = 0.0,
                    size: tuple[int, int] | None = None) -> Path:
    """Write ``n`` demo photos to ``out/{images,masks,skin}/`` plus ``truth.csv``. Refuses a non-empty ``out``.

    ``healthy``: share of photos rendered without rash and labelled ``healthy`` (every k-th photo; the
    others are ``exanthem``), for a two-class detector demo. Then ``out/regions/`` holds, for every photo,
    where the rash is or would be: cropping both classes by it (``prepare --masks out/regions``) gives
    crops at the same zoom, so a detector cannot tell the classes apart by crop scale.
    ``size``: (H, W) of every photo (default random)."""
    from skimage.color import rgb2lab

    out = check_new_folder(out, "demo data")
    if n < 1:
        raise SkingenError("--n must be at least 1")
    rows = []
    for i in range(n):
        is_healthy = healthy > 0 and int((i + 1) * healthy) > int(i * healthy)
        photo = render_demo_photo(seed * 1_000_003 + i, size=size, rash=not is_healthy)
        stem = f"demo_{i:04d}"
        quality = int(numpy_rng(seed, i, "jpeg").integers(70, 96))
        write_image(out / "images" / f"{stem}.jpg", photo.image, quality=quality)
        write_mask(out / "masks" / f"{stem}.png", photo.lesion)
        write_mask(out / "skin" / f"{stem}.png", photo.skin)
        if healthy > 0:
            write_mask(out / "regions" / f"{stem}.png", photo.lesion if photo.region is None else photo.region)
        # Measure the rendered healthy skin in the encoded file (what a user's estimator sees).
        seen = read_image(out / "images" / f"{stem}.jpg")
        healthy_px = photo.skin & ~photo.lesion
        med = np.median(rgb2lab(seen[healthy_px].reshape(-1, 1, 3) / 255.0).reshape(-1, 3), axis=0)
        L, a, b = photo.skin_lab
        ita = ita_degrees(L, b)
        rows.append({
            "id": stem, "image": f"images/{stem}.jpg", "lesion": f"masks/{stem}.png", "skin": f"skin/{stem}.png",
            "label": "healthy" if is_healthy else "exanthem", "true_L": f"{L:.2f}", "true_a": f"{a:.2f}", "true_b": f"{b:.2f}",
            "true_ita": f"{ita:.2f}", "true_ita_category": ita_category(ita),
            "rendered_L": f"{med[0]:.2f}", "rendered_a": f"{med[1]:.2f}", "rendered_b": f"{med[2]:.2f}",
            "rendered_ita": f"{ita_degrees(med[0], med[2]):.2f}",
            "lesion_fraction": f"{photo.lesion.mean():.4f}",
        })
        if progress:
            progress(i + 1, n)
    write_csv(out / "truth.csv", rows, TRUTH_COLUMNS)
    return out
