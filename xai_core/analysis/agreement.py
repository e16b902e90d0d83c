"""How much two explanation maps agree: rank correlation, top-k overlap, difference maps (no Streamlit here).

Maps from different models have different sizes (each model its own input); they are resized to one common
size first (:func:`resize_maps`). Every metric takes two maps ``(H, W)`` of the same size and compares either
their magnitudes (``by="abs"``: where is the relevance, whatever its sign) or their signed values
(``by="signed"``: positive evidence ranks above negative).

Ref. Adebayo et al. 2018, Sanity Checks for Saliency Maps, NeurIPS (Spearman rank correlation of maps, with and
without absolute values); Ghorbani et al. 2019, Interpretation of Neural Networks Is Fragile, AAAI (top-k
intersection of the most relevant pixels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd
from PIL import Image

from xai_core.data.dataset import Dataset, model_labels
from xai_core.errors import InvalidParameterError
from xai_core.viz.render import NormMode, normalize

RankBy = Literal["abs", "signed"]
RANK_BY: dict[RankBy, str] = {"abs": "magnitude |value|", "signed": "signed value"}
#: Metric ids (column ``metric`` of the agreement frame) → display names.
METRICS: dict[str, str] = {"spearman": "Spearman ρ", "iou": "top-k IoU"}
#: ``image`` value of the rows that average over the images.
MEAN = "mean over images"
#: What a NaN in the agreement frame means (shown next to the numbers).
NAN_MEANING = ("n/a: one of the two maps is constant (e.g. all zero), so it ranks no pixel above another and "
               "has no top pixels; the pair is left out of the mean.")
#: How ρ is computed, shown next to the numbers.
SPEARMAN_MEANING = ("Spearman ρ ranks only the pixels that carry relevance in either map (at least 5 % of its "
                    "largest value): a background both maps leave empty would otherwise make unrelated maps agree.")


# ---------------------------------------------------------------------------------------------- sizes
def display_size(sizes: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The common size ``(H, W)`` maps of several models are compared and shown at: the largest input (by area)."""
    if not sizes:
        raise ValueError("no sizes given")
    h, w = max(sizes, key=lambda s: (s[0] * s[1], s))
    return h, w


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of maps ``(..., H, W)`` to ``(..., h, w)`` (``size = (h, w)``), float32.

    Bilinear weights are non-negative and sum to one, so values stay within the input's range (no overshoot).
    """
    m = np.asarray(maps, dtype=np.float32)
    h, w = int(size[0]), int(size[1])
    if m.shape[-2:] == (h, w):
        return m.copy()
    flat = m.reshape(-1, *m.shape[-2:])
    out = np.stack([np.asarray(Image.fromarray(x).resize((w, h), Image.Resampling.BILINEAR)) for x in flat])
    return out.reshape(*m.shape[:-2], h, w).astype(np.float32)


# ---------------------------------------------------------------------------------------------- metrics
def _values(m: np.ndarray, by: RankBy) -> np.ndarray:
    if by not in RANK_BY:
        raise InvalidParameterError(f"Rank by must be one of {', '.join(RANK_BY)}; got {by!r}.")
    v = np.asarray(m, dtype=np.float64).reshape(-1)
    return np.abs(v) if by == "abs" else v


def _pair(a: np.ndarray, b: np.ndarray, by: RankBy) -> tuple[np.ndarray, np.ndarray]:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"maps must have the same shape to be compared; got {np.shape(a)} and {np.shape(b)} "
                         "(resize them with resize_maps first)")
    return _values(a, by), _values(b, by)


def rank(values: np.ndarray) -> np.ndarray:
    """1-based ranks of a 1-D array; tied values share the average of their ranks (``[5, 1, 5] → [2.5, 1, 2.5]``)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


#: A pixel carries relevance when its magnitude is at least this share of its map's largest magnitude.
RELEVANT_SHARE = 0.05


