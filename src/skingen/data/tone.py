"""Darker skin by a physical model of skin colour: more melanin, the same haemoglobin (the rash kept).

Skin colour model (Tsumura et al., "Image-based skin color and texture analysis/synthesis by extracting
hemoglobin and melanin information in the skin", SIGGRAPH 2003): in optical density
``OD = -log(linear RGB reflectance)`` a skin pixel is, to first order,

    OD = c_m * MELANIN + c_h * HAEMOGLOBIN + s * (1, 1, 1)

with ``c_m``, ``c_h`` the two pigment densities and ``s`` the shading (a change of illumination scales all
three linear channels alike, i.e. adds the same OD to each). Tsumura found the two axes per camera by
independent component analysis; here they are **fixed** (one basis for every photo, so a set is toned
consistently and no per-image ICA can swap the axes):

- ``MELANIN``: (0.438, 0.562, 0.701), a camera-RGB melanin axis found by Tsumura-style ICA (open
  implementations of the method) -- absorption falling from blue to red, as melanin's. The spectral law
  ``mu_a ~ lambda^-3.46`` (Jacques 1998) at the sRGB primaries' peak wavelengths (R 610, G 545, B 465 nm)
  gives the steeper (0.321, 0.473, 0.820); a camera's broad bands flatten it, and on the study's light train
  crops the steep axis painted over-saturated orange skin (docs/tone.md).
- ``HAEMOGLOBIN``: the haemoglobin axis of ICA-based skin separations (green ~ blue >> red, the Q-bands of
  oxy-haemoglobin near 540-580 nm), normalised: (0.247, 0.710, 0.659).

The tone change only ever *adds* melanin density (``OD += delta * MELANIN``), so the output does not depend on
the haemoglobin axis at all; that axis only serves the decomposition used to measure the rash
(:func:`decompose`). Nothing outside the skin mask is touched (bit-exact); the added density fades in over a
few pixels inside the skin mask's edge so there is no hard seam.

``lab_shift`` is the naive baseline: one shift of CIELAB L* and b* of all skin pixels that moves the median
healthy-skin colour to the target ITA (its distance from (L*=50, b*=0) kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from skingen.data.skintone import ita_degrees

MELANIN = np.array([0.438, 0.562, 0.701])
SPECTRAL_MELANIN = np.array([0.321, 0.473, 0.820])  # the steeper spectral-law axis (not used; see above)
HAEMOGLOBIN = np.array([0.247, 0.710, 0.659])
SHADING = np.ones(3)
BASIS = np.stack([MELANIN / np.linalg.norm(MELANIN), HAEMOGLOBIN / np.linalg.norm(HAEMOGLOBIN), SHADING], axis=1)
_UNMIX = np.linalg.inv(BASIS)  # OD [3] -> (c_m, c_h, s)
_EPS = 1.0 / 4096  # smallest linear reflectance: a black pixel stays finite in OD
MAX_DENSITY = 8.0  # the most melanin density added (OD units): far darker than any photographed skin
FEATHER_PX = 3.0  # the added density fades in over about this many pixels inside the skin edge
SAMPLE_PIXELS = 4000  # healthy-skin pixels the target search measures (a median barely moves beyond that)


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """``uint8 [...,3]`` sRGB -> linear reflectance ``float [...,3]`` in [0, 1] (IEC 61966-2-1)."""
    x = image.astype(np.float64) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear reflectance ``float [...,3]`` -> ``uint8`` sRGB (clipped to [0, 1], rounded)."""
    x = np.clip(linear, 0.0, 1.0)
    s = np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)


def optical_density(image: np.ndarray) -> np.ndarray:
    """``uint8 [...,3]`` sRGB -> optical density ``float [...,3]`` (``-log`` linear reflectance, >= 0)."""
    return -np.log(np.maximum(srgb_to_linear(image), _EPS))


def compose(melanin: np.ndarray, haemoglobin: np.ndarray, shading: np.ndarray) -> np.ndarray:
    """Pigment densities and shading ``float [...]`` (OD units) -> ``uint8 [...,3]`` sRGB (the model above)."""
    od = melanin[..., None] * BASIS[:, 0] + haemoglobin[..., None] * BASIS[:, 1] + shading[..., None] * BASIS[:, 2]
    return linear_to_srgb(np.exp(-od))


def decompose(image: np.ndarray) -> np.ndarray:
    """``uint8 [...,3]`` sRGB -> ``float [...,3]``: melanin density, haemoglobin density, shading (OD units)."""
    return optical_density(image) @ _UNMIX.T


@dataclass(frozen=True)
class ToneResult:
    """What :func:`tone_skin` did to one image."""

    image: np.ndarray     #: ``uint8 [H,W,3]``, bit-exact to the input outside ``skin``
    amount: float         #: melanin density added (OD units; ``lab``: the L* shift)
    ita_before: float     #: healthy-skin ITA of the input (degrees; the search's own pixels)
    ita_after: float      #: the same pixels' ITA after the change


def _lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb.reshape(-1, 1, 3).astype(np.float32) / 255.0).reshape(-1, 3)


