"""Occlusion sensitivity: slide a patch over the image and record how much the score drops.

Ref. Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks, ECCV.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy.ndimage import gaussian_filter

from xai_core.errors import InvalidParameterError
from xai_core.methods.base import MethodSpec, Param, Selection, register
from xai_core.models.bundle import DEFAULT_BATCH_SIZE, ModelBundle


def patch_positions(size: int, patch: int, stride: int) -> list[int]:
    """Top-left offsets along one axis so that patches of ``patch`` px with ``stride`` cover ``size`` px."""
    if patch > size:
        raise InvalidParameterError(f"Patch size {patch} px is larger than the {size}px input.")
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:
        pos.append(size - patch)  # cover the last rows/columns too
    return pos


def fill_image(bundle: ModelBundle, x: np.ndarray, fill: str) -> np.ndarray:
    """What an occluded region is replaced with, per image, in model-input space: ``(N, H, W, C)``."""
    if fill == "mean":
        return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).astype(np.float32)
    if fill in ("black", "gray"):
        value = 0.0 if fill == "black" else 127.5
        h, w, c = bundle.input_shape
        return np.broadcast_to(bundle.preprocessing(np.full((1, h, w, c), value, np.float32)), x.shape)
    if fill == "blur":
        sigma = max(1.0, x.shape[1] / 16)
        return gaussian_filter(x, sigma=(0, sigma, sigma, 0)).astype(np.float32)
    raise InvalidParameterError(f"Unknown fill '{fill}'.")


def occlusion(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, patch: int | None = None,
              stride: int | None = None, fill: str = "mean", batch_size: int = DEFAULT_BATCH_SIZE * 4) -> np.ndarray:
    """Occlusion maps ``(N, H, W)``: mean score drop over all patches covering each pixel.

    All occluded copies of all images run through the model in batches of ``batch_size``.
    """
    n, h, w, _ = x.shape
    patch = patch or max(2, round(min(h, w) / 8))
    stride = stride or max(1, patch // 2)
    if stride > patch:
        raise InvalidParameterError(
            f"Stride {stride} px is larger than the patch ({patch} px): some pixels would never be occluded."
        )
    ys, xs = patch_positions(h, patch, stride), patch_positions(w, patch, stride)
    positions = [(r, c) for r in ys for c in xs]
    fills = fill_image(bundle, x, fill)
    base = bundle.neuron_scores(x, selection.layer, selection.indices)
    total = np.zeros((n, h, w), np.float32)
    count = np.zeros((h, w), np.float32)
    for r, c in positions:
        count[r:r + patch, c:c + patch] += 1

    def jobs() -> Iterator[tuple[int, int, int]]:
        for i in range(n):
            for r, c in positions:
                yield i, r, c

    batch: list[tuple[int, int, int]] = []
    for job in [*jobs(), None]:
        if job is not None:
            batch.append(job)
            if len(batch) < batch_size:
                continue
        if not batch:
            break
        imgs = np.empty((len(batch), *x.shape[1:]), np.float32)
        for k, (i, r, c) in enumerate(batch):
            imgs[k] = x[i]
            imgs[k, r:r + patch, c:c + patch] = fills[i, r:r + patch, c:c + patch]
        idx = np.array([selection.indices[i] for i, _, _ in batch])
        scores = bundle.neuron_scores(imgs, selection.layer, idx, batch_size=batch_size)
        for (i, r, c), s in zip(batch, scores):
            total[i, r:r + patch, c:c + patch] += base[i] - s
        batch = []
    return total / count


register(MethodSpec(
    id="occlusion", label="Occlusion", family="Perturbation",
    summary="How much the score drops when a patch of the image is covered: a direct, model-agnostic test. "
            "Blue where covering a patch *raises* the score (it hid evidence against the class).",
    caveat="Slow (one forward pass per patch position); the patch size sets the resolution, and the fill "
           "value can itself create evidence.",
    reference="Zeiler & Fergus 2014, Visualizing and Understanding Convolutional Networks, ECCV.",
    signed=True,  # covering a patch can raise the score as well as lower it
    params=(
        Param("patch", "int", None, "Patch size (px)",
              "Side of the square that is covered; empty = 1/8 of the input side.", min=1, max=1024, step=1),
        Param("stride", "int", None, "Stride (px)",
              "Step between patch positions (≤ patch size); empty = half the patch.", min=1, max=1024, step=1),
        Param("fill", "choice", "mean", "Fill", "What covers the patch: the image's mean colour, black, gray, "
              "or a blurred copy of the image.", choices=("mean", "black", "gray", "blur"), builds=False),
    ),
    run=lambda bundle, x, selection, patch, stride, fill: occlusion(
        bundle, x, selection, patch=patch, stride=stride, fill=fill),
))
