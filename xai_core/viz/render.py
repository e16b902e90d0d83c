"""Turning maps into pictures: normalisation, colour maps and overlays (no Streamlit here).

Signed maps (gradients, LRP, IG) are shown with a diverging colour map centred at 0 so that positive and
negative evidence keep their meaning; non-negative maps (Grad-CAM, occlusion) with a sequential one.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from matplotlib import colormaps
from PIL import Image

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont
    from PIL.ImageFont import ImageFont as BitmapFont

NormMode = Literal["max-abs", "percentile"]
DIVERGING_CMAPS = ("bwr", "RdBu_r", "coolwarm", "seismic", "PiYG")
SEQUENTIAL_CMAPS = ("jet", "inferno", "viridis", "magma", "hot", "turbo")


def normalization_scale(maps: np.ndarray, signed: bool, mode: NormMode = "max-abs", percentile: float = 99.0,
                        shared: bool = False) -> np.ndarray:
    """The value each map ``(..., H, W)`` is divided by in :func:`normalize` (what the end of the colour scale
    means), shaped ``(..., 1, 1)`` (or ``(1, …, 1)`` when ``shared``); always > 0. For unsigned maps that are all
    ≤ 0 it is the scale of their magnitude."""
    m = np.asarray(maps, dtype=np.float32)
    axes = None if shared else (-2, -1)
    if not signed:  # a non-negative method spreading a negative score: its magnitude is drawn
        m = np.where(np.max(m, axis=axes, keepdims=True) <= 0, -m, m)
    mag = np.abs(m) if signed else np.maximum(m, 0)
    if mode == "percentile":
        scale = np.percentile(mag, percentile, axis=axes, keepdims=True)
        peak = np.max(mag, axis=axes, keepdims=True)  # a sparse map has percentile 0: use its maximum instead
        scale = np.where(scale > 0, scale, peak)
    elif mode == "max-abs":
        scale = np.max(mag, axis=axes, keepdims=True)
    else:
        raise ValueError(f"unknown normalisation {mode!r}")
    return np.where(scale > 0, scale, 1.0).astype(np.float32)


def normalize(maps: np.ndarray, signed: bool, mode: NormMode = "max-abs", percentile: float = 99.0,
              shared: bool = False) -> np.ndarray:
    """Scale maps ``(..., H, W)`` to [−1, 1] (signed) or [0, 1] (unsigned), per map or ``shared`` by all.

    ``"max-abs"`` divides by the largest magnitude; ``"percentile"`` divides by the given percentile of the
    magnitudes and clips, so a few extreme pixels do not wash out the rest (:func:`normalization_scale`). Unsigned
    maps drop negative values; an unsigned map that is all ≤ 0 (a non-negative method spreading a negative score) is
    drawn by its magnitude. An all-zero map stays zero.
    """
    m = np.asarray(maps, dtype=np.float32)
    scale = normalization_scale(m, signed, mode, percentile, shared)
    if not signed:
        m = np.where(np.max(m, axis=None if shared else (-2, -1), keepdims=True) <= 0, -m, m)
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


def square_thumbnail(image: np.ndarray, side: int = 100, fill: int = 238) -> np.ndarray:
    """uint8 ``(side, side, 3)``: ``image`` letterboxed onto a square of ``fill`` grey and resized, so any aspect
    ratio (a 1000:1 strip as much as a photo) gives a thumbnail of exactly that size; never a 0-pixel one."""
    rgb = np.asarray(image, dtype=np.uint8)
    rgb = np.repeat(rgb[..., None] if rgb.ndim == 2 else rgb, 3, axis=-1) if rgb.ndim == 2 or rgb.shape[-1] == 1 \
        else rgb[..., :3]
    h, w = rgb.shape[:2]
    n = max(h, w)
    square = np.full((n, n, 3), fill, np.uint8)
    top, left = (n - h) // 2, (n - w) // 2
    square[top:top + h, left:left + w] = rgb
    resample = Image.Resampling.NEAREST if n <= side else Image.Resampling.BOX
    return np.asarray(Image.fromarray(square).resize((side, side), resample))


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 RGB/gray array as PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8).squeeze()).save(buf, format="PNG")
    return buf.getvalue()


def png_data_url(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a uint8 image (for chart tooltips and table image columns)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


# ---------------------------------------------------------------------------------------------- grids
#: What a result grid shows for each map.
VIEWS = ("heatmap + overlay", "overlay", "heatmap")


def map_tiles(image: np.ndarray, norm_map: np.ndarray, signed: bool, cmap: str | None = None, alpha: float = 0.6,
              view: str = "heatmap + overlay", min_side: int = 224) -> list[tuple[str, np.ndarray]]:
    """The pictures of one normalised map ``(H, W)`` over its uint8 RGB ``image`` ``(H, W, 3)``.

    Returns ``[("heatmap", rgb), ("overlay", rgb)]`` (or one of them, per ``view``), each enlarged with
    :func:`upscale` to at least ``min_side`` pixels so that 32×32 inputs are visible.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {VIEWS}")
    out = []
    if view != "overlay":
        out.append(("heatmap", upscale(colorize(norm_map, signed, cmap), min_side)))
    if view != "heatmap":
        out.append(("overlay", upscale(overlay(image, norm_map, signed, cmap, alpha), min_side)))
    return out


