"""Accuracy, per-class precision / recall / F1, each image's scores and the confusion matrix of one pass.

Everything is computed from :class:`Predictions` — the dataset indices, true labels (in the model's classes)
and probabilities of one batched pass — so every number on the page can be traced back to its images.

Ref. Pedregosa et al. 2011, Scikit-learn: Machine Learning in Python, JMLR 12:2825–2830
(``precision_recall_fscore_support``, ``confusion_matrix``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xai_core.analysis.dataset_pass import DatasetPass, LayerStats
from xai_core.data.dataset import Dataset, model_labels
from xai_core.errors import DatasetError


@dataclass(frozen=True, eq=False)
class Predictions:
    """What a model said about each image of a data set.

    Attributes
    ----------
    index : int64 ``(M,)`` dataset indices of the images (a pass may drop unreadable files).
    labels : int64 ``(M,)`` true class of each image in the *model's* classes, -1 when unknown.
    probs : float ``(M, K)`` class probabilities.
    class_names : the model's K class names.
    ids : optional ``M`` image ids (file names), for tables.
    """

    index: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    class_names: tuple[str, ...]
    ids: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        m = len(self.index)
        if self.labels.shape != (m,) or self.probs.ndim != 2 or len(self.probs) != m:
            raise DatasetError(f"Predictions need one label and one probability row per image; got index {m}, "
                               f"labels {self.labels.shape}, probs {self.probs.shape}.")
        if self.probs.shape[1] != len(self.class_names):
            raise DatasetError(f"{self.probs.shape[1]} probability columns but {len(self.class_names)} class names.")

    @classmethod
    def from_arrays(cls, index: Any, labels: Any, probs: Any, class_names: Sequence[str],
                    ids: Sequence[str] | None = None) -> Predictions:
        return cls(np.asarray(index, np.int64), np.asarray(labels, np.int64), np.asarray(probs, np.float64),
                   tuple(class_names), tuple(ids) if ids is not None else None)

    @classmethod
    def from_pass(cls, dpass: Any, labels: np.ndarray, class_names: Sequence[str],
                  ids: Sequence[str] | None = None) -> Predictions:
        """From a ``DatasetPass`` and the data set's labels ``(N,)`` in the model's classes (``model_labels``);
        ``ids`` are the data set's ``N`` image ids."""
        index = np.asarray(dpass.index, np.int64)
        return cls.from_arrays(index, np.asarray(labels)[index], dpass.probs, class_names,
                               [ids[i] for i in index] if ids is not None else None)

    @property
    def predicted(self) -> np.ndarray:
        """int64 ``(M,)`` class with the highest probability."""
        return self.probs.argmax(axis=1).astype(np.int64)

    @property
    def confidence(self) -> np.ndarray:
        """float ``(M,)`` probability of the predicted class."""
        return self.probs.max(axis=1)

    @property
    def labeled(self) -> np.ndarray:
        """bool ``(M,)``: the image has a known label in the model's classes."""
        return self.labels >= 0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _require_labels(pred: Predictions) -> np.ndarray:
    keep = pred.labeled
    if not keep.any():
        raise DatasetError("None of the images has a label that matches one of the model's classes, so accuracy "
                           "and the confusion matrix cannot be computed. Use class sub-folders named like the "
                           "model's classes.")
    return keep


def overall_accuracy(pred: Predictions) -> float:
    """Share of labelled images whose predicted class is their true class."""
    keep = _require_labels(pred)
    return float((pred.predicted[keep] == pred.labels[keep]).mean())


def per_class_table(pred: Predictions) -> pd.DataFrame:
    """Precision, recall, F1 and support of every model class, over the labelled images.

    Returns
    -------
    DataFrame with columns class_index, class, precision, recall, f1, support (one row per class, K rows);
    classes never predicted nor present get 0 scores (scikit-learn's ``zero_division=0``).
    """
    keep = _require_labels(pred)
    k = pred.num_classes
    from sklearn.metrics import precision_recall_fscore_support  # 2 s to import: not on the way to the first page

    p, r, f, s = precision_recall_fscore_support(pred.labels[keep], pred.predicted[keep], labels=np.arange(k),
                                                 zero_division=0)
    return pd.DataFrame({"class_index": np.arange(k), "class": list(pred.class_names), "precision": p,
                         "recall": r, "f1": f, "support": s.astype(np.int64)})


