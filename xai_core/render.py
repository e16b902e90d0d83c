"""Turning maps into pictures: normalisation, colour maps and overlays (no Streamlit here).

Signed maps (gradients, LRP, IG) are shown with a diverging colour map centred at 0 so that positive and
negative evidence keep their meaning; non-negative maps (Grad-CAM, occlusion) with a sequential one.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from matplotlib import colormaps
from PIL import Image

NormMode = Literal["max-abs", "percentile"]
DIVERGING_CMAPS = ("bwr", "RdBu_r", "coolwarm", "seismic", "PiYG")
SEQUENTIAL_CMAPS = ("jet", "inferno", "viridis", "magma", "hot", "turbo")


def normalize(maps: np.ndarray, signed: bool, mode: NormMode = "max-abs", percentile: float = 99.0,
              shared: bool = False) -> np.ndarray:
    """Scale maps ``(..., H, W)`` to [−1, 1] (signed) or [0, 1] (unsigned), per map or ``shared`` by all.

    ``"max-abs"`` divides by the largest magnitude; ``"percentile"`` divides by the given percentile of the
    magnitudes and clips, so a few extreme pixels do not wash out the rest. Unsigned maps drop negative values.
    An all-zero map stays zero.
    """
    m = np.asarray(maps, dtype=np.float32)
    mag = np.abs(m) if signed else np.maximum(m, 0)
    axes = None if shared else (-2, -1)
    if mode == "percentile":
        scale = np.percentile(mag, percentile, axis=axes, keepdims=not shared)
    elif mode == "max-abs":
        scale = mag.max(axis=axes, keepdims=not shared)
    else:
        raise ValueError(f"unknown normalisation {mode!r}")
    scale = np.where(scale > 0, scale, 1.0)
    out = (m if signed else np.maximum(m, 0)) / scale
    return np.clip(out, -1.0 if signed else 0.0, 1.0).astype(np.float32)


def colorize(norm_map: np.ndarray, signed: bool, cmap: str | None = None) -> np.ndarray:
    """A normalised map ``(H, W)`` → uint8 RGB ``(H, W, 3)``; signed maps centre 0 in the colour map."""
    cmap = cmap or ("bwr" if signed else "jet")
    values = (norm_map + 1.0) / 2.0 if signed else norm_map
    rgba = colormaps[cmap](np.clip(values, 0.0, 1.0))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, norm_map: np.ndarray, signed: bool, cmap: str | None = None,
            alpha: float = 0.6) -> np.ndarray:
    """Blend the coloured map over a uint8 RGB image ``(H, W, 3)``.

    Each pixel's opacity is ``alpha × |value|``, so pixels without relevance show the untouched image.
    """
    heat = colorize(norm_map, signed, cmap).astype(np.float32)
    weight = (alpha * np.abs(norm_map))[..., None]
    img = np.asarray(image, dtype=np.float32)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    return (img * (1 - weight) + heat * weight).round().clip(0, 255).astype(np.uint8)


def upscale(image: np.ndarray, min_side: int = 224) -> np.ndarray:
    """Nearest-neighbour enlargement of small images (e.g. 32×32 digits) so they are visible on screen."""
    h, w = image.shape[:2]
    factor = max(1, int(np.ceil(min_side / max(1, min(h, w)))))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 RGB/gray array as PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8).squeeze()).save(buf, format="PNG")
    return buf.getvalue()
