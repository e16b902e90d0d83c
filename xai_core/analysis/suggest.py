"""Statistics that point at the images worth explaining: activation histograms and multi-model consensus.

Inspired by iNNvestigate-GUI's "suggest" view: with one model, the distribution of a layer's (or one neuron's)
activation over a data set shows typical and atypical inputs; with several models, images on which the models
disagree, or are confidently wrong, are the ones an explanation is most likely to teach something about.

Every frame here has one row per image (column ``index`` = position in the data set); the charts drawn from them
are in :mod:`xai_core.viz.suggest_charts`.

Ref. Alber et al. (2019), *iNNvestigate neural networks!*, JMLR 20(93).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from xai_core.analysis.dataset_pass import DatasetPass, LayerStats
from xai_core.errors import InvalidParameterError

DISAGREE = "disagree"


# ------------------------------------------------------------------------------------------- histograms
def histogram_frame(values: np.ndarray, index: np.ndarray, bins: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bin one value per image.

    Parameters
    ----------
    values : ``(M,)`` the plotted value of each image (non-finite values are dropped).
    index : ``(M,)`` the images' data set positions.
    bins : number of equal-width bins between the smallest and largest value.

    Returns
    -------
    bins_df : one row per bin: ``bin`` (0-based), ``start``, ``end``, ``count``.
    images_df : one row per image: ``index``, ``value``, ``bin``; each image is in exactly one bin (the last bin
        is closed on the right, as in ``numpy.histogram``).
    """
    values = np.asarray(values, dtype=np.float64)
    index = np.asarray(index)
    ok = np.isfinite(values)
    values, index = values[ok], index[ok]
    if values.size == 0:
        raise InvalidParameterError("There are no finite values to plot.")
    bins = int(max(1, bins))
    counts, edges = np.histogram(values, bins=bins)
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
    bins_df = pd.DataFrame({"bin": np.arange(bins), "start": edges[:-1], "end": edges[1:], "count": counts})
    images_df = pd.DataFrame({"index": index.astype(np.int64), "value": values, "bin": which.astype(np.int64)})
    return bins_df, images_df


def images_in_bins(images_df: pd.DataFrame, bins: Sequence[int]) -> pd.DataFrame:
    """Rows of ``images_df`` in the given bins, highest value first."""
    return images_df[images_df["bin"].isin(list(bins))].sort_values("value", ascending=False, kind="stable")


# -------------------------------------------------------------------------------------- several models
def consensus_frame(probs: Sequence[np.ndarray], index: np.ndarray, class_names: Sequence[str],
                    labels: np.ndarray | None = None) -> pd.DataFrame:
    """Confidence and consistency of several models on the same images.

    Parameters
    ----------
    probs : one ``(M, K)`` probability matrix per model, rows aligned with ``index``; all models share the
        same ``K`` classes.
    index : ``(M,)`` data set positions of the rows.
    class_names : the ``K`` shared class names.
    labels : ``(M,)`` ground-truth class per row, ``-1`` where unknown (optional).

    Returns
    -------
    pd.DataFrame
        One row per image: ``index``, ``confidence`` (mean over models of each model's top probability),
        ``consistency`` (share of models that vote for the most voted top class), ``vote`` (that class, ties
        broken by mean probability), ``agreed`` (its name when all models agree, else :data:`DISAGREE`),
        ``mean_top`` (class of the highest mean probability), ``predictions`` (each model's top class,
        joined), and when labels are known ``label``, ``true_class``, ``correct`` (all models right),
        ``wrong`` (share of models wrong) and ``distance`` (Euclidean distance between the models' mean score
        vector and the one-hot true class; NaN where the label is unknown).
    """
    arrays = [np.asarray(p, dtype=np.float64) for p in probs]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2 or arrays[0].shape[1] != len(class_names):
        raise InvalidParameterError("All models must score the same classes to be compared.")
    stack = np.stack(arrays)  # (models, M, K)
    n_models, m, k = stack.shape
    tops = stack.argmax(axis=2)  # (models, M)
    votes = np.zeros((m, k))
    np.add.at(votes, (np.arange(m)[None, :].repeat(n_models, 0), tops), 1.0)
    mean = stack.mean(axis=0)
    vote = np.argmax(votes + 1e-6 * mean, axis=1)  # most votes; ties go to the higher mean probability
    consistency = votes[np.arange(m), vote] / n_models
    names = np.asarray(class_names, dtype=object)
    df = pd.DataFrame({
        "index": np.asarray(index, dtype=np.int64),
        "confidence": stack.max(axis=2).mean(axis=0),
        "consistency": consistency,
        "vote": vote,
        "agreed": np.where(consistency == 1.0, names[vote], DISAGREE),
        "mean_top": mean.argmax(axis=1),
        "predictions": [" · ".join(names[tops[:, i]]) for i in range(m)],
    })
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        known = labels >= 0
        onehot = np.zeros((m, k))
        onehot[np.flatnonzero(known), labels[known]] = 1.0
        dist = np.linalg.norm(mean - onehot, axis=1)
        df["label"] = labels
        df["true_class"] = np.where(known, names[np.clip(labels, 0, k - 1)], "")
        wrong = (tops != labels[None, :]).mean(axis=0)
        df["wrong"] = np.where(known, wrong, np.nan)
        df["correct"] = known & (wrong == 0)
        df["distance"] = np.where(known, dist, np.nan)
    return df


