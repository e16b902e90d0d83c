"""Quality metrics at data-set scale: any metric, several methods, N sampled images, one long-form frame.

:func:`metric_frame` scores methods on given images; :func:`dataset_metrics` samples N images of a
:class:`~xai_core.data.dataset.Dataset` first (seeded, so the same N give the same images). The result has one
row per (method, image_id, metric) with the value, which :func:`leaderboard` summarises (mean ± sd, N) and
:func:`worst_images` ranks. :func:`localisation_leaderboard` is the demo shapes set's method leaderboard.

Ref. Petsiuk et al. 2018 (RISE, deletion/insertion); Zhang et al. 2018 (pointing game); Arras et al. 2022
(relevance mass); Sundararajan et al. 2017 and Bach et al. 2015 (axioms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xai_core.data.dataset import Dataset, demo_dataset, model_labels
from xai_core.data.images import FitMode, fit_to_model
from xai_core.errors import InvalidParameterError
from xai_core.methods import get_method
from xai_core.models.bundle import ModelBundle
from xai_core.quality.axioms import axiom_for, check_axiom
from xai_core.quality.base import Progress, as_images, class_maps, predicted_classes
from xai_core.quality.faithfulness import deletion_insertion
from xai_core.quality.localisation import pointing_game, relevance_mass

COLUMNS = ["method", "image_id", "metric", "value"]


@dataclass(frozen=True)
class Metric:
    """A per-image quality metric: its label, which direction is good, and whether it needs object masks."""

    id: str
    label: str
    higher_is_better: bool
    needs_masks: bool = False
    help: str = ""
    bounds: tuple[float, float] | None = (0.0, 1.0)  # the range every value lies in, if bounded


METRICS: dict[str, Metric] = {m.id: m for m in [
    Metric("pointing_game", "Pointing game (hit rate)", True, True,
           "1 when the map's maximum is on the object (± a small margin), else 0 (Zhang et al. 2018)."),
    Metric("relevance_mass", "Relevance mass in the object", True, True,
           "Share of the positive relevance inside the object mask (Arras et al. 2022)."),
    Metric("deletion_auc", "Deletion AUC", False, False,
           "Class probability while the most relevant pixels are removed: low = faithful (Petsiuk et al. 2018)."),
    Metric("insertion_auc", "Insertion AUC", True, False,
           "Class probability while the most relevant pixels are revealed: high = faithful (Petsiuk et al. 2018)."),
    Metric("deletion_gain", "Deletion AUC: random − map", True, False,
           "How much faster the map's order destroys the score than a random order; > 0 beats random.", (-1.0, 1.0)),
    Metric("insertion_gain", "Insertion AUC: map − random", True, False,
           "How much faster the map's order restores the score than a random order; > 0 beats random.", (-1.0, 1.0)),
    Metric("axiom_error", "Axiom relative error", False, False,
           "|Σ map − expected| / |expected| for methods with an axiom (IG, DeepLIFT, LRP-0/ε); others skipped.", None),
]}


def get_metric(metric_id: str) -> Metric:
    try:
        return METRICS[metric_id]
    except KeyError:
        raise InvalidParameterError(f"Unknown metric '{metric_id}'. Choose one of: {', '.join(METRICS)}.") from None


def _offset(progress: Progress, base: int, total: int) -> Progress:
    """``progress`` for one method's maps: its ``done`` counts from ``base`` of the overall ``total``."""
    return lambda d, t: progress(base + d, total)


