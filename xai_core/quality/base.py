"""Shared helpers of the quality checks: maps for one class per image, per-image seeds, input checks."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xai_core.errors import InvalidParameterError
from xai_core.methods import Target, explain
from xai_core.models.bundle import ModelBundle

Progress = Callable[[int, int], None]


def as_images(bundle: ModelBundle, images: np.ndarray) -> np.ndarray:
    """Raw pixels as float32 ``(N, H, W, C)`` at the model's input size; a readable error otherwise."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1:] != bundle.input_shape:
        raise InvalidParameterError(
            f"Quality checks need images of shape (N, {', '.join(map(str, bundle.input_shape))}) for model "
            f"'{bundle.name}', got {images.shape}."
        )
    if len(images) == 0:
        raise InvalidParameterError("No images to check: choose at least one.")
    return images


def as_maps(maps: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Maps as float32 ``(N, H, W)`` matching ``images`` ``(N, H, W, C)``; non-finite values become 0."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 4 and maps.shape[1] == 1:  # an Explanation's (N, 1, H, W)
        maps = maps[:, 0]
    if maps.shape != images.shape[:3]:
        raise InvalidParameterError(f"Need one (H, W) map per image: maps {maps.shape}, images {images.shape}.")
    return np.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0)


def predicted_classes(bundle: ModelBundle, images: np.ndarray) -> np.ndarray:
    """``int64 (N,)`` predicted class of each raw image."""
    return bundle.logits(bundle.preprocess(images)).argmax(axis=1).astype(np.int64)


def class_maps(bundle: ModelBundle, method_id: str, images: np.ndarray, classes: Sequence[int] | np.ndarray,
               params: dict[str, Any] | None = None, progress: Progress | None = None) -> np.ndarray:
    """Maps ``float32 (N, H, W)`` of ``method_id`` explaining class ``classes[i]`` for image ``i``.

    One :func:`~xai_core.methods.explain` call per distinct class (at most ``num_classes`` calls), each batched.
    """
    images = as_images(bundle, images)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(classes) != len(images):
        raise InvalidParameterError(f"Need one class per image: {len(classes)} classes, {len(images)} images.")
    out = np.zeros(images.shape[:3], np.float32)
    done = 0
    for c in np.unique(classes):
        idx = np.flatnonzero(classes == c)
        out[idx] = explain(bundle, method_id, images[idx], Target.of_class(int(c)), params).maps[:, 0]
        done += len(idx)
        if progress:
            progress(done, len(images))
    return out


def digest(*arrays: np.ndarray) -> str:
    """Short content fingerprint of arrays (cache keys for results computed on them)."""
    crc = 0
    for a in arrays:
        a = np.ascontiguousarray(a)
        crc = zlib.crc32(repr((a.shape, str(a.dtype))).encode(), crc)
        crc = zlib.crc32(a.tobytes(), crc)
    return f"{crc:08x}"
