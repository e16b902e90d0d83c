"""Faithfulness: deletion and insertion curves, against a random pixel order.

Rank the pixels by the map (most relevant first). **Deletion** replaces them, in ``steps`` equal fractions, by a
baseline (black by default) and records the class score after each step: a faithful map makes the score drop
early, so a *low* area under the curve (AUC) is good. **Insertion** starts from the baseline (a blurred copy by
default) and reveals the pixels in the same order: a faithful map makes the score rise early, so a *high* AUC is
good. The same curves for a seeded random order say what "no information" scores on this image.

Every perturbed image of every step of every image is built in numpy (step k + 1 is step k with the next pixels
changed: one image copy per step) and sent through the model in large batches, the next chunk being built in a
thread while the model runs the current one; the unperturbed image and the fully-replaced baselines, shared by all
curves, run once per image.

Ref. Petsiuk, Das & Saenko 2018, RISE: Randomized Input Sampling for Explanation of Black-box Models, BMVC.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from xai_core.errors import InvalidParameterError
from xai_core.models.bundle import ModelBundle
from xai_core.quality.base import Progress, as_images, as_maps

Curve = Literal["deletion", "insertion"]
CURVES: tuple[str, ...] = ("deletion", "insertion")
#: Baselines (what replaces a pixel): black, a Gaussian-blurred copy, mid-gray, the image's mean colour.
BASELINES: tuple[str, ...] = ("black", "blur", "gray", "mean")
SCORES: tuple[str, ...] = ("probability", "logit")
#: Direction of a good map: deletion AUC should be low, insertion AUC high.
BETTER: dict[str, str] = {"deletion": "lower", "insertion": "higher"}
#: Perturbed images built at once: this many float32 input values (~64 MB), whatever the image size.
CHUNK_VALUES = 1 << 24


def baseline_images(images: np.ndarray, kind: str, blur_sigma: float | None = None) -> np.ndarray:
    """Raw-pixel baselines ``float32 (N, H, W, C)`` for raw ``images`` of the same shape.

    ``blur`` is a Gaussian blur with ``blur_sigma`` pixels (default: a tenth of the shorter side, which removes
    the shapes of the demo sets; RISE used σ = 5 on 224-pixel photos).
    """
    x = np.asarray(images, dtype=np.float32)
    if kind == "black":
        return np.zeros_like(x)
    if kind == "gray":
        return np.full_like(x, 127.5)
    if kind == "mean":
        return np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape).copy()
    if kind == "blur":
        sigma = float(blur_sigma) if blur_sigma else max(1.0, min(x.shape[1:3]) / 10.0)
        return gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest").astype(np.float32)
    raise InvalidParameterError(f"Unknown baseline '{kind}'. Choose one of: {', '.join(BASELINES)}.")


def map_ranks(maps: np.ndarray, seed: int = 0) -> np.ndarray:
    """``int32 (N, H·W)``: position of each pixel in the map's order (0 = most relevant, removed first).

    Ties (flat regions, zero maps) are broken in a seeded random order, never in raster order.
    """
    flat = np.asarray(maps, dtype=np.float32).reshape(len(maps), -1)
    tie = np.random.default_rng(seed).random(flat.shape)
    order = np.lexsort((tie, -flat), axis=-1)
    ranks = np.empty(order.shape, dtype=np.int32)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(flat.shape[1], dtype=np.int32), flat.shape), axis=1)
    return ranks


def random_ranks(n: int, pixels: int, seed: int = 0) -> np.ndarray:
    """``int32 (n, pixels)``: a seeded random pixel order per image (the comparison for every map)."""
    rng = np.random.default_rng([seed, 1])
    return rng.permuted(np.broadcast_to(np.arange(pixels, dtype=np.int32), (n, pixels)), axis=1)


def auc(scores: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Area under each curve ``scores (N, S+1)`` over ``fractions (S+1,)`` in [0, 1] (trapezoid rule)."""
    s = np.asarray(scores, dtype=np.float64)
    return ((s[:, 1:] + s[:, :-1]) / 2 * np.diff(fractions)).sum(axis=1)