def relevant_pixels(a: np.ndarray, b: np.ndarray, share: float = RELEVANT_SHARE) -> np.ndarray:
    """bool ``(H·W,)``: the pixels that carry relevance in ``a`` or in ``b`` (magnitude ≥ ``share`` of that map's
    largest). A pixel that neither map cares about (a shared empty background) says nothing about agreement."""
    x = np.abs(np.asarray(a, dtype=np.float64).reshape(-1))
    y = np.abs(np.asarray(b, dtype=np.float64).reshape(-1))
    return (x >= share * x.max() if x.max() > 0 else np.zeros_like(x, bool)) | (
        y >= share * y.max() if y.max() > 0 else np.zeros_like(y, bool))


def spearman(a: np.ndarray, b: np.ndarray, by: RankBy = "abs", share: float | None = RELEVANT_SHARE) -> float:
    """Spearman rank correlation in [−1, 1] of two maps ``(H, W)`` over the pixels that carry relevance in either
    (:func:`relevant_pixels`; ``share=None`` ranks every pixel).

    Ranking every pixel lets a background both maps leave at zero dominate: two maps that agree on nothing but the
    empty background score ρ ≈ 0.8. Ties get average ranks. Fewer than three relevant pixels, or a constant map,
    give NaN (see :data:`NAN_MEANING`). Ref. Spearman 1904; Adebayo et al. 2018, Sanity Checks for Saliency Maps.
    """
    x, y = _pair(a, b, by)
    if share is not None:
        keep = relevant_pixels(a, b, share)
        if keep.sum() < 3:
            return math.nan
        x, y = x[keep], y[keep]
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(np.clip(rx @ ry / denom, -1.0, 1.0)) if denom > 0 else math.nan


def top_k_mask(m: np.ndarray, k_percent: float, by: RankBy = "abs") -> np.ndarray:
    """bool ``(H, W)``: the ``k_percent`` % most relevant pixels (at least one; ties broken by pixel order).

    ``by="abs"`` ranks by magnitude, ``by="signed"`` by value (strongest positive evidence first).
    """
    if not 0 < k_percent <= 100:
        raise InvalidParameterError(f"Top-k must be a percentage in (0, 100]; got {k_percent}.")
    v = _values(m, by)
    n = max(1, min(v.size, math.ceil(v.size * k_percent / 100.0 - 1e-9)))
    mask = np.zeros(v.size, dtype=bool)
    mask[np.argsort(-v, kind="stable")[:n]] = True
    return mask.reshape(np.shape(m))


def top_k_iou(a: np.ndarray, b: np.ndarray, k_percent: float = 10.0, by: RankBy = "abs") -> float:
    """Intersection over union of the top-``k_percent`` % pixels of two maps ``(H, W)``, in [0, 1].

    1 = the same pixels matter most in both maps; 0 = disjoint. NaN when either map is constant (its "top"
    pixels would be arbitrary). Ref. Ghorbani et al. 2019, Interpretation of Neural Networks Is Fragile, AAAI.
    """
    x, y = _pair(a, b, by)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    ma, mb = top_k_mask(a, k_percent, by), top_k_mask(b, k_percent, by)
    return float((ma & mb).sum() / (ma | mb).sum())


