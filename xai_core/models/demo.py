"""The embedded demo models: small CNNs trained on the demo data sets, shipped in ``xai_core/assets/models``.

``demo_models.json`` (written by ``scripts/train_demo_models.py``) lists them in display order with their
held-out test accuracy; :data:`DEMO_MODELS` is read from it at import time and :func:`load_demo_model`
turns one into a :class:`~xai_core.models.bundle.ModelBundle`.

Every demo model takes ``pixels / 255`` (``PREPROCESSINGS["unit"]``) and ends in
``Dense(K, activation="softmax")``, so loading it exercises the bundle's head splitting.
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from xai_core import runtime  # noqa: F401  (graph mode before any model exists)
from xai_core.data.demo import load_demo_set
from xai_core.errors import ModelLoadError
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle

#: Folder of the demo model files and their catalogue.
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets" / "models"
CATALOGUE = ASSETS_DIR / "demo_models.json"


@dataclass(frozen=True)
class DemoModel:
    """Catalogue entry of one demo model.

    Attributes
    ----------
    id : stable id, e.g. ``"digits_cnn"`` (also the file stem).
    title : display name, e.g. ``"Digits CNN (plain)"``.
    dataset : demo data set it was trained on (a key of :data:`xai_core.data.demo.DEMO_DATASETS`).
    description : architecture in one line.
    test_accuracy : accuracy on the data set's test split (never trained on), in [0, 1].
    path : the ``.keras`` file.
    info : the model's full catalogue entry (parameters, epochs, seed, training time, ...).
    """

    id: str
    title: str
    dataset: str
    description: str
    test_accuracy: float
    path: Path
    info: dict[str, Any]


def _read_catalogue(path: Path = CATALOGUE) -> dict[str, DemoModel]:
    if not path.exists():  # pragma: no cover - the file is shipped with the package
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))["models"]
    return {
        e["id"]: DemoModel(
            id=e["id"],
            title=e["title"],
            dataset=e["dataset"],
            description=e["architecture"],
            test_accuracy=float(e["test_accuracy"]),
            path=path.parent / e["file"],
            info=dict(e),
        )
        for e in entries
    }


#: Demo model id → catalogue entry, in display order.
DEMO_MODELS: dict[str, DemoModel] = _read_catalogue()


def default_demo_model_id() -> str:
    """The model the app shows first: the plain digits CNN (small, fast, every method supports it)."""
    return "digits_cnn" if "digits_cnn" in DEMO_MODELS else next(iter(DEMO_MODELS))


class _InMemoryArchive:
    """The one ``zipfile.ZipFile`` method Keras' ``H5IOStore`` calls (``open``), serving the weights file from
    memory: h5py seeks back and forth, and a seek inside a zip member re-reads the member from its start (Python
    3.11), which made loading a 100 MB ResNet50 ``.keras`` file take ~30 s instead of ~1 s."""

    def __init__(self, members: dict[str, bytes]) -> None:
        self.members = members

    def open(self, name: str, mode: str = "r") -> io.BytesIO:
        return io.BytesIO(self.members[name])


def _eager_weights(config: dict, weights_h5: bytes) -> list[np.ndarray]:
    """Weight values of a ``.keras`` file, read with Keras' own v3 loader in a local eager context."""
    from keras.src.saving import saving_lib
    from keras.src.saving.serialization_lib import ObjectSharingScope, deserialize_keras_object
    from tensorflow.python.eager import context

    with _no_lingering_keras_graph(), context.eager_mode(), ObjectSharingScope():
        model = deserialize_keras_object(config, safe_mode=True)
        store = saving_lib.H5IOStore(_WEIGHTS, archive=_InMemoryArchive({_WEIGHTS: weights_h5}), mode="r")
        try:
            saving_lib._load_state(model, weights_store=store, assets_store=None, inner_path="",
                                   visited_trackables=set())
        finally:
            store.close()
        return model.get_weights()