@dataclass
class Curves:
    """Deletion/insertion scores of N images.

    Attributes
    ----------
    fractions : ``(S+1,)`` fraction of pixels removed (deletion) or revealed (insertion) at each step.
    scores : ``{(curve, order): (N, S+1)}`` for curve in ``deletion``/``insertion``, order ``map``/``random``.
    targets : ``(N,)`` explained class of each image.
    image_ids : N image names.
    settings : the parameters used (steps, baselines, score, seed).
    """

    fractions: np.ndarray
    scores: dict[tuple[str, str], np.ndarray]
    targets: np.ndarray
    image_ids: list[str]
    settings: dict[str, Any] = field(default_factory=dict)

    def auc(self, curve: str, order: str = "map") -> np.ndarray:
        """``(N,)`` area under ``curve`` for pixel ``order`` (``map`` or ``random``)."""
        return auc(self.scores[(curve, order)], self.fractions)

    def summary(self) -> pd.DataFrame:
        """One row per image: ``image_id, target`` and ``<curve>_auc``, ``<curve>_auc_random`` per curve."""
        out = pd.DataFrame({"image_id": self.image_ids, "target": self.targets})
        for curve, order in self.scores:
            out[f"{curve}_auc" + ("_random" if order == "random" else "")] = self.auc(curve, order)
        return out

    def frame(self) -> pd.DataFrame:
        """Long form: one row per (image_id, curve, order, step) with ``fraction`` and ``score``."""
        parts = []
        for (curve, order), s in self.scores.items():
            n, k = s.shape
            parts.append(pd.DataFrame({
                "image_id": np.repeat(self.image_ids, k), "curve": curve, "order": order,
                "step": np.tile(np.arange(k), n), "fraction": np.tile(self.fractions, n), "score": s.ravel()}))
        return pd.concat(parts, ignore_index=True)


def _check(steps: int, curves: Sequence[str], baselines: Sequence[str], score: str) -> None:
    if not 2 <= int(steps) <= 1000:
        raise InvalidParameterError(f"Steps must be between 2 and 1000; got {steps}.")
    bad = [c for c in curves if c not in CURVES]
    if bad or not curves:
        raise InvalidParameterError(f"Curves must be among {', '.join(CURVES)}; got {list(curves)}.")
    for b in baselines:
        if b not in BASELINES:
            raise InvalidParameterError(f"Unknown baseline '{b}'. Choose one of: {', '.join(BASELINES)}.")
    if score not in SCORES:
        raise InvalidParameterError(f"Score must be one of {', '.join(SCORES)}; got '{score}'.")