def fit_tile(image: np.ndarray, side: int) -> np.ndarray:
    """uint8 RGB image scaled to fit a ``side × side`` white square (nearest when enlarging, centred)."""
    img = np.asarray(image, dtype=np.uint8)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    h, w = img.shape[:2]
    scale = side / max(h, w)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    small = np.asarray(Image.fromarray(img).resize(new, resample))
    out = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - new[1]) // 2, (side - new[0]) // 2
    out[top:top + new[1], left:left + new[0]] = small
    return out


def _ellipsize(text: str, font: FreeTypeFont | BitmapFont, width: int) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def compose_grid(rows: Sequence[Sequence[np.ndarray | None]], captions: Sequence[Sequence[str]] | None = None,
                 tile: int = 192, pad: int = 8, caption_lines: int = 2, font_size: int = 12) -> np.ndarray:
    """One uint8 RGB picture of a grid of tiles (e.g. image | heatmap | overlay per row), captions below each.

    Parameters
    ----------
    rows : rows of uint8 images (any sizes; each is fitted into a ``tile`` square); ``None`` leaves a gap.
    captions : one text per tile (same nesting as ``rows``); long texts wrap to ``caption_lines`` lines.

    Returns
    -------
    uint8 ``(H, W, 3)`` on white.
    """
    from PIL import ImageDraw, ImageFont

    n_cols = max((len(r) for r in rows), default=0)
    if not rows or n_cols == 0:
        return np.full((tile, tile, 3), 255, np.uint8)
    font = ImageFont.load_default(size=font_size)
    line_h = font_size + 3
    cap_h = (line_h * caption_lines + 4) if captions else 0
    cell_w, cell_h = tile + pad, tile + cap_h + pad
    canvas = Image.new("RGB", (pad + n_cols * cell_w, pad + len(rows) * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            x, y = pad + c * cell_w, pad + r * cell_h
            if img is not None:
                canvas.paste(Image.fromarray(fit_tile(img, tile)), (x, y))
            text = captions[r][c] if captions and r < len(captions) and c < len(captions[r]) else ""
            lines: list[str] = []
            rest = text.split()
            while rest and len(lines) < caption_lines:
                line = rest.pop(0)
                while rest and font.getlength(line + " " + rest[0]) <= tile:
                    line += " " + rest.pop(0)
                if len(lines) == caption_lines - 1 and rest:
                    line = " ".join([line, *rest])
                    rest = []
                lines.append(_ellipsize(line, font, tile))
            for i, line in enumerate(lines):
                draw.text((x, y + tile + 3 + i * line_h), line, fill=(31, 36, 48), font=font)
    return np.asarray(canvas)