# --------------------------------------------------------------------------------------------- rankings
def rankings(df: pd.DataFrame, n: int = 10) -> dict[str, pd.DataFrame]:
    """The images most worth a look, ``n`` per list.

    * ``most disagreed`` — lowest consistency, then lowest confidence (only images where models disagree);
    * ``confidently wrong`` — wrong by every model, highest confidence first (needs labels);
    * ``least confident`` — lowest mean top score.
    """
    out = {
        "most disagreed": df[df["consistency"] < 1].sort_values(["consistency", "confidence"], kind="stable").head(n),
        "least confident": df.sort_values("confidence", kind="stable").head(n),
    }
    if "wrong" in df:
        wrong = df[df["wrong"] == 1.0]
        out["confidently wrong"] = wrong.sort_values("confidence", ascending=False, kind="stable").head(n)
    return out


# ------------------------------------------------------------------------------------ values from a pass
NEURON_STATS = {"max": "max over positions", "mean": "mean over positions", "unit": "one position (row, column)"}


def neuron_values(stats: LayerStats, channel: int, how: str = "max",
                  position: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """One neuron's value per image, and the flat neuron index to explain for each image.

    For a dense layer ``channel`` is the unit. For a spatial layer ``how`` picks the channel's maximum over
    positions (the neuron explained is the channel at its strongest position in that image), its mean (same
    neuron), or the unit at ``position`` (row, column), which needs the layer's full activations.

    Returns
    -------
    values : float ``(M,)``; neurons : int ``(M,)`` flat indices into the layer's flattened output.
    """
    c = int(channel)
    if not 0 <= c < stats.channels:
        raise InvalidParameterError(f"Layer '{stats.layer}' has channels 0–{stats.channels - 1}; got {c}.")
    m = len(stats.mean)
    if not stats.spatial:
        return stats.channel_mean[:, c], np.full(m, c, dtype=np.int64)
    strongest = stats.channel_argmax[:, c].astype(np.int64) * stats.channels + c
    if how == "max":
        return stats.channel_max[:, c], strongest
    if how == "mean":
        return stats.channel_mean[:, c], strongest
    if how != "unit":
        raise InvalidParameterError(f"Unknown statistic '{how}'; choose one of {', '.join(NEURON_STATS)}.")
    h, w = stats.shape[0], stats.shape[1] if len(stats.shape) > 2 else 1
    r, col = int(position[0]), int(position[1])
    if not (0 <= r < h and 0 <= col < w):
        raise InvalidParameterError(f"Position ({r}, {col}) is outside the layer's {h}×{w} grid.")
    if stats.full is None:
        raise InvalidParameterError(
            f"Layer '{stats.layer}' is too large to keep every unit for {m:,} images; use the channel's maximum "
            "or mean over positions, or a smaller data set.")
    flat = (r * w + col) * stats.channels + c
    return stats.full[:, flat], np.full(m, flat, dtype=np.int64)


def image_frame(result: DatasetPass, ids: Sequence[str], labels: np.ndarray,
                class_names: Sequence[str]) -> pd.DataFrame:
    """One row per image of a pass: ``index``, ``id``, ``label`` (name or ""), ``prediction``, ``confidence``."""
    names = np.asarray(class_names, dtype=object)
    lab = np.asarray(labels, dtype=np.int64)[result.index]
    return pd.DataFrame({
        "index": result.index,
        "id": [ids[i] for i in result.index],
        "label": np.where(lab >= 0, names[np.clip(lab, 0, len(names) - 1)], ""),
        "prediction": names[result.predicted],
        "confidence": result.confidence,
    })


def align_passes(passes: Sequence[DatasetPass]) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(index, probs)``: the data set positions every pass read (sorted), and each pass's probabilities on
    exactly those rows (an image unreadable for one model is left out for all)."""
    if not passes:
        return np.zeros(0, np.int64), []
    common = np.array(sorted(set.intersection(*(set(p.index.tolist()) for p in passes))), dtype=np.int64)
    return common, [p.probs[np.searchsorted(p.index, common)] for p in passes]
