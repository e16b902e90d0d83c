"""Reading user images and fitting them to a model's input.

Everything a user can upload ends up as ``uint8 (H, W, 3)`` RGB (or ``(H, W, 1)`` gray): grayscale, RGBA,
palette and 16-bit images are converted explicitly, EXIF rotation is applied, and Pillow's
decompression-bomb guard is turned into a readable error.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from xai_core.errors import ImageLoadError

#: Formats the app accepts for upload (Pillow reads many more; these are the ones we test).
IMAGE_TYPES = ("png", "jpg", "jpeg", "bmp", "webp", "gif", "tif", "tiff")
#: Larger images are refused (Pillow's bomb guard fires at 2 × this by default; we are stricter and clearer).
MAX_PIXELS = 50_000_000
MIN_SIDE = 8

FitMode = Literal["stretch", "center-crop", "pad"]
FIT_MODES: dict[FitMode, str] = {
    "center-crop": "Crop the centre to the model's aspect ratio, then resize (no distortion, edges may be lost)",
    "pad": "Pad to the model's aspect ratio with black, then resize (nothing lost, black borders)",
    "stretch": "Resize directly (the image is distorted if its aspect ratio differs)",
}


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``pixels`` uint8 ``(H, W, 3)`` RGB, its name, and what conversion was applied."""

    name: str
    pixels: np.ndarray
    original_mode: str
    original_size: tuple[int, int]  # (width, height)
    note: str = ""


def to_rgb_array(img: Image.Image) -> tuple[np.ndarray, str]:
    """Convert any Pillow image to uint8 RGB ``(H, W, 3)``; returns the array and a note on what was done."""
    mode = img.mode
    note = ""
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.min(arr)), float(np.max(arr))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr = ((arr - lo) * scale).round().astype(np.uint8)
        img = Image.fromarray(arr)
        note = f"{mode} image rescaled from [{lo:g}, {hi:g}] to 8 bits"
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
        note = note or "transparency flattened onto white"
    rgb = img.convert("RGB")
    if not note and mode not in ("RGB",):
        note = f"converted from {mode} to RGB"
    return np.asarray(rgb, dtype=np.uint8), note


def load_image(source: str | Path | bytes, name: str | None = None) -> LoadedImage:
    """Decode an image file (path or bytes) to RGB, with readable errors for anything that is not one."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "image")
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"'{name}' could not be read: {exc.strerror or exc}.") from exc
    if not data:
        raise ImageLoadError(f"'{name}' is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise ImageLoadError(
                        f"'{name}' is {width}×{height} pixels ({width * height / 1e6:.0f} MP); XAI Lens accepts up "
                        f"to {MAX_PIXELS / 1e6:.0f} MP. Downscale it first."
                    )
                img.load()
                mode = img.mode
                upright = ImageOps.exif_transpose(img)
                pixels, note = to_rgb_array(upright)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"'{name}' is too large to decode safely (decompression-bomb guard): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(
            f"'{name}' is not an image Pillow can read. Upload PNG, JPEG, BMP, WebP, GIF or TIFF."
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"'{name}' is damaged or truncated and cannot be decoded ({exc}).") from exc
    if min(width, height) < MIN_SIDE:
        raise ImageLoadError(
            f"'{name}' is only {width}×{height} pixels; XAI Lens needs at least {MIN_SIDE}×{MIN_SIDE}."
        )
    return LoadedImage(name=name, pixels=pixels, original_mode=mode, original_size=(width, height), note=note)


def fit_to_model(pixels: np.ndarray, size: tuple[int, int], channels: int, mode: FitMode = "center-crop") -> np.ndarray:
    """Resize uint8 RGB ``(H, W, 3)`` (or gray) to float32 ``(h, w, channels)`` in [0, 255] for a model.

    ``mode``: ``"center-crop"`` keeps the aspect ratio and crops the long side, ``"pad"`` keeps everything and
    pads with black, ``"stretch"`` distorts. Gray models get the luminance (ITU-R 601) of colour images.
    """
    h, w = size
    img = Image.fromarray(np.asarray(pixels, dtype=np.uint8).squeeze())
    img = img.convert("RGB")
    if mode == "center-crop":
        img = ImageOps.fit(img, (w, h), method=Image.Resampling.BICUBIC)
    elif mode == "pad":
        img = ImageOps.pad(img, (w, h), method=Image.Resampling.BICUBIC, color=(0, 0, 0))
    elif mode == "stretch":
        img = img.resize((w, h), Image.Resampling.BICUBIC)
    else:
        raise ValueError(f"unknown fit mode {mode!r}")
    if channels == 1:
        img = img.convert("L")
    arr = np.asarray(img, dtype=np.float32)
    return arr[..., None] if arr.ndim == 2 else arr


def to_display(image: np.ndarray) -> np.ndarray:
    """Model-sized float image ``(H, W, C)`` in [0, 255] → uint8 RGB ``(H, W, 3)`` for showing."""
    arr = np.clip(np.asarray(image, dtype=np.float32), 0, 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[..., None]
    return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
