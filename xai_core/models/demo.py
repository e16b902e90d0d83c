"""The embedded demo models: small CNNs trained on the demo data sets, shipped in ``xai_core/assets/models``.

``demo_models.json`` (written by ``scripts/train_demo_models.py``) lists them in display order with their
held-out test accuracy; :data:`DEMO_MODELS` is read from it at import time and :func:`load_demo_model`
turns one into a :class:`~xai_core.models.bundle.ModelBundle`.

Every demo model takes ``pixels / 255`` (``PREPROCESSINGS["unit"]``) and ends in
``Dense(K, activation="softmax")``, so loading it exercises the bundle's head splitting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xai_core.errors import ModelLoadError

if TYPE_CHECKING:
    from xai_core.models.bundle import ModelBundle

# The catalogue is read without TensorFlow (Home lists the demo models before the engine starts): the loaders import
# the engine when they run.

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


def demo_model_labels() -> dict[str, str]:
    """``demo:<id>`` → display title with accuracy, in display order."""
    return {f"demo:{m.id}": f"{m.title} — {m.test_accuracy:.1%} test accuracy" for m in DEMO_MODELS.values()}


def load_keras_file(path: str | Path) -> Any:
    """Load a ``.keras`` model file into the current (graph-mode) default graph and session, with its weights
    (see :mod:`xai_core.models.keras_files`). Must be called inside the target graph and session (e.g. as a
    :meth:`ModelBundle.create` factory)."""
    from xai_core.models.keras_files import build_model, open_model_file

    data = Path(path).read_bytes()
    file = open_model_file(data, Path(path).name, "keras")
    try:
        model, _ = build_model(file, Path(path).name)
    finally:
        file.close()
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
    from xai_core.data.demo import load_demo_set
    from xai_core.models.bundle import PREPROCESSINGS, ModelBundle

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
