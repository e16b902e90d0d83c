"""The images a page explains: each with a stable key, from uploads, the gallery or another page.

Pages keep images as :class:`ImageItem` (uint8 RGB pixels plus a content-derived ``key``) so every cache
(predictions, explanations, fitted inputs) is keyed by strings that do not change between reruns.
Images handed from one page to another travel as plain records ``{"key", "name", "pixels"}``
(:func:`make_record`, :func:`from_records`), the documented format of ``st.session_state["shared.images"]``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from xai_core.data.images import MIN_SIDE, FitMode, fit_to_model, load_image
from xai_core.errors import ImageLoadError


@dataclass(frozen=True, eq=False)
class ImageItem:
    """One image to explain.

    Attributes
    ----------
    key : stable id derived from the content or the gallery entry, e.g. ``"upload/3f2a…"``, ``"photo/china"``.
    name : what the user sees (file name, gallery title).
    pixels : uint8 ``(H, W, 3)`` RGB.
    source : ``"upload"``, ``"gallery"`` or ``"sent"``.
    note : what conversion was applied while decoding (e.g. "converted from L to RGB"), or "".
    """

    key: str
    name: str
    pixels: np.ndarray
    source: str = ""
    note: str = ""


def content_key(data: bytes) -> str:
    """Short stable hash of file bytes (sha1, 16 hex digits)."""
    return hashlib.sha1(data).hexdigest()[:16]


def pixels_key(pixels: np.ndarray) -> str:
    """Short stable hash of an array's shape, dtype and bytes."""
    arr = np.ascontiguousarray(pixels)
    h = hashlib.sha1(f"{arr.shape}{arr.dtype}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


def as_rgb(pixels: Any) -> np.ndarray:
    """Any ``(H, W)``, ``(H, W, 1|3|4)`` numeric array → uint8 ``(H, W, 3)`` (floats are clipped to [0, 255]).

    Raises :class:`ImageLoadError` for anything else (wrong rank, too small, non-finite values).
    """
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4) or not np.issubdtype(arr.dtype, np.number):
        raise ImageLoadError(f"expected an image array (H, W) or (H, W, 1|3|4), got shape {arr.shape}.")
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ImageLoadError(
            f"the image is only {arr.shape[1]}×{arr.shape[0]} pixels; at least {MIN_SIDE}×{MIN_SIDE} needed."
        )
    if not np.all(np.isfinite(arr)):
        raise ImageLoadError("the image contains non-finite values.")
    arr = arr[..., :3] if arr.shape[-1] == 4 else arr
    arr = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
    return np.ascontiguousarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def shrink(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, str]:
    """Downscale uint8 RGB so its longer side is at most ``max_side`` (Lanczos); returns pixels and a note.

    The shorter side never drops below :data:`~xai_core.data.images.MIN_SIDE`: a 4000×8 strip stays 4000×8 (a
    plain downscale to 1024 px would make it 1024×2, too small for any model, after the size check had passed).
    """
    h, w = pixels.shape[:2]
    scale = min(1.0, max(max_side / max(h, w), MIN_SIDE / min(h, w)))
    if scale >= 1.0:
        return pixels, ""
    size = (max(MIN_SIDE, round(w * scale)), max(MIN_SIDE, round(h * scale)))
    out = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
    if min(out.shape[:2]) < MIN_SIDE:  # checked after every resize
        raise ImageLoadError(f"the image became {out.shape[1]}×{out.shape[0]} pixels when downscaled; "
                             f"at least {MIN_SIDE}×{MIN_SIDE} needed.")
    return out, f"downscaled from {w}×{h} to {out.shape[1]}×{out.shape[0]}"


def decode_uploads(files: Iterable[tuple[str, bytes]],
                   max_side: int | None = None) -> tuple[list[ImageItem], list[str]]:
    """Decode uploaded files ``(name, bytes)``; a file that fails does not stop the others.

    ``max_side`` downscales large photos once (models take at most a few hundred pixels), so pages do not
    carry 12-megapixel arrays through every rerun.

    Returns
    -------
    images : one :class:`ImageItem` per readable file (identical contents only once), key ``"upload/<sha1>"``.
    errors : one readable message per file that could not be used.
    """
    images: list[ImageItem] = []
    errors: list[str] = []
    seen: set[str] = set()
    for name, data in files:
        key = f"upload/{content_key(data)}"
        if key in seen:
            continue
        try:
            loaded = load_image(data, name)
        except ImageLoadError as exc:
            errors.append(str(exc))
            continue
        seen.add(key)
        pixels, note = shrink(loaded.pixels, max_side) if max_side else (loaded.pixels, "")
        note = "; ".join(n for n in (loaded.note, note) if n)
        images.append(ImageItem(key, name, pixels, "upload", note))
    return images, errors


def make_record(pixels: Any, name: str, key: str | None = None) -> dict[str, Any]:
    """A shareable image record ``{"key", "name", "pixels"}`` (pixels converted with :func:`as_rgb`)."""
    rgb = as_rgb(pixels)
    return {"key": key or f"sent/{pixels_key(rgb)}", "name": str(name), "pixels": rgb}


def from_records(records: Any) -> tuple[list[ImageItem], list[str]]:
    """Turn shared records (see :func:`make_record`) into images; malformed records become error messages."""
    if records is None:
        return [], []
    if isinstance(records, dict) or not isinstance(records, Sequence):
        return [], ["Images sent from another page must be a list of {key, name, pixels} records."]
    images: list[ImageItem] = []
    errors: list[str] = []
    for i, rec in enumerate(records):
        name = str(rec.get("name", f"sent image {i + 1}")) if isinstance(rec, dict) else f"sent image {i + 1}"
        try:
            if not isinstance(rec, dict) or "pixels" not in rec:
                raise ImageLoadError("it is not a {key, name, pixels} record.")
            rgb = as_rgb(rec["pixels"])
        except ImageLoadError as exc:
            errors.append(f"'{name}' (sent from another page) cannot be used: {exc}")
            continue
        images.append(ImageItem(str(rec.get("key") or f"sent/{pixels_key(rgb)}"), name, rgb, "sent"))
    return images, errors


def unique(items: Iterable[ImageItem]) -> list[ImageItem]:
    """Items in order, each key once."""
    out: dict[str, ImageItem] = {}
    for item in items:
        out.setdefault(item.key, item)
    return list(out.values())


def fit_key(key: str, size: tuple[int, int], channels: int, mode: FitMode) -> str:
    """Cache key of an image fitted to a model input: ``"<key>@32x32x1/center-crop"``."""
    return f"{key}@{size[0]}x{size[1]}x{channels}/{mode}"


def fit_item(item: ImageItem, size: tuple[int, int], channels: int, mode: FitMode) -> np.ndarray:
    """float32 ``(1, H, W, C)`` model-sized raw pixels of one item (see :func:`fit_to_model`)."""
    return fit_to_model(item.pixels, size, channels, mode)[None]