def scores_frame(pred: Predictions, class_columns: bool = True) -> pd.DataFrame:
    """Each image's prediction: one row per image.

    Columns: index (dataset index), id, true, predicted (class names, "" when unknown), confidence (probability
    of the predicted class), true_probability (probability of the true class, NaN when unknown), correct
    (bool, False when unknown), then (``class_columns``) one probability column ``p(<class>)`` per class.
    """
    names = np.asarray(pred.class_names, dtype=object)
    lab = pred.labels
    known = lab >= 0
    true_p = np.where(known, pred.probs[np.arange(len(lab)), np.maximum(lab, 0)], np.nan)
    df = pd.DataFrame({
        "index": pred.index,
        "id": list(pred.ids) if pred.ids is not None else [str(i) for i in pred.index],
        "true": np.where(known, names[np.maximum(lab, 0)], ""),
        "predicted": names[pred.predicted],
        "confidence": pred.confidence,
        "true_probability": true_p,
        "correct": known & (pred.predicted == lab),
    })
    if not class_columns:
        return df
    probs = pd.DataFrame(pred.probs, columns=[f"p({c})" for c in pred.class_names])
    return pd.concat([df, probs], axis=1)


def confusion_frame(pred: Predictions, present_only: bool = False) -> pd.DataFrame:
    """The confusion matrix in long form: one row per (true, predicted) cell, K × K rows.

    Columns: true_index, predicted_index, true, predicted (class names), count, share (count divided by the
    number of images of the true class — a row-normalised matrix whose diagonal is the per-class recall).
    ``present_only`` keeps only the classes that occur as a label or a prediction (for 1,000-class models).
    """
    keep = _require_labels(pred)
    classes = np.arange(pred.num_classes)
    if present_only:
        classes = np.union1d(pred.labels[keep], pred.predicted[keep])
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(pred.labels[keep], pred.predicted[keep], labels=classes)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, np.float64), where=rows > 0)
    t, p = (a.ravel() for a in np.meshgrid(classes, classes, indexing="ij"))
    names = np.asarray(pred.class_names, dtype=object)
    return pd.DataFrame({"true_index": t, "predicted_index": p, "true": names[t], "predicted": names[p],
                         "count": cm.ravel().astype(np.int64), "share": share.ravel()})


def cell_indices(pred: Predictions, true: int, predicted: int) -> np.ndarray:
    """Dataset indices of the images in confusion cell (``true``, ``predicted``), most confident first.

    Confidence is the probability of the predicted class; ties keep dataset order (stable sort).
    """
    inside = np.flatnonzero((pred.labels == true) & (pred.predicted == predicted))
    order = np.argsort(-pred.confidence[inside], kind="stable")
    return pred.index[inside[order]]


def selected_cell_indices(pred: Predictions, event: Any) -> tuple[tuple[int, int] | None, np.ndarray]:
    """A click on :func:`xai_core.viz.explore_charts.confusion_chart` → ``((true, predicted), dataset indices)``.

    Returns ``(None, empty)`` when no cell is selected. Indices are sorted by confidence as in
    :func:`cell_indices`.
    """
    from xai_core.viz.explore_charts import selected_cell

    cell = selected_cell(event)
    if cell is None:
        return None, np.zeros(0, np.int64)
    return cell, cell_indices(pred, *cell)


@dataclass
class PassView:
    """What the Explorer's pass-fed views need from one model's pass over a data set, computed once: the
    predictions against the labels, one layer's statistics, and each image's scores."""

    result: DatasetPass
    pred: Predictions
    stats: LayerStats
    scores: pd.DataFrame  # :func:`scores_frame`, one row per readable image
    unmatched: list[str]  # class folders that match no model class

    @property
    def labelled(self) -> bool:
        return bool(self.pred.labeled.any())

    def describe(self, indices: Sequence[int] | np.ndarray) -> list[str]:
        """One caption per data set image: id, true class (if known), prediction and confidence."""
        rows = self.scores.set_index("index").loc[[int(i) for i in indices]]
        return [f"{r.id}  \n{'true ' + str(r.true) + ' · ' if r.true else ''}predicted {r.predicted} "
                f"({float(r.confidence):.0%})" for r in rows.itertuples()]


def pass_view(result: DatasetPass, dataset: Dataset, class_names: Sequence[str], layer: str) -> PassView:
    """The :class:`PassView` of ``result`` (a pass that kept ``layer``) over ``dataset``."""
    labels, unmatched = model_labels(dataset, class_names)
    pred = Predictions.from_pass(result, labels, class_names, dataset.ids)
    return PassView(result, pred, result.layers[layer], scores_frame(pred, class_columns=pred.num_classes <= 20),
                    list(unmatched))
