"""The built-in image gallery: photos that ship with our dependencies, plus demo data set images.

Everything here works offline: scikit-learn bundles two photos (a Chinese temple, a flower) and matplotlib
bundles a portrait of Grace Hopper.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from xai_core.data.demo import load_demo_set
from xai_core.data.images import load_image


@dataclass(frozen=True)
class GalleryImage:
    """One gallery entry: a stable ``key``, a display ``title`` and uint8 RGB ``pixels``."""

    key: str
    title: str
    pixels: np.ndarray
    label: str | None = None


def _photo_paths() -> dict[str, tuple[str, Path]]:
    import matplotlib
    import sklearn.datasets

    sk = Path(sklearn.datasets.__file__).parent / "images"
    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    return {
        "photo/grace_hopper": ("Grace Hopper (portrait)", mpl / "grace_hopper.jpg"),
        "photo/china": ("Temple in China", sk / "china.jpg"),
        "photo/flower": ("Flower", sk / "flower.jpg"),
    }


@lru_cache(maxsize=1)
def photos() -> tuple[GalleryImage, ...]:
    """The offline photos (missing files are skipped)."""
    out = []
    for key, (title, path) in _photo_paths().items():
        if path.exists():
            out.append(GalleryImage(key, title, load_image(path).pixels))
    return tuple(out)


def demo_images(dataset: str, per_class: int = 2) -> tuple[GalleryImage, ...]:
    """The first ``per_class`` test images of each class of a demo data set."""
    data = load_demo_set(dataset, "test")
    out = []
    for cls, name in enumerate(data.class_names):
        for i in np.flatnonzero(data.labels == cls)[:per_class]:
            pixels = data.images[i]
            rgb = np.repeat(pixels, 3, axis=-1) if pixels.shape[-1] == 1 else pixels
            out.append(GalleryImage(data.ids[i], f"{dataset}: {name} (#{i})", np.ascontiguousarray(rgb), label=name))
    return tuple(out)