# ---------------------------------------------------------------------------------------------- frames
def agreement_frame(maps: Mapping[str, Sequence[np.ndarray | None]], image_names: Sequence[str],
                    k_percent: float = 10.0, by: RankBy = "abs") -> pd.DataFrame:
    """Long-form agreement of every pair of map sets, per image and averaged over images.

    Parameters
    ----------
    maps : name (model or method) → one map ``(H, W)`` per image (all the same size), or None where it failed.
    image_names : one name per image.
    k_percent, by : see :func:`top_k_iou` and :func:`spearman`.

    Returns
    -------
    DataFrame with columns ``image, a, b, metric, value, images``: one row per image, unordered pair
    (``a`` before ``b`` in ``maps`` order) and metric (:data:`METRICS`), then the mean over images
    (``image == MEAN``, NaN values left out, ``images`` = how many were averaged).
    """
    rows = []
    for a, b in combinations(list(maps), 2):
        for i, image in enumerate(image_names):
            ma, mb = maps[a][i], maps[b][i]
            if ma is None or mb is None:
                continue
            for metric, value in (("spearman", spearman(ma, mb, by)), ("iou", top_k_iou(ma, mb, k_percent, by))):
                rows.append({"image": image, "a": a, "b": b, "metric": metric, "value": value,
                             "images": int(not math.isnan(value))})
    per_image = pd.DataFrame(rows, columns=["image", "a", "b", "metric", "value", "images"])
    mean = (per_image.groupby(["a", "b", "metric"], sort=False)
            .agg(value=("value", "mean"), images=("images", "sum")).reset_index().assign(image=MEAN))
    return pd.concat([per_image, mean[per_image.columns]], ignore_index=True)


