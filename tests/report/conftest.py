"""Reports built once per session from real maps of small models, in the shapes the pages hold them
(``ui.explanations.Column`` / ``Cell``, ``ui.widgets.display.Display``)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import make_bundle

from ui.explanations import Cell, Column
from ui.widgets.display import Display
from xai_core.data.gallery import photos
from xai_core.data.images import fit_to_model
from xai_core.data.inputs import ImageItem
from xai_core.methods import Target, explain, get_method
from xai_core.models.bundle import ModelBundle

STYLE = Display("heatmap + overlay", "bwr", 0.6, "max-abs", 99.5, False, 3)


def explained_column(bundle: ModelBundle, method: str, items: list[ImageItem], target: Target | None = None,
                     params: dict | None = None) -> Column:
    """What ``ui.explanations.explain_grid`` makes for one (model, method) column, without Streamlit."""
    spec = get_method(method)
    column = Column(f"test:{bundle.name}", bundle, spec, dict(params or spec.initial_params()))
    for item in items:
        x = fit_to_model(item.pixels, bundle.input_size, bundle.channels, "center-crop")[None].astype(np.float32)
        expl = explain(bundle, method, x, target or Target.predicted(), column.params)
        column.cells.append(Cell(item, item.key, x, bundle.predict(x)[0], expl, None))
    return column


def photo_items(n: int) -> list[ImageItem]:
    """``n`` distinct photos (the gallery's, and crops / mirror images of them)."""
    base = [p.pixels for p in photos()]
    out = []
    for i in range(n):
        pixels = base[i % len(base)]
        h, w = pixels.shape[:2]
        k = i // len(base)
        crop = pixels[k * h // 10:, k * w // 12:][:, ::(-1 if k % 2 else 1)]
        out.append(ImageItem(f"photo/{i}", f"photo {i}", np.ascontiguousarray(crop), "gallery"))
    return out


def net_224() -> tf.keras.Model:
    """A small ReLU CNN on 224×224 RGB inputs (the size of most ImageNet networks), 5 classes."""
    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((224, 224, 3), name="image")
    x = tf.keras.layers.Conv2D(8, 5, strides=2, activation="relu", name="conv1")(inp)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv2")(x)
    x = tf.keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = tf.keras.layers.Dense(5, activation="softmax", name="predictions")(x)
    return tf.keras.Model(inp, out, name="net224")


@pytest.fixture(scope="session")
def bundle_224() -> ModelBundle:
    return make_bundle(net_224, "Net 224")


@pytest.fixture(scope="session")
def tiny_items(images) -> list[ImageItem]:
    return [ImageItem(f"test/{i}", f"tiny <b>{i}</b>", img.astype(np.uint8), "gallery") for i, img in
            enumerate(images[:3])]
