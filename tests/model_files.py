"""Small Keras models saved as files and zip archives, for the loading tests (``from model_files import ...``).

Small models are built and saved in **eager** mode (a clean file, reference predictions from the original
model), then loaded through XAI Lens in graph mode. Shared by tests/models/ (upload, graph, applications,
the ``files`` fixture in tests/models/conftest.py) and tests/data/test_archive.py.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context

L = tf.keras.layers
SHAPE = (16, 16, 3)


@contextmanager
def eager() -> Iterator[None]:
    with context.eager_mode():
        yield


def images(n: int = 5, shape: tuple[int, ...] = SHAPE, seed: int = 0) -> np.ndarray:
    """Raw pixels in [0, 255]."""
    return (np.random.default_rng(seed).random((n, *shape)) * 255).astype(np.float32)


def small_cnn(head: str = "softmax", *, rescale: bool = False, classes: int = 3, seed: int = 0) -> Any:
    """Conv → BN → GAP → Dense(classes) with the given head; call inside :func:`eager`.

    BN statistics are randomised so that a loader that silently drops weights is caught.
    """
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input(SHAPE, name="image")
    x = L.Rescaling(1 / 255.0, name="rescale")(inp) if rescale else inp
    x = L.Conv2D(6, 3, activation="relu", name="conv")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    act = {"sigmoid": "sigmoid", "softmax": "softmax"}.get(head)
    out = L.Dense(classes, activation=act, name="scores")(x)
    if head == "softmax_layer":
        out = L.Softmax(name="probs")(out)
    elif head == "activation":
        out = L.Activation("softmax", name="probs")(out)
    model = tf.keras.Model(inp, out, name=f"cnn_{head}")
    bn = model.get_layer("bn")
    rng = np.random.default_rng(seed)
    bn.set_weights([w + rng.random(w.shape).astype(np.float32) for w in bn.get_weights()])
    return model


def eager_logits(model: Any, x: np.ndarray) -> np.ndarray:
    """Pre-activation scores of the last Dense layer named 'scores' (eager)."""
    dense = model.get_layer("scores")
    feat = tf.keras.Model(model.inputs, dense.input)(x).numpy()
    w, b = dense.get_weights()
    return feat @ w + b


def marker_function(path: str) -> Callable[[Any], Any]:
    """A Lambda body that leaves a marker file whenever it runs (its closure survives serialisation)."""

    def body(x: Any) -> Any:
        import pathlib

        pathlib.Path(path).write_text("the lambda body ran")
        return x

    return body


def zip_dir(folder: Path) -> bytes:
    """Zip ``folder`` the way a user would: entries under ``<folder name>/``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, f"{folder.name}/{p.relative_to(folder).as_posix()}")
    return buf.getvalue()


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()