def metric_frame(
    bundle: ModelBundle,
    method_ids: Sequence[str],
    images: np.ndarray,
    metrics: Sequence[str],
    *,
    masks: np.ndarray | None = None,
    targets: Sequence[int] | np.ndarray | None = None,
    image_ids: Sequence[str] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    steps: int = 20,
    margin: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Score ``method_ids`` on ``images`` with ``metrics``: long form ``method, image_id, metric, value``.

    Parameters
    ----------
    images : raw pixels ``(N, H, W, C)`` at the model's input size; ``masks`` bool ``(N, H, W)`` for the
        localisation metrics.
    targets : ``(N,)`` explained class per image (default: the predicted class).
    params : per-method parameters ``{method_id: {...}}`` (defaults otherwise).
    steps, seed : deletion/insertion steps and random-order seed; ``margin`` : pointing-game tolerance.
    progress : ``progress(done, total)`` with total = 2 × methods × images (maps, then metrics).
    """
    images = as_images(bundle, images)
    metric_specs = [get_metric(m) for m in dict.fromkeys(metrics)]
    if not metric_specs or not method_ids:
        raise InvalidParameterError("Choose at least one method and one metric.")
    if any(m.needs_masks for m in metric_specs) and masks is None:
        raise InvalidParameterError("Pointing game and relevance mass need object masks: use the demo shapes set.")
    for mid in method_ids:
        get_method(mid)
    n = len(images)
    targets = predicted_classes(bundle, images) if targets is None else np.asarray(targets, np.int64)
    ids = list(image_ids) if image_ids is not None else [f"image {i}" for i in range(n)]
    wanted = {m.id for m in metric_specs}
    curves = [c for c in ("deletion", "insertion") if wanted & {f"{c}_auc", f"{c}_gain"}]
    total, done = 2 * len(method_ids) * n, 0
    parts = []
    for mid in method_ids:
        p = (params or {}).get(mid)
        maps = class_maps(bundle, mid, images, targets, p,
                          progress=_offset(progress, done, total) if progress else None)
        done += n
        values: dict[str, np.ndarray] = {}
        if "pointing_game" in wanted:
            assert masks is not None  # checked above: the localisation metrics need masks
            values["pointing_game"] = pointing_game(maps, masks, margin)
        if "relevance_mass" in wanted:
            assert masks is not None  # checked above: the localisation metrics need masks
            values["relevance_mass"] = relevance_mass(maps, masks)
        if curves:
            c = deletion_insertion(bundle, images, maps, targets, steps=steps, curves=curves, seed=seed,
                                   compare_random=bool(wanted & {"deletion_gain", "insertion_gain"}),
                                   image_ids=ids)
            for cv in curves:
                if f"{cv}_auc" in wanted:
                    values[f"{cv}_auc"] = c.auc(cv)
                if f"{cv}_gain" in wanted:
                    gain = c.auc(cv, "random") - c.auc(cv) if cv == "deletion" else c.auc(cv) - c.auc(cv, "random")
                    values[f"{cv}_gain"] = gain
        if "axiom_error" in wanted and axiom_for(mid, p, bundle) is not None:
            values["axiom_error"] = check_axiom(bundle, mid, images, maps, targets, p, ids)["rel_error"].to_numpy()
        for metric, v in values.items():
            parts.append(pd.DataFrame({"method": mid, "image_id": ids, "metric": metric, "value": v}))
        done += n
        if progress:
            progress(done, total)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def sample_indices(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct indices of ``range(n_total)``, seeded and sorted (all of them if ``n >= n_total``)."""
    if n_total < 1:
        raise InvalidParameterError("The data set is empty.")
    if n < 1:
        raise InvalidParameterError(f"Sample size must be at least 1; got {n}.")
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def load_sample(dataset: Dataset, bundle: ModelBundle, n: int, seed: int = 0, fit: FitMode = "center-crop"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(indices, images, masks)``: ``n`` sampled images of ``dataset`` fitted to ``bundle``'s input (unreadable
    files dropped), with their object masks fitted the same way (None when the set has none)."""
    h, w, c = bundle.input_shape
    chosen = sample_indices(len(dataset), n, seed)
    got = list(dataset.batches((h, w), c, fit, batch_size=64, indices=chosen))
    if not got:
        raise InvalidParameterError(f"None of the {len(chosen)} sampled images of {dataset.name} could be read.")
    indices = np.concatenate([b.indices for b in got])
    images = np.concatenate([b.images for b in got]).astype(np.float32)
    masks = None
    if dataset.masks is not None:
        raw = dataset.masks[indices]
        if raw.shape[1:] == (h, w):
            masks = raw.astype(bool)
        else:
            masks = np.stack([fit_to_model(m.astype(np.uint8) * 255, (h, w), 1, fit)[..., 0] > 127 for m in raw])
    return indices, images, masks


def dataset_metrics(bundle: ModelBundle, dataset: Dataset, method_ids: Sequence[str], metrics: Sequence[str], *,
                    n: int = 32, seed: int = 0, fit: FitMode = "center-crop", target: str = "predicted",
                    params: dict[str, dict[str, Any]] | None = None, steps: int = 20, margin: int | None = None,
                    progress: Progress | None = None) -> pd.DataFrame:
    """:func:`metric_frame` over ``n`` images sampled from ``dataset`` (ids = the data set's image ids).

    ``target``: ``"predicted"`` explains each image's predicted class; ``"label"`` its labelled class (mapped
    onto the model's classes by name; images without a matching label fall back to the prediction).
    """
    if target not in ("predicted", "label"):
        raise InvalidParameterError(f"Target must be 'predicted' or 'label'; got '{target}'.")
    indices, images, masks = load_sample(dataset, bundle, n, seed, fit)
    targets = predicted_classes(bundle, images)
    if target == "label":
        labels = model_labels(dataset, bundle.class_names)[0][indices]
        targets = np.where(labels >= 0, labels, targets)
    return metric_frame(bundle, method_ids, images, metrics, masks=masks, targets=targets,
                        image_ids=[dataset.ids[i] for i in indices], params=params, steps=steps, margin=margin,
                        seed=seed, progress=progress)


def localisation_leaderboard(bundle: ModelBundle, method_ids: Sequence[str], *, n: int = 24, seed: int = 0,
                             margin: int | None = None, progress: Progress | None = None) -> pd.DataFrame:
    """Pointing game and relevance mass of ``method_ids`` on ``n`` images of the demo shapes test set, each
    explained for its true class: the long-form frame (summarise it with :func:`leaderboard`)."""
    shapes = demo_dataset("shapes", "test")
    if bundle.input_shape[2] != 3 or list(bundle.class_names) != list(shapes.class_names):
        raise InvalidParameterError(
            f"The localisation leaderboard needs a model trained on the demo shapes ({', '.join(shapes.class_names)})"
            f"; '{bundle.name}' has other classes. Choose a shapes model.")
    return dataset_metrics(bundle, shapes, method_ids, ["pointing_game", "relevance_mass"], n=n, seed=seed,
                           target="label", margin=margin, progress=progress)


def leaderboard(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per method for ``metric``: ``method, label, metric, mean, sd, n`` (NaN values left out), best first."""
    spec = get_metric(metric)
    rows = frame[(frame["metric"] == metric) & frame["value"].notna()]
    board = rows.groupby("method", sort=False)["value"].agg(mean="mean", sd="std", n="count").reset_index()
    board["sd"] = board["sd"].fillna(0.0)
    board.insert(1, "label", [get_method(m).label for m in board["method"]])
    board.insert(2, "metric", metric)
    return board.sort_values("mean", ascending=not spec.higher_is_better, kind="stable").reset_index(drop=True)


def worst_images(frame: pd.DataFrame, method: str, metric: str, k: int = 8) -> pd.DataFrame:
    """The ``k`` images where ``method`` scores worst on ``metric``: ``image_id, value``, worst first."""
    spec = get_metric(metric)
    rows = frame[(frame["method"] == method) & (frame["metric"] == metric) & frame["value"].notna()]
    rows = rows.sort_values("value", ascending=spec.higher_is_better, kind="stable")
    return rows[["image_id", "value"]].head(int(k)).reset_index(drop=True)