def matrix_frame(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The mean rows of :func:`agreement_frame` as a full symmetric matrix for a heatmap.

    Returns columns ``a, b, metric, metric_name, value, images, label``: both (a, b) and (b, a), and the
    diagonal (a map agrees with itself: 1). ``label`` is the value with two decimals, or "n/a".
    """
    mean = frame[frame["image"] == MEAN]
    flipped = mean.rename(columns={"a": "b", "b": "a"})
    n_images = int(frame.loc[frame["image"] != MEAN, "image"].nunique())
    diagonal = pd.DataFrame([{"a": n, "b": n, "metric": m, "value": 1.0, "images": n_images}
                             for n in names for m in METRICS])
    out = pd.concat([mean[["a", "b", "metric", "value", "images"]], flipped[["a", "b", "metric", "value", "images"]],
                     diagonal], ignore_index=True)
    out["metric_name"] = out["metric"].map(METRICS)
    out["label"] = [("n/a" if pd.isna(v) else f"{v:.2f}") for v in out["value"]]
    return out


def mean_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per pair with the mean of every metric: columns ``row, column`` and :data:`METRICS` names."""
    mean = frame[frame["image"] == MEAN]
    wide = mean.pivot(index=["a", "b"], columns="metric", values="value").reindex(columns=list(METRICS))
    wide = wide.loc[pd.MultiIndex.from_frame(mean[["a", "b"]].drop_duplicates())] if len(mean) else wide
    return wide.reset_index().rename(columns={"a": "row", "b": "column", **METRICS}).rename_axis(columns=None)


def pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair of ``names`` in order (the rows of the agreement frame)."""
    return list(combinations(names, 2))


def short_names(names: Sequence[str]) -> list[str]:
    """Display names without their parenthesised suffix (``"Digits CNN (plain)" → "Digits CNN"``) when that keeps
    them distinct; duplicates get ``" #2"``, ``" #3"`` …"""
    short = [n.split(" (")[0].strip() or n for n in names]
    if len(set(short)) < len(short):
        short = list(names)
    out: list[str] = []
    for n in short:
        out.append(n if n not in out else f"{n} #{sum(o.split(' #')[0] == n for o in out) + 1}")
    return out


# ---------------------------------------------------------------------------------------------- differences
def normalize_set(maps: Sequence[np.ndarray | None], signed: bool, mode: NormMode = "max-abs",
                  percentile: float = 99.5, shared: bool = False) -> list[np.ndarray | None]:
    """:func:`xai_core.viz.render.normalize` of one column of a grid (maps ``(H, W)`` or None where a map failed):
    each map on its own scale, or ``shared`` by all maps of the column."""
    ok = [(i, m) for i, m in enumerate(maps) if m is not None]
    out: list[np.ndarray | None] = [None] * len(maps)
    if ok:
        stacked = normalize(np.stack([m for _, m in ok]), signed, mode, percentile, shared=shared)
        for j, (i, _) in enumerate(ok):
            out[i] = stacked[j]
    return out


def difference_map(a: np.ndarray, b: np.ndarray, signed_a: bool = True, signed_b: bool = True,
                   mode: NormMode = "max-abs", percentile: float = 99.5) -> np.ndarray:
    """``a − b`` after normalising each map with :func:`xai_core.viz.render.normalize`, float32 ``(H, W)`` in [−1, 1].

    Two signed maps are compared as signed values (each in [−1, 1], difference halved); if either map is
    non-negative (Grad-CAM, occlusion), both are compared by magnitude in [0, 1]. Positive = ``a`` puts more
    relevance there, negative = ``b`` does. Show it with a diverging colour map.
    """
    if np.shape(a) != np.shape(b):
        raise ValueError(f"maps must have the same shape; got {np.shape(a)} and {np.shape(b)}")
    if signed_a and signed_b:
        return (normalize(a, True, mode, percentile) - normalize(b, True, mode, percentile)) / 2.0
    na = normalize(np.abs(a) if signed_a else a, False, mode, percentile)
    nb = normalize(np.abs(b) if signed_b else b, False, mode, percentile)
    return (na - nb).astype(np.float32)


# ---------------------------------------------------------------------------------------------- data sets
def evaluation_group(dataset: Dataset, class_lists: Mapping[str, Sequence[str]]) -> tuple[list[str], np.ndarray]:
    """The models that can be scored side by side on a labelled ``dataset``.

    Those whose classes match some of the data set's class folders (by name, see
    :func:`xai_core.data.dataset.model_labels`) and share the class list of the first such model, so their
    predictions are comparable. Returns their names and the labels ``(N,)`` in that class list (−1 = unknown).
    """
    matching = [n for n, c in class_lists.items() if (model_labels(dataset, c)[0] >= 0).any()]
    if not matching:
        return [], np.full(len(dataset), -1, np.int64)
    first = list(class_lists[matching[0]])
    group = [n for n in matching if list(class_lists[n]) == first]
    return group, model_labels(dataset, first)[0]


def accuracy_frame(predicted: Mapping[str, np.ndarray], labels: np.ndarray) -> pd.DataFrame:
    """Columns ``model, accuracy, correct, images`` from predicted classes ``(N,)`` per model (−1 = not run)."""
    labels = np.asarray(labels)
    rows = []
    for name, pred in predicted.items():
        pred = np.asarray(pred)
        ok = (pred >= 0) & (labels >= 0)
        correct = int((pred[ok] == labels[ok]).sum())
        rows.append({"model": name, "accuracy": correct / ok.sum() if ok.any() else math.nan, "correct": correct,
                     "images": int(ok.sum())})
    return pd.DataFrame(rows, columns=["model", "accuracy", "correct", "images"])


def disagreement_frame(predicted: Mapping[str, np.ndarray], labels: np.ndarray, ids: Sequence[str],
                       class_names: Sequence[str]) -> pd.DataFrame:
    """The images on which the models do not all predict the same class.

    Returns one row per such image: ``index`` (into the data set), ``id``, ``true`` class name, one column per
    model with its predicted class name, and ``wrong`` (how many models are wrong); most wrong first.
    """
    names = list(predicted)
    cols = ["index", "id", "true", *names, "wrong"]
    if len(names) < 2:
        return pd.DataFrame(columns=cols)
    preds = np.stack([np.asarray(predicted[n]) for n in names], axis=1)  # (N, M)
    valid = np.all(preds >= 0, axis=1)
    differ = valid & np.any(preds != preds[:, :1], axis=1)
    labels = np.asarray(labels)

    def cname(c: int) -> str:
        return str(class_names[c]) if 0 <= c < len(class_names) else "?"

    rows = [{"index": int(i), "id": str(ids[int(i)]), "true": cname(int(labels[i])),
             **{n: cname(int(preds[i, j])) for j, n in enumerate(names)},
             "wrong": int((preds[i] != labels[i]).sum())} for i in np.flatnonzero(differ)]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["wrong", "index"], ascending=[False, True], kind="stable").reset_index(drop=True)
