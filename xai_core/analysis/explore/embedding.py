"""t-SNE of a layer's activations over a data set: PCA to at most 50 dimensions first, then a seeded t-SNE.

Ref. van der Maaten & Hinton 2008, Visualizing Data using t-SNE, JMLR 9:2579–2605 (PCA to 50 dimensions
first, as in their experiments; the perplexity bound 3·perplexity < N − 1 is the check of the authors'
reference implementation ``bhtsne``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xai_core.analysis.explore.metrics import Predictions
from xai_core.errors import InvalidParameterError

#: More points than this are subsampled (seeded, uniformly). Measured on the 2-core project machine under load
#: (bench/bench_explorer.py): 1,437 points take 5–8 s, 3,000 points 9–22 s; beyond ~2,000 the page feels stuck.
MAX_POINTS = 2000
#: Gradient-descent iterations: 250 of early exaggeration + 250 of refinement. scikit-learn's default of 1,000
#: took about twice as long for maps that kept classes apart equally well on the demo sets (5-NN accuracy in the
#: 2-D map: 0.906 vs 0.900 digits conv3, 0.997 vs 0.997 digits train dense1, 0.872 vs 0.873 shapes dense1).
MAX_ITER = 500
#: Dimensions kept by the PCA before t-SNE.
PCA_DIMS = 50
FRAME_COLUMNS = ("index", "x", "y", "true", "predicted", "correct", "true_name", "predicted_name", "confidence")


@dataclass(frozen=True, eq=False)
class Embedding:
    """A 2-D t-SNE map of a data set.

    Attributes
    ----------
    frame : one row per embedded image, columns :data:`FRAME_COLUMNS` (``index`` = dataset index; ``true`` is
        -1 and ``true_name`` "unlabelled" when the label is unknown; ``correct`` is False then).
    total : images available before subsampling (``len(frame) < total`` means a subsample was drawn).
    dims : dimensions after PCA that t-SNE saw.
    perplexity : the perplexity used.
    seconds : wall time of PCA + t-SNE.
    """

    frame: pd.DataFrame
    total: int
    dims: int
    perplexity: float
    seconds: float

    @property
    def subsampled(self) -> bool:
        return len(self.frame) < self.total


def max_perplexity(n: int) -> float:
    """The largest perplexity allowed for ``n`` points: 3·perplexity < n − 1."""
    return max(0.0, (n - 1) / 3.0 - 1e-9)


def check_perplexity(perplexity: float, n: int) -> None:
    """Raise :class:`InvalidParameterError` unless 1 ≤ perplexity and 3·perplexity < n − 1."""
    if n < 5:
        raise InvalidParameterError(f"t-SNE needs at least 5 images; this data set has {n}.")
    if not (perplexity >= 1.0 and 3.0 * perplexity < n - 1):
        raise InvalidParameterError(
            f"Perplexity {perplexity:g} does not fit {n} images: choose a value between 1 and "
            f"{np.floor(max_perplexity(n) * 10) / 10:g} (it must be below a third of the number of images).")


def layer_features(stats: Any) -> tuple[np.ndarray, str]:
    """The feature matrix t-SNE embeds from a pass's ``LayerStats``, and what it is.

    The flattened activations when the pass kept them, else the per-channel spatial means ``(M, C)``.
    """
    if stats.full is not None:
        return stats.full, f"all {stats.full.shape[1]:,} activations of {stats.layer}"
    return stats.channel_mean, (f"the {stats.channel_mean.shape[1]} channel means of {stats.layer} (the layer is "
                                "too large to keep in full for this many images)")


def subsample(m: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted positions ``(min(m, max_points),)`` of a seeded uniform subsample of ``m`` rows."""
    if m <= max_points:
        return np.arange(m)
    return np.sort(np.random.default_rng(seed).choice(m, size=max_points, replace=False))


def tsne(features: np.ndarray, pred: Predictions, perplexity: float = 30.0, seed: int = 0,
         max_points: int = MAX_POINTS, pca_dims: int = PCA_DIMS, max_iter: int = MAX_ITER) -> Embedding:
    """Embed the rows of ``features`` in 2-D.

    Parameters
    ----------
    features : float ``(M, D)`` activations of one layer, row ``i`` belonging to image ``pred.index[i]``.
    pred : the pass's predictions (labels and probabilities of the same M images).
    perplexity : effective number of neighbours; checked against the number of embedded points.
    seed : seeds the subsample, the PCA and t-SNE (same input, same picture).
    max_points : cap on the points embedded; more are subsampled uniformly (``Embedding.total`` says so).

    Returns
    -------
    Embedding
    """
    from sklearn.decomposition import PCA  # scikit-learn takes 2 s to import: not on the way to the first page
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if len(x) != len(pred.index):
        raise InvalidParameterError(f"{len(x)} feature rows for {len(pred.index)} images.")
    rows = subsample(len(x), max_points, seed)
    check_perplexity(perplexity, len(rows))
    start = time.perf_counter()
    x = x[rows]
    dims = min(pca_dims, x.shape[1], len(x))
    # One OpenMP thread: scikit-learn's Barnes-Hut loop spin-waits, and on a busy 2-core machine (TF threads,
    # other sessions) 2 threads took 13–30 s for 360 points where 1 thread took 2–3 s (measured).
    with threadpool_limits(1, user_api="openmp"):
        if x.shape[1] > dims:
            x = PCA(n_components=dims, random_state=seed).fit_transform(x)
        xy = TSNE(n_components=2, perplexity=float(perplexity), init="pca", learning_rate="auto",
                  max_iter=max_iter, random_state=seed).fit_transform(np.asarray(x, np.float64))
    seconds = time.perf_counter() - start
    labels = pred.labels[rows]
    predicted = pred.predicted[rows]
    names = np.asarray([*pred.class_names, "unlabelled"], dtype=object)
    frame = pd.DataFrame({
        "index": pred.index[rows], "x": xy[:, 0], "y": xy[:, 1], "true": labels, "predicted": predicted,
        "correct": (labels >= 0) & (labels == predicted), "true_name": names[labels],  # -1 → "unlabelled"
        "predicted_name": names[predicted], "confidence": pred.confidence[rows]})
    return Embedding(frame, len(features), int(x.shape[1]), float(perplexity), seconds)
