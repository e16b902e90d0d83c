"""Check a suspected shortcut: does the region a strategy's relevance sits on really carry the class score?

For a cluster of :mod:`xai_core.analysis.strategies`, the *hot region* is the hottest part of its mean map. Three
interventions measure what the model does with it (faithfulness evidence, not another picture):

* **masked** — the region of every image of the cluster is filled with the colour around it: the class score
  should fall if the model relies on it;
* **control** — a region of the same shape and size elsewhere (shifted by half the image) is filled instead: how
  much any such change costs;
* **pasted** — the region's pixels of the cluster's images are pasted into images of other classes: how often the
  model then calls them the class (the bias demo's tag flips most of them).

The rest of the class gets the same masking, so a drop that belongs to the cluster shows as a difference.

Ref. Lapuschkin et al. (2019), Nature Communications 10:1096 (removing / adding the watermark); Samek et al.
(2017), *Evaluating the visualization of what a deep neural network has learned*, IEEE TNNLS 28(11) (region
perturbation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import binary_dilation, uniform_filter

from xai_core.analysis.strategies import Strategies, cluster_means
from xai_core.data.dataset import Dataset
from xai_core.data.images import FitMode
from xai_core.errors import InvalidParameterError
from xai_core.models.bundle import ModelBundle

#: Default share of the image the hot region covers.
DEFAULT_AREA = 0.04
#: Most images per group (cluster, rest of the class, other classes) the check runs on.
MAX_IMAGES = 200
GROUPS = ("in the cluster", "rest of the class", "other classes")
CONDITIONS = ("original", "hot region masked", "same area elsewhere masked", "hot region pasted in")
#: How to read the check (the page's caption under it, the report's note).
HOW_TO_READ = ("Each line is one image: its class score (logit) as it is, with the hot region filled by the colour "
               "around it, and with a region of the same shape shifted by half the image filled instead (the "
               "control); other classes get the region pasted in from the cluster's images. A drop far larger than "
               "the control's, only in this cluster, is measured evidence that the model uses that region.")


def hot_region(mean_map: np.ndarray, area: float = DEFAULT_AREA) -> np.ndarray:
    """bool ``(h, w)``: the ``area`` share of pixels where a (3×3-smoothed) mean map's positive relevance is
    highest."""
    if not 0 < area < 1:
        raise InvalidParameterError(f"The region must cover between 0 and 100 % of the image; got {area:.0%}.")
    p = uniform_filter(np.maximum(np.asarray(mean_map, np.float64), 0), size=3, mode="constant")
    n = max(1, int(round(area * p.size)))
    if not np.any(p > 0):
        raise InvalidParameterError("This cluster's mean map has no positive relevance: there is no hot region.")
    flat = np.zeros(p.size, bool)
    flat[np.argsort(-p.ravel(), kind="stable")[:n]] = True
    return flat.reshape(p.shape) & (p > 0)


def to_size(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask resized to ``size`` (nearest neighbour: a map shrunk by an integer factor grows back exactly)."""
    h, w = mask.shape
    rows = np.minimum((np.arange(size[0]) * h) // size[0], h - 1)
    cols = np.minimum((np.arange(size[1]) * w) // size[1], w - 1)
    return mask[rows][:, cols]


def fill_region(images: np.ndarray, mask: np.ndarray, ring: int = 2) -> np.ndarray:
    """Copies of uint8 ``images`` ``(N, H, W, C)`` with ``mask`` filled by each image's mean colour in a ``ring``-
    pixel band around it (what the region's surroundings look like, not black: black is itself a feature)."""
    around = binary_dilation(mask, iterations=ring) & ~mask
    if not around.any():
        around = ~mask
    out = np.array(images, copy=True)
    fill = images[:, around].mean(axis=1)  # (N, C)
    out[:, mask] = np.round(fill[:, None, :]).astype(images.dtype)
    return out


def paste_region(targets: np.ndarray, sources: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copies of ``targets`` with the ``mask`` pixels of ``sources`` (cycled when there are fewer sources)."""
    out = np.array(targets, copy=True)
    src = sources[np.arange(len(targets)) % len(sources)]
    out[:, mask] = src[:, mask]
    return out


@dataclass(frozen=True, eq=False)
class ShortcutCheck:
    """What a cluster's hot region does to the class score.

    ``region`` bool ``(H, W)`` at the model's input size; ``frame`` one row per image and condition: ``index``,
    ``id``, ``group`` (:data:`GROUPS`), ``condition`` (:data:`CONDITIONS`), ``score`` (class logit),
    ``probability`` (of the class), ``is_class`` (predicted as the class), ``change`` (score minus the image's
    original score). ``k``: the number of clusters ``cluster`` is one of; at most ``max_images`` images per group,
    drawn with ``seed``.
    """

    class_name: str
    cluster: int
    area: float
    region: np.ndarray
    frame: pd.DataFrame
    k: int = 0
    seed: int = 0
    max_images: int = MAX_IMAGES

    def summary(self) -> pd.DataFrame:
        """Per group and condition: ``images``, mean ``score``, mean ``change``, mean ``probability``, share
        ``is_class``."""
        g = self.frame.groupby(["group", "condition"], sort=False)
        return g.agg(images=("index", "size"), score=("score", "mean"), change=("change", "mean"),
                     probability=("probability", "mean"), is_class=("is_class", "mean")).reset_index()

    def drop(self, group: str = GROUPS[0], condition: str = CONDITIONS[1]) -> float:
        """Mean change of the class score of ``group`` under ``condition`` (negative: the score fell)."""
        sel = (self.frame["group"] == group) & (self.frame["condition"] == condition)
        return float(self.frame.loc[sel, "change"].mean()) if sel.any() else float("nan")

    def per_image(self) -> pd.DataFrame:
        """One row per image and group: ``id``, ``group``, its ``original`` class score and the ``change`` under
        each intervention it had (a column per condition; empty where the group does not get it)."""
        wide = self.frame.pivot_table(index=["index", "id", "group"], columns="condition", values="score",
                                      sort=False).reset_index()
        out = wide[["id", "group", CONDITIONS[0]]].rename(columns={CONDITIONS[0]: "original"})
        for condition in CONDITIONS[1:]:
            if condition in wide:
                out[f"change, {condition}"] = wide[condition] - wide[CONDITIONS[0]]
        order = {g: i for i, g in enumerate(GROUPS)}
        return out.sort_values("group", key=lambda g: g.map(order), kind="stable").reset_index(drop=True)


def verdict(check: ShortcutCheck) -> str:
    """What the check measured, in one or two sentences (the page's and the report's)."""
    drop, control = check.drop(GROUPS[0], CONDITIONS[1]), check.drop(GROUPS[0], CONDITIONS[2])
    rest = check.drop(GROUPS[1], CONDITIONS[1])
    text = (f"Masking the hot region moves the class score of the cluster's images by **{drop:+.2f}** on average "
            f"(a region of the same size elsewhere: {control:+.2f}; the rest of the class: "
            f"{'n/a' if np.isnan(rest) else f'{rest:+.2f}'}).")
    pasted = check.frame[(check.frame["group"] == GROUPS[2])]
    if len(pasted):
        before = pasted[pasted["condition"] == CONDITIONS[0]]["is_class"].mean()
        after = pasted[pasted["condition"] == CONDITIONS[3]]["is_class"].mean()
        text += (f" Pasted into {len(pasted) // 2} images of other classes not called {check.class_name}, it raises "
                 "the share called "
                 f"**{check.class_name}** from {before:.0%} to **{after:.0%}**.")
    return text


def shortcut_check(bundle: ModelBundle, dataset: Dataset, s: Strategies, k: int, cluster: int,
                   others: np.ndarray | None = None, area: float = DEFAULT_AREA, fit: FitMode = "center-crop",
                   max_images: int = MAX_IMAGES, seed: int = 0) -> ShortcutCheck:
    """Mask the hot region of cluster ``cluster`` (of ``k``) in its images and in the rest of the class, mask a
    region of the same size elsewhere as a control, and paste the region into images of other classes.

    Parameters
    ----------
    others : data set positions of images of other classes to paste into (optional; at most ``max_images``,
        drawn with ``seed``).
    area : share of the image the hot region covers.
    """
    labels = s.clusters(k)
    if not 0 <= cluster < k:
        raise InvalidParameterError(f"Choose a cluster between 0 and {k - 1}; got {cluster}.")
    c = s.maps.class_index
    size = bundle.input_size
    region = to_size(hot_region(cluster_means(s, k)[cluster], area), size)
    control = np.roll(region, (size[0] // 2, size[1] // 2), axis=(0, 1))
    rng = np.random.default_rng(seed)

    def pick(positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, np.int64)
        return np.sort(rng.choice(positions, max_images, replace=False)) if len(positions) > max_images else positions

    def pixels(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        got = dataset.model_images(positions, size, bundle.channels, fit)
        keep = np.array([i for i in positions if int(i) in got], np.int64)
        return keep, (np.stack([got[int(i)] for i in keep]) if len(keep) else np.zeros((0, *size, bundle.channels),
                                                                                          np.uint8))

    rows: list[pd.DataFrame] = []

    def score(group: str, condition: str, idx: np.ndarray, images: np.ndarray, base: np.ndarray | None) -> np.ndarray:
        logits = bundle.logits(bundle.preprocess(images)) if len(images) else np.zeros((0, bundle.num_classes))
        probs = bundle.probabilities(logits)
        sc = logits[:, c]
        rows.append(pd.DataFrame({
            "index": idx, "id": [dataset.ids[i] for i in idx], "group": group, "condition": condition,
            "score": sc, "probability": probs[:, c], "is_class": logits.argmax(axis=1) == c,
            "change": sc - (sc if base is None else base)}))
        return sc

    members, member_images = pixels(pick(s.maps.index[labels == cluster]))
    for group, (idx, images) in zip(GROUPS[:2], [(members, member_images),
                                                 pixels(pick(s.maps.index[labels != cluster]))]):
        if not len(idx):
            continue
        base = score(group, CONDITIONS[0], idx, images, None)
        score(group, CONDITIONS[1], idx, fill_region(images, region), base)
        score(group, CONDITIONS[2], idx, fill_region(images, control), base)
    if others is not None and len(others) and len(members):
        idx, images = pixels(pick(others))
        if len(idx):
            base = score(GROUPS[2], CONDITIONS[0], idx, images, None)
            score(GROUPS[2], CONDITIONS[3], idx, paste_region(images, member_images, region), base)
    return ShortcutCheck(s.maps.class_name, int(cluster), float(area), region,
                         pd.concat(rows, ignore_index=True), int(k), int(seed), int(max_images))