@contextlib.contextmanager
def _no_lingering_keras_graph() -> Iterator[None]:
    """Keras 2.14 creates its global eager-mode ``FuncGraph("keras_graph")`` on first use, with the graph that is
    the default at that moment (the bundle's) as its outer graph, and keeps it for the thread: the bundle's whole
    ``tf.Graph`` then outlives ``ModelBundle.close()`` (measured: ResNet50's graph stayed alive after close). The
    loader restores Keras' previous global graph, so nothing outside the bundle holds its graph."""
    from keras.src import backend

    previous = getattr(backend._GRAPH, "graph", None)
    try:
        yield
    finally:
        backend._GRAPH.graph = previous


_WEIGHTS = "model.weights.h5"


def load_keras_file(path: str | Path) -> Any:
    """Load a Keras v3 ``.keras`` file into the current (graph-mode) default graph and session, **with** weights.

    In graph mode, ``tf.keras.models.load_model`` on a ``.keras`` file silently returns the model with
    freshly initialised weights: Keras 2.14 restores each variable with ``variable.assign(value)``, which
    without eager execution only adds an assign op to the graph that nothing ever runs (measured: a
    trained digits CNN scored 10 %, chance level). So the weight values are read by Keras' own loader inside a
    local eager context, the architecture is built from ``config.json`` in the current graph, and
    ``set_weights`` — which runs its assignments in the session, once — copies the values over. Files with
    assets (not image classifiers, in practice) go through ``load_model`` twice instead.

    Must be called inside the target graph and session (e.g. as a :meth:`ModelBundle.create` factory).
    """
    from keras.src.saving import saving_lib
    from keras.src.saving.serialization_lib import ObjectSharingScope, deserialize_keras_object
    from tensorflow.python.eager import context

    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        plain = set(names) == {"metadata.json", "config.json", _WEIGHTS}
        if plain:
            config = json.loads(zf.read("config.json"))
            weights_h5 = zf.read(_WEIGHTS)
    if not plain:
        with context.eager_mode():
            weights = tf.keras.models.load_model(path, compile=False, safe_mode=True).get_weights()
        model = tf.keras.models.load_model(path, compile=False, safe_mode=True)
        model.set_weights(weights)
        return model
    config["compile_config"] = None
    v3 = getattr(saving_lib._SAVING_V3_ENABLED, "value", False)
    saving_lib._SAVING_V3_ENABLED.value = True  # what saving_lib.load_model sets while it deserialises
    try:
        weights = _eager_weights(config, weights_h5)
        del weights_h5
        with ObjectSharingScope():
            model = deserialize_keras_object(config, safe_mode=True)
    finally:
        saving_lib._SAVING_V3_ENABLED.value = v3
    model.set_weights(weights)
    return model


def load_demo_model(model_id: str) -> ModelBundle:
    """Load demo model ``model_id`` (a key of :data:`DEMO_MODELS`) as a bundle.

    Returns
    -------
    ModelBundle
        ``source="demo"``, ``preprocessing=PREPROCESSINGS["unit"]``, class names of its data set,
        ``head == "softmax"``; ``info`` holds ``dataset``, ``test_accuracy`` and the catalogue entry.

    Raises
    ------
    ModelLoadError
        For an unknown id (the message lists the valid ones) or a missing file.
    """
    try:
        entry = DEMO_MODELS[model_id]
    except KeyError:
        raise ModelLoadError(
            f"Unknown demo model '{model_id}'. Choose one of: {', '.join(DEMO_MODELS) or '(none installed)'}."
        ) from None
    if not entry.path.exists():
        raise ModelLoadError(
            f"The file of demo model '{model_id}' is missing ({entry.path.name}). "
            "Recreate it with: python scripts/train_demo_models.py"
        )
    class_names = load_demo_set(entry.dataset, "test").class_names
    return ModelBundle.create(
        lambda: load_keras_file(entry.path),
        name=entry.title,
        preprocessing=PREPROCESSINGS["unit"],
        class_names=class_names,
        source="demo",
        description=entry.description,
        info={
            "demo_id": entry.id,
            "dataset": entry.dataset,
            "test_accuracy": entry.test_accuracy,
            **{k: v for k, v in entry.info.items() if k not in ("id", "title", "architecture")},
        },
    )
