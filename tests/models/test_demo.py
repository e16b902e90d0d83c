"""The four trained demo models (xai_core.models.demo), on the embedded demo data sets.

The data sets themselves are tested in tests/data/test_demo.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from xai_core.data.demo import load_demo_set
from xai_core.errors import ModelLoadError
from xai_core.models.bundle import ModelBundle
from xai_core.models.demo import CATALOGUE, DEMO_MODELS, default_demo_model_id, load_demo_model

#: Minimum held-out accuracy per data set (the brief's requirement).
THRESHOLDS = {"digits": 0.95, "shapes": 0.90}


def test_catalogue() -> None:
    assert list(DEMO_MODELS) == ["digits_cnn", "digits_resnet", "shapes_cnn", "shapes_resnet"]
    assert default_demo_model_id() in DEMO_MODELS
    raw = json.loads(CATALOGUE.read_text(encoding="utf-8"))["models"]
    for entry in raw:
        m = DEMO_MODELS[entry["id"]]
        assert m.path.exists() and m.path.suffix == ".keras"
        assert m.path.stat().st_size < 2_000_000
        assert entry["num_params"] < 300_000
        assert m.test_accuracy >= THRESHOLDS[m.dataset]


@pytest.fixture(scope="session")
def demo_bundles() -> dict[str, ModelBundle]:
    bundles = {model_id: load_demo_model(model_id) for model_id in DEMO_MODELS}
    yield bundles
    for b in bundles.values():
        b.close()


@pytest.mark.parametrize("model_id", ["digits_cnn", "digits_resnet", "shapes_cnn", "shapes_resnet"])
def test_demo_model_reproduces_its_accuracy(demo_bundles: dict[str, ModelBundle], model_id: str) -> None:
    bundle, entry = demo_bundles[model_id], DEMO_MODELS[model_id]
    data = load_demo_set(entry.dataset, "test")
    assert bundle.head == "softmax" and bundle.source == "demo"
    assert bundle.input_shape == data.images.shape[1:]
    assert bundle.class_names == data.class_names
    assert bundle.info["dataset"] == entry.dataset
    probs = bundle.predict(data.images)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    acc = float(np.mean(probs.argmax(axis=1) == data.labels))
    assert acc >= THRESHOLDS[entry.dataset]
    assert abs(acc - entry.test_accuracy) <= 0.005
    # ReLU only: every iNNvestigate method (deconvnet, guided backprop, deep Taylor) accepts the net
    for layer in bundle.model.layers:
        act = getattr(layer, "activation", None)
        if act is not None:
            assert act.__name__ in ("relu", "linear"), (layer.name, act.__name__)
    names = {layer.name for layer in bundle.model.layers}
    assert "conv1" in names or "stem_conv" in names
    if "resnet" in model_id:
        assert "block1_add" in names and any(k.endswith("_bn1") for k in names)


def test_unknown_model_id() -> None:
    with pytest.raises(ModelLoadError, match="digits_cnn"):
        load_demo_model("vgg16")
