"""Home's first view, computed ahead: the default demo model's prediction and three maps of one test image.

Starting TensorFlow 2.21 takes 6–10 s on a 2-core box (its shared libraries and ~2,000 Python modules), so a first
visitor of a cold server would look at a spinner before seeing any map. The first view Home shows is always the same
(the default demo model, test image 0, its predicted class, three methods with their defaults), so
``scripts/make_first_view.py`` computes it with the engine and stores it in ``assets/first_view.npz``; Home draws it
from there with numpy alone, then starts the engine for the visitor's own clicks.

It is the engine's own result, not a picture of it: :func:`compute_first_view` is the page's path (``bundle.predict``,
``explain`` with each method's defaults), ``tests/test_first_view.py`` recomputes it and requires the stored numbers
to match, and :func:`load_first_view` refuses the file when the model file's SHA-256 differs from the one it was
computed from (Home then computes the view live). This module imports no TensorFlow unless
:func:`compute_first_view` is called.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: The methods Home shows, in order.
HOME_METHODS = ("gradcam", "lrp.epsilon", "integrated_gradients")
#: The test image Home shows first.
FIRST_IMAGE = 0
#: Where the first view is stored.
FIRST_VIEW_FILE = Path(__file__).resolve().parent / "assets" / "first_view.npz"


@dataclass(frozen=True)
class ShownMethod:
    """One method of the first view: what Home writes under its map, and the map itself (``float32 (H, W)``)."""

    id: str
    label: str
    summary: str
    signed: bool
    map: np.ndarray


@dataclass(frozen=True)
class FirstView:
    """What Home shows before the engine has started.

    Attributes
    ----------
    model_key : ``"demo:<id>"`` of the model.
    model_sha256 : SHA-256 of the model file the numbers were computed from.
    dataset : the demo data set, e.g. ``"digits"``.
    n_images : images in its test split (the image picker's range).
    image_index, image_id : the image, by position in the test split and by id.
    image : ``uint8 (H, W, C)`` its raw pixels.
    true_label : the name of its label.
    class_names : the model's classes.
    probs : ``float32 (K,)`` the model's probabilities.
    target_class : the class explained (the predicted one).
    methods : the maps, in :data:`HOME_METHODS` order.
    family_counts : methods per family of the registry (Home's metrics), in display order.
    """

    model_key: str
    model_sha256: str
    dataset: str
    n_images: int
    image_index: int
    image_id: str
    image: np.ndarray
    true_label: str
    class_names: tuple[str, ...]
    probs: np.ndarray
    target_class: int
    methods: tuple[ShownMethod, ...]
    family_counts: tuple[tuple[str, int], ...]

    def covers(self, model_key: str, image_index: int) -> bool:
        """Whether this view holds the prediction of ``image_index`` under ``model_key``."""
        return model_key == self.model_key and image_index == self.image_index

    def shown(self, method_id: str, target_class: int) -> ShownMethod | None:
        """The stored map of ``method_id`` for ``target_class``, if this view holds it."""
        if target_class != self.target_class:
            return None
        return next((m for m in self.methods if m.id == method_id), None)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _model_path(model_key: str) -> Path:
    from xai_core.models.demo import DEMO_MODELS

    return DEMO_MODELS[model_key.removeprefix("demo:")].path


def compute_first_view(model_key: str | None = None, image_index: int = FIRST_IMAGE) -> FirstView:
    """Compute the first view with the engine, as Home does (imports TensorFlow)."""
    from xai_core import runtime
    from xai_core.data.demo import load_demo_set
    from xai_core.methods import FAMILIES, REGISTRY, Target, explain
    from xai_core.models.demo import default_demo_model_id, load_demo_model

    runtime.install()
    model_key = model_key or f"demo:{default_demo_model_id()}"
    bundle = load_demo_model(model_key.removeprefix("demo:"))
    try:
        data = load_demo_set(bundle.info["dataset"], "test")
        image = data.images[image_index : image_index + 1].astype(np.float32)
        probs = bundle.predict(image)[0].astype(np.float32)
        target = int(probs.argmax())
        shown = []
        for method_id in HOME_METHODS:
            spec = REGISTRY[method_id]
            maps = explain(bundle, method_id, image, Target.of_class(target), spec.defaults()).maps
            shown.append(ShownMethod(method_id, spec.label, spec.summary, spec.signed,
                                     np.asarray(maps[0, 0], dtype=np.float32)))
    finally:
        bundle.close()
    return FirstView(
        model_key=model_key, model_sha256=file_sha256(_model_path(model_key)), dataset=bundle.info["dataset"],
        n_images=len(data), image_index=image_index, image_id=data.ids[image_index],
        image=np.array(data.images[image_index]), true_label=data.class_names[int(data.labels[image_index])],
        class_names=tuple(bundle.class_names), probs=probs, target_class=target, methods=tuple(shown),
        family_counts=tuple((f, sum(s.family == f for s in REGISTRY.values())) for f in FAMILIES),
    )


def save_first_view(view: FirstView, path: Path = FIRST_VIEW_FILE) -> None:
    """Write ``view`` as one ``.npz`` (arrays) with its facts as JSON inside."""
    facts = {
        "model_key": view.model_key, "model_sha256": view.model_sha256, "dataset": view.dataset,
        "n_images": view.n_images, "image_index": view.image_index, "image_id": view.image_id,
        "true_label": view.true_label, "class_names": list(view.class_names), "target_class": view.target_class,
        "methods": [{"id": m.id, "label": m.label, "summary": m.summary, "signed": m.signed} for m in view.methods],
        "family_counts": [list(fc) for fc in view.family_counts],
    }
    arrays: dict[str, Any] = {"facts": np.array(json.dumps(facts, ensure_ascii=False)), "image": view.image,
                              "probs": view.probs, **{f"map:{m.id}": m.map for m in view.methods}}
    np.savez_compressed(path, **arrays)


def read_first_view(path: Path = FIRST_VIEW_FILE) -> FirstView:
    """Read a stored first view as it is (no check against the model file)."""
    with np.load(path, allow_pickle=False) as z:
        facts = json.loads(str(z["facts"]))
        methods = tuple(ShownMethod(m["id"], m["label"], m["summary"], bool(m["signed"]), z[f"map:{m['id']}"])
                        for m in facts["methods"])
        return FirstView(
            model_key=facts["model_key"], model_sha256=facts["model_sha256"], dataset=facts["dataset"],
            n_images=int(facts["n_images"]), image_index=int(facts["image_index"]), image_id=facts["image_id"],
            image=z["image"], true_label=facts["true_label"], class_names=tuple(facts["class_names"]),
            probs=z["probs"], target_class=int(facts["target_class"]), methods=methods,
            family_counts=tuple((f, int(c)) for f, c in facts["family_counts"]),
        )


def load_first_view(path: Path = FIRST_VIEW_FILE) -> FirstView | None:
    """The stored first view, or ``None`` when there is none or its model file has changed since it was computed
    (then Home computes the view live)."""
    if not path.exists():
        return None
    return _checked(path, path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _checked(path: Path, mtime_ns: int) -> FirstView | None:  # read once per version of the file
    view = read_first_view(path)
    try:
        model = _model_path(view.model_key)
    except KeyError:
        return None
    if not model.exists() or file_sha256(model) != view.model_sha256:
        return None
    return view
