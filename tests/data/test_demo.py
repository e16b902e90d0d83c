"""The embedded demo: data sets (digits, procedural shapes) and the four trained demo models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xai_core.data.demo import (
    DEMO_DATASETS,
    SHAPE_CLASSES,
    DemoSet,
    load_demo_set,
    load_digits_set,
    load_shapes_set,
    make_shapes,
)
from xai_core.errors import DatasetError, ModelLoadError, XaiLensError
from xai_core.models.bundle import ModelBundle
from xai_core.models.demo import CATALOGUE, DEMO_MODELS, default_demo_model_id, load_demo_model

#: Minimum held-out accuracy per data set (the brief's requirement).
THRESHOLDS = {"digits": 0.95, "shapes": 0.90}


# ---------------------------------------------------------------------------------------------- shapes
def test_shapes_deterministic_for_a_seed() -> None:
    a, b, c = make_shapes(30, seed=7), make_shapes(30, seed=7), make_shapes(30, seed=8)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.ids == b.ids
    assert not np.array_equal(a.images, c.images)


def test_shapes_layout_and_balance() -> None:
    s = make_shapes(60, seed=3)
    assert isinstance(s, DemoSet) and len(s) == 60
    assert s.images.shape == (60, 64, 64, 3) and s.images.dtype == np.uint8
    assert s.labels.dtype == np.int64 and s.masks.dtype == bool and s.masks.shape == (60, 64, 64)
    assert s.class_names == list(SHAPE_CLASSES) and len(SHAPE_CLASSES) == 6
    assert np.bincount(s.labels, minlength=6).tolist() == [10] * 6
    assert np.ptp(np.bincount(make_shapes(62, seed=3).labels, minlength=6)) <= 1


def test_shapes_test_split_balanced_and_readonly() -> None:
    s = load_shapes_set("test")
    assert len(s) == 600 and np.bincount(s.labels).tolist() == [100] * 6
    assert len(set(s.ids)) == len(s) and s.ids[0] == "shapes/test/00000"
    assert load_shapes_set("test") is s  # cached
    with pytest.raises(ValueError):
        s.images[0, 0, 0, 0] = 0


def test_shape_masks_cover_a_visible_object() -> None:
    s = make_shapes(120, seed=11)
    areas = s.masks.sum(axis=(1, 2))
    assert areas.min() > 0
    # the object is inside the image: a mask never touches the border
    assert not s.masks[:, 0, :].any() and not s.masks[:, -1, :].any()
    assert not s.masks[:, :, 0].any() and not s.masks[:, :, -1].any()
    # masked pixels stand out: mean colour distance object vs background, per image
    img = s.images.astype(np.float32)
    m = s.masks[..., None]
    obj = (img * m).sum(axis=(1, 2)) / m.sum(axis=(1, 2))
    bg = (img * ~m).sum(axis=(1, 2)) / (~m).sum(axis=(1, 2))
    dist = np.linalg.norm(obj - bg, axis=1)
    assert dist.min() > 40, dist.min()
    assert dist.mean() > 100


# ---------------------------------------------------------------------------------------------- digits
def test_digits_splits() -> None:
    train, test, every = load_digits_set("train"), load_digits_set("test"), load_digits_set("all")
    assert (len(train), len(test), len(every)) == (1437, 360, 1797)
    for d in (train, test, every):
        assert d.images.shape[1:] == (32, 32, 1) and d.images.dtype == np.uint8
        assert d.labels.dtype == np.int64 and d.masks is None
        assert d.class_names == [str(i) for i in range(10)]
    assert test.images.max() == 255 and train.images.min() == 0
    assert not set(train.ids) & set(test.ids)
    assert set(train.ids) | set(test.ids) == set(every.ids)
    # the numeric part is the index in the full set: disjoint across splits too
    assert not {i.rsplit("/", 1)[1] for i in train.ids} & {i.rsplit("/", 1)[1] for i in test.ids}
    assert all(i.startswith("digits/test/") for i in test.ids)
    # stratified: every class is about 20 % test
    frac = np.bincount(test.labels) / np.bincount(every.labels)
    assert np.all(np.abs(frac - 0.2) < 0.03)


def test_dataset_registry_and_errors() -> None:
    assert set(DEMO_DATASETS) == {"digits", "shapes"}
    assert load_demo_set("digits", "test").name == "digits/test"
    with pytest.raises(DatasetError, match="digits, shapes"):
        load_demo_set("mnist")
    with pytest.raises(DatasetError, match="train, test, all"):
        load_demo_set("digits", "validation")
    assert issubclass(DatasetError, XaiLensError)


# ---------------------------------------------------------------------------------------------- models
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
