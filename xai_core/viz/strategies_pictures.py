"""Pictures of a class's strategies (SpRAy), drawn once for the Suggest page and its report: each cluster's mean map
over its mean image, and the shortcut check's hot region on one image of the cluster. At the model's input size
(the page enlarges them for the screen; the report lets the browser do it, so the file holds the exact pixels)."""

from __future__ import annotations

import numpy as np

from xai_core.analysis.shortcut import ShortcutCheck
from xai_core.analysis.strategies import Strategies, cluster_means
from xai_core.data.dataset import Dataset
from xai_core.data.images import FitMode, to_display
from xai_core.models.bundle import ModelBundle
from xai_core.viz.render import normalize, overlay

#: A cluster's mean image is the mean of at most this many of its images (in data set order).
MEAN_OF = 64
#: The hot region is tinted with this colour (60 %) over the image.
REGION_COLOUR = np.array([214, 39, 40])


def cluster_pictures(bundle: ModelBundle, dataset: Dataset, s: Strategies, k: int,
                     fit: FitMode = "center-crop") -> list[np.ndarray]:
    """Each of the ``k`` clusters' mean map (normalised by its largest magnitude) over the mean of (up to
    :data:`MEAN_OF` of) its images: uint8 RGB ``(H, W, 3)`` at the model's input size, one per cluster."""
    labels, out = s.clusters(k), []
    means = cluster_means(s, k)
    for c in range(k):
        members = s.maps.index[labels == c][:MEAN_OF]
        images = dataset.model_images(members, bundle.input_size, bundle.channels, fit)
        mean_img = to_display(np.mean([images[int(i)] for i in members if int(i) in images], axis=0))
        h, w = mean_img.shape[:2]
        big = np.kron(means[c], np.ones((h // means.shape[1], w // means.shape[2]), np.float32))
        out.append(overlay(mean_img, normalize(big[None], s.maps.signed)[0], s.maps.signed))
    return out


def region_picture(bundle: ModelBundle, dataset: Dataset, s: Strategies, check: ShortcutCheck,
                   fit: FitMode = "center-crop") -> np.ndarray | None:
    """The check's hot region tinted red on the first image of its cluster (uint8 RGB at the model's input size),
    or None when that image cannot be read."""
    first = s.maps.index[s.clusters(check.k) == check.cluster][:1]
    if not len(first):
        return None
    image = dataset.model_images(first, bundle.input_size, bundle.channels, fit).get(int(first[0]))
    if image is None:
        return None
    shown = to_display(image).copy()
    shown[check.region] = (0.4 * shown[check.region] + 0.6 * REGION_COLOUR).astype(np.uint8)
    return shown
