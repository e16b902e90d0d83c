"""Localisation against known object masks: the pointing game and the relevance mass inside the object.

The demo *shapes* set draws one object per image and keeps its exact pixel mask, so an explanation of the
object's class can be scored against the truth (the model might of course use the background; a low score is
then a finding about the model, not only the method).

* **Pointing game**: does the map's maximum fall on the object, allowing a tolerance margin around it
  (Zhang et al. use 15 pixels on ~224-pixel images; the default here scales that to the image side)?
  A hit scores 1, a miss 0. A flat map has no maximum and misses; when several pixels tie for the maximum, the
  point counts as a hit if at least half of them are on the (widened) object.
* **Relevance mass**: the share of the map's *positive* relevance that lies inside the object mask,
  ``Σ_{mask} R⁺ / Σ R⁺`` in [0, 1]; undefined (NaN) for a map without positive relevance.

Ref. Zhang et al. 2018, Top-down Neural Attention by Excitation Backprop, IJCV 126 (pointing game);
Arras, Osman & Samek 2022, CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural network
explanations, Information Fusion 81 (relevance mass accuracy).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt

from xai_core.errors import InvalidParameterError

#: How to read the two scores (shown beside the leaderboard on the Trust page and in its report).
HOW_TO_READ = (
    "On the demo shapes set every object's exact mask is known. **Pointing game**: is the map's maximum on the object "
    "(± a margin; Zhang et al. 2018)? **Relevance mass**: the share of positive relevance on the object (Arras et al. "
    "2022). Each image is explained for its true class.")
#: Zhang et al.'s pointing-game tolerance: 15 pixels on images of about 224 pixels.
ZHANG_MARGIN_FRACTION = 15 / 224


def default_margin(side: int) -> int:
    """Zhang et al.'s 15-pixel tolerance scaled to an image of ``side`` pixels (4 px for 64, 2 px for 32)."""
    return int(round(ZHANG_MARGIN_FRACTION * side))


def _check(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float64))
    masks = np.asarray(masks, dtype=bool)
    if maps.ndim == 4 and maps.shape[1] == 1:
        maps = maps[:, 0]
    if maps.shape != masks.shape or maps.ndim != 3:
        raise InvalidParameterError(f"Need one (H, W) map per object mask: maps {maps.shape}, masks {masks.shape}.")
    return maps, masks


def widen(masks: np.ndarray, margin: int) -> np.ndarray:
    """Masks ``(N, H, W)`` grown by ``margin`` pixels (Euclidean distance to the object ≤ margin)."""
    masks = np.asarray(masks, dtype=bool)
    if margin <= 0:
        return masks.copy()
    return np.stack([distance_transform_edt(~m) <= margin if m.any() else m for m in masks])


def pointing_game(maps: np.ndarray, masks: np.ndarray, margin: int | None = None) -> np.ndarray:
    """``(N,)`` 1.0 where the maximum of ``maps[i]`` is on object ``masks[i]`` (± ``margin`` pixels), else 0.0.

    Parameters
    ----------
    maps : ``(N, H, W)`` explanation maps (larger = more relevant).
    masks : bool ``(N, H, W)`` object masks.
    margin : tolerance in pixels; None = :func:`default_margin` of the image side.

    Ref. Zhang et al. 2018, IJCV 126.
    """
    maps, masks = _check(maps, masks)
    margin = default_margin(min(maps.shape[1:])) if margin is None else int(margin)
    target = widen(masks, margin)
    peak = maps.max(axis=(1, 2), keepdims=True)
    is_max = maps == peak
    flat = maps.min(axis=(1, 2)) == peak[:, 0, 0]
    share = (is_max & target).sum(axis=(1, 2)) / is_max.sum(axis=(1, 2))
    return np.where(~flat & (share >= 0.5), 1.0, 0.0)


def relevance_mass(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(N,)`` share of positive relevance inside the object: ``Σ_{mask} R⁺ / Σ R⁺``; NaN if ``Σ R⁺ = 0``.

    Ref. Arras, Osman & Samek 2022, Information Fusion 81.
    """
    maps, masks = _check(maps, masks)
    pos = np.maximum(maps, 0.0)
    total = pos.sum(axis=(1, 2))
    inside = (pos * masks).sum(axis=(1, 2))
    return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