def deletion_insertion(
    bundle: ModelBundle,
    images: np.ndarray,
    maps: np.ndarray,
    targets: Sequence[int] | np.ndarray | None = None,
    *,
    steps: int = 20,
    curves: Sequence[str] = CURVES,
    deletion_baseline: str = "black",
    insertion_baseline: str = "blur",
    blur_sigma: float | None = None,
    compare_random: bool = True,
    seed: int = 0,
    score: str = "probability",
    image_ids: Sequence[str] | None = None,
    batch_size: int = 128,
    progress: Progress | None = None,
) -> Curves:
    """Deletion and insertion curves of ``maps`` for ``images``, all steps of all images batched.

    Parameters
    ----------
    bundle : the model.
    images : raw pixels ``(N, H, W, C)`` in [0, 255] at the model's input size.
    maps : ``(N, H, W)`` (or an Explanation's ``(N, 1, H, W)``): larger = more relevant; pixels are taken
        whole (all channels).
    targets : ``(N,)`` class whose score is tracked (default: each image's predicted class).
    steps : the curves have ``steps + 1`` points, at fractions ``0, 1/steps, …, 1``.
    deletion_baseline, insertion_baseline : one of :data:`BASELINES` (RISE: black for deletion, blur for
        insertion).
    compare_random : also run a seeded random pixel order (the "no information" reference).
    score : ``probability`` (softmax/sigmoid of the logit, RISE) or ``logit``.
    batch_size : images per forward pass.
    progress : ``progress(done, total)`` over perturbed images.

    Returns
    -------
    Curves with ``scores[(curve, order)]`` of shape ``(N, steps + 1)``.

    Ref. Petsiuk et al. 2018, RISE, BMVC.
    """
    images = as_images(bundle, images)
    maps = as_maps(maps, images)
    curves = tuple(dict.fromkeys(curves))
    _check(steps, curves, (deletion_baseline, insertion_baseline), score)
    n, h, w, c = images.shape
    pixels = h * w
    x = bundle.preprocess(images)
    base_kind = {"deletion": deletion_baseline, "insertion": insertion_baseline}
    kinds = list(dict.fromkeys(base_kind[cv] for cv in curves))
    sources = np.stack([x, *(bundle.preprocess(baseline_images(images, k, blur_sigma)) for k in kinds)])
    src_of = {k: 1 + j for j, k in enumerate(kinds)}  # source 0 = the image itself
    orders = ("map", "random") if compare_random else ("map",)
    ranks = np.stack([map_ranks(maps, seed), *([random_ranks(n, pixels, seed)] if compare_random else [])])
    counts = np.rint(np.arange(steps + 1) * pixels / steps).astype(np.int32)  # pixels changed at step k

    # Jobs, in this order: the unperturbed sources (image and baselines; the curves' end points, shared by every
    # curve and order), then one group of steps − 1 interior steps per (curve, order, image), where pixels with
    # rank < count come from source ``a`` and the others from source ``b``.
    spec = [(cv, order) for cv in curves for order in orders]
    groups = [(i, *((src_of[base_kind[cv]], 0) if cv == "deletion" else (0, src_of[base_kind[cv]])), o)
              for cv in curves for o in range(len(orders)) for i in range(n)]
    k_in = steps - 1
    ends_total = len(sources) * n
    total = ends_total + len(groups) * k_in
    image_of = np.concatenate([np.tile(np.arange(n), len(sources)), np.repeat([g[0] for g in groups], k_in)])
    flat_sources = sources.reshape(-1, h, w, c)

    pixel_order = np.argsort(ranks, axis=-1)  # (orders, N, P): pixel changed r-th
    flat_pixels = sources.reshape(len(sources), n, pixels, c)

    def fill(buf: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Perturbed images of jobs ``lo:hi`` into ``buf``. Within a group the changed pixels of step k + 1 are
        those of step k plus the next ones in order: one image copy and a few pixels per step."""
        out_pos = 0
        if lo < ends_total:
            m = min(hi, ends_total) - lo
            buf[:m] = flat_sources[lo:lo + m]
            out_pos, lo = m, lo + m
        flat = buf.reshape(len(buf), pixels, c)
        while lo < hi:
            g, k0 = divmod(lo - ends_total, k_in)
            k1 = min(k_in, k0 + hi - lo)
            img, a, b, o = groups[g]
            order, src = pixel_order[o, img], flat_pixels[a, img]
            current = flat_pixels[b, img].copy()
            done = 0
            for k in range(k0, k1):
                idx = order[done:counts[k + 1]]
                current[idx] = src[idx]
                done = counts[k + 1]
                flat[out_pos] = current
                out_pos += 1
            lo += k1 - k0
        return buf[:out_pos]

    targets = _targets(bundle, x, targets, n)
    out = np.empty(total, np.float64)
    chunk = max(batch_size, min(CHUNK_VALUES // (pixels * c), 4 * batch_size) // batch_size * batch_size)
    bounds = [(lo, min(lo + chunk, total)) for lo in range(0, total, chunk)]
    buffers = [np.empty((min(chunk, total), h, w, c), np.float32) for _ in range(min(2, len(bounds)))]
    with ThreadPoolExecutor(max_workers=1) as pool:  # build chunk j + 1 while the model runs chunk j
        pending = pool.submit(fill, buffers[0], *bounds[0])
        for j, (lo, hi) in enumerate(bounds):
            batch = pending.result()
            if j + 1 < len(bounds):
                pending = pool.submit(fill, buffers[(j + 1) % 2], *bounds[j + 1])
            logits = bundle.logits(batch, batch_size)
            values = bundle.probabilities(logits) if score == "probability" else logits
            out[lo:hi] = values[np.arange(hi - lo), targets[image_of[lo:hi]]]
            if progress:
                progress(hi, total)

    ends = out[:ends_total].reshape(len(sources), n)
    body = out[ends_total:].reshape(len(spec), n, k_in)
    scores: dict[tuple[str, str], np.ndarray] = {}
    for (cv, order), block in zip(spec, body):
        first, last = (ends[0], ends[src_of[base_kind[cv]]])[:: 1 if cv == "deletion" else -1]
        scores[(cv, order)] = np.concatenate([first[:, None], block, last[:, None]], axis=1)
    settings = {"steps": int(steps), "deletion_baseline": deletion_baseline, "insertion_baseline": insertion_baseline,
                "blur_sigma": blur_sigma, "score": score, "seed": int(seed)}
    ids = list(image_ids) if image_ids is not None else [f"image {i}" for i in range(n)]
    return Curves(counts / pixels, scores, targets, ids, settings)


def _targets(bundle: ModelBundle, x: np.ndarray, targets: Any, n: int) -> np.ndarray:
    if targets is None:
        return bundle.logits(x).argmax(axis=1).astype(np.int64)
    t = np.asarray(targets, dtype=np.int64).reshape(-1)
    if len(t) != n or t.min() < 0 or t.max() >= bundle.num_classes:
        raise InvalidParameterError(f"Need one class in 0–{bundle.num_classes - 1} per image; got {t.tolist()}.")
    return t