def _ita_of(rgb: np.ndarray) -> float:
    """ITA of the median L*, b* of pixels ``uint8 [N,3]`` (as :func:`skingen.data.skintone.measure_skin_tone`)."""
    lab = _lab(rgb)
    return float(ita_degrees(np.median(lab[:, 0]), np.median(lab[:, 2])))


def _sample(mask: np.ndarray) -> np.ndarray:
    """Flat indices of at most ``SAMPLE_PIXELS`` pixels of ``mask`` (an even subsample: deterministic)."""
    idx = np.flatnonzero(mask)
    return idx[:: max(1, len(idx) // SAMPLE_PIXELS)]


def _weights(skin: np.ndarray) -> np.ndarray:
    """``float [H,W]`` in [0, 1]: 0 outside ``skin``, rising to 1 about ``FEATHER_PX`` inside its edge."""
    from scipy.ndimage import distance_transform_edt

    return np.clip(distance_transform_edt(skin) / FEATHER_PX, 0.0, 1.0)


def tone_skin(image: np.ndarray, skin: np.ndarray, healthy: np.ndarray, target_ita: float,
              method: str = "melanin", axis: np.ndarray = MELANIN) -> ToneResult:
    """Move the healthy skin of ``image`` (``uint8 [H,W,3]`` sRGB) to ``target_ita`` (degrees, -90..90).

    ``skin`` (``bool [H,W]``): the pixels that may change (skin, rash included); ``healthy`` (``bool [H,W]``,
    inside ``skin``): the pixels whose median L*, b* define the ITA that is searched for. ``method``
    ``melanin`` adds melanin density (module docstring) found by bisection, so the rash keeps its haemoglobin;
    ``lab`` shifts L* and b*. Only makes skin darker or keeps it: a target above the current ITA returns the
    image unchanged. Pixels outside ``skin`` are returned bit-exact. ``axis``: the melanin OD direction
    ``float [3]`` (R, G, B) the density is added along.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 [H,W,3], got {image.dtype} {image.shape}")
    if skin.shape != image.shape[:2] or healthy.shape != image.shape[:2]:
        raise ValueError("skin and healthy masks must be bool [H,W] of the image's size")
    if method not in ("melanin", "lab"):
        raise ValueError(f"method must be melanin or lab, got '{method}'")
    pick = _sample(healthy & skin)
    flat = image.reshape(-1, 3)
    if len(pick) == 0:
        return ToneResult(image.copy(), 0.0, math.nan, math.nan)
    before = _ita_of(flat[pick])
    if not before > target_ita:  # already as dark (or not measurable): nothing to add
        return ToneResult(image.copy(), 0.0, before, before)
    weight = _weights(skin)
    if method == "melanin":
        axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
        amount, after = _melanin_amount(flat[pick], weight.reshape(-1)[pick], target_ita, axis)
        out = _add_melanin(image, weight, amount, axis)
    else:
        shift = _lab_shift_amount(flat[pick], target_ita)
        out = _shift_lab(image, weight, shift)
        amount, after = float(shift[0]), _ita_of(out.reshape(-1, 3)[pick])
    out[~skin] = image[~skin]  # weight is 0 there, but the sRGB round trip is not exact for black (the OD floor)
    return ToneResult(out, amount, before, after)


def _melanin_amount(pixels: np.ndarray, weight: np.ndarray, target: float, axis: np.ndarray,
                    steps: int = 20) -> tuple[float, float]:
    """Bisection on the melanin density added to ``pixels`` (``uint8 [N,3]``, each scaled by ``weight``) until
    their median ITA is ``target``; ITA falls monotonically with melanin over skin colours. -> (density, ITA)."""
    od = optical_density(pixels)
    lo, hi = 0.0, MAX_DENSITY

    def ita_of(density: float) -> float:
        return _ita_of(linear_to_srgb(np.exp(-(od + (density * weight)[:, None] * axis))))
    if ita_of(hi) > target:  # cannot get that dark: the most there is
        return hi, ita_of(hi)
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ita_of(mid) > target else (lo, mid)
    return hi, ita_of(hi)


def _add_melanin(image: np.ndarray, weight: np.ndarray, amount: float, axis: np.ndarray) -> np.ndarray:
    od = optical_density(image) + (amount * weight)[..., None] * axis
    return linear_to_srgb(np.exp(-od))


def _lab_shift_amount(pixels: np.ndarray, target: float) -> np.ndarray:
    """(dL*, db*) that rotates the median (L*-50, b*) of ``pixels`` to angle ``target``, keeping its length."""
    lab = _lab(pixels)
    L, b = float(np.median(lab[:, 0])), float(np.median(lab[:, 2]))
    r = math.hypot(L - 50.0, b)
    t = math.radians(target)
    return np.array([50.0 + r * math.sin(t) - L, r * math.cos(t) - b])


def _shift_lab(image: np.ndarray, weight: np.ndarray, shift: np.ndarray) -> np.ndarray:
    import warnings

    from skimage.color import lab2rgb

    lab = _lab(image).reshape(image.shape)
    lab[..., 0] += weight * shift[0]
    lab[..., 2] += weight * shift[1]
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    with warnings.catch_warnings():  # a shifted colour outside sRGB is clipped: the baseline's known flaw
        warnings.simplefilter("ignore", UserWarning)
        rgb = lab2rgb(lab)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
