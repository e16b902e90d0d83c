"""Recognising keras.applications architectures by their layer names, and choosing their preprocessing."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from tiny_models import make_bundle, tiny_cnn

from xai_core.models.applications import APPLICATIONS
from xai_core.models.fingerprint import CONVENTION_TO_PREPROCESSING, detect_preprocessing, recognise

NAMES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "keras_app_layer_names.json.gz"
#: Families whose networks rescale raw pixels themselves: recognised by their Rescaling layer instead.
SELF_RESCALING = {"convnext", "regnet", "resnet_rs"}
EXACT = {"ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2", "DenseNet121",
         "DenseNet169", "DenseNet201", "VGG16", "VGG19"}


def _layer_names() -> dict[str, dict]:
    with gzip.open(NAMES_FILE, "rt") as f:
        return json.load(f)


def _fake(names: list[str]) -> SimpleNamespace:
    return SimpleNamespace(layers=[SimpleNamespace(name=n) for n in names])


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_every_keras_application_is_recognised_by_its_layer_names(name):
    """All 71 networks (layer names as Keras 2.14 builds them, stored in tests/fixtures): each maps to its own
    family, whose documented convention is the catalogue's; ResNet / DenseNet / VGG depth is named exactly."""
    _assert_recognised(name, _layer_names()[name]["names"])


def _assert_recognised(name: str, layer_names: list[str]) -> None:
    """``name``'s family and convention are found from its layer names (depth too for ResNet / DenseNet / VGG)."""
    found = recognise(_fake(layer_names))
    spec = APPLICATIONS[name]
    if spec.module in SELF_RESCALING:
        assert found is None
        return
    assert found is not None, name
    fp, network = found
    assert fp.module == {"vgg19": "vgg16"}.get(spec.module, spec.module)
    assert fp.convention == spec.convention
    if name in EXACT:
        assert network == name


KERAS3_NAMES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "keras3_app_configs.json.gz"


def _keras3_layer_names() -> dict[str, list[str]]:
    with gzip.open(KERAS3_NAMES_FILE, "rt") as f:
        return {name: entry["names"] for name, entry in json.load(f).items() if not name.startswith("__")}


@pytest.mark.parametrize("name", sorted(_keras3_layer_names()))
def test_every_keras3_application_is_recognised_by_its_layer_names(name):
    """The 40 networks of Keras 3.15 (scripts/record_keras3_app_configs.py): Keras 3 writes "_" where Keras 2 had
    "/" (DenseNet's conv1/conv is conv1_conv) and names MobileNetV3's layers anew; each still maps to its family
    and convention, and ResNet / DenseNet / VGG depth is named exactly."""
    _assert_recognised(name, _keras3_layer_names()[name])


def test_names_of_other_models_are_not_taken_for_an_application():
    assert recognise(_fake(["input", "conv1", "conv2", "pool1", "flatten", "dense1", "predictions"])) is None
    assert recognise(_fake(["input_1", "block1_conv1", "block1_conv2", "fc1"])) is None  # VGG-like, not VGG


@pytest.mark.skipif(not os.environ.get("XAI_LENS_SLOW"), reason="set XAI_LENS_SLOW=1 (builds 71 networks)")
def test_stored_layer_names_are_what_keras_builds():
    """Rebuild every network (weights=None) and compare its layer names with tests/fixtures (about 5 minutes)."""
    from tensorflow.python.eager import context

    stored = _layer_names()
    assert set(stored) == set(APPLICATIONS)
    for name, spec in APPLICATIONS.items():
        with context.eager_mode():
            side = {"NASNetMobile": 224, "NASNetLarge": 331}.get(name, 75)
            model = spec.constructor(weights=None, input_shape=(side, side, 3))
            assert [layer.name for layer in model.layers] == stored[name]["names"], name
            tf.keras.backend.clear_session()


def test_a_model_that_rescales_itself_gets_raw_pixels():
    def build():
        inp = tf.keras.Input((16, 16, 3))
        x = tf.keras.layers.Rescaling(1 / 255.0, name="scale")(inp)
        x = tf.keras.layers.GlobalAveragePooling2D()(tf.keras.layers.Conv2D(4, 3)(x))
        return tf.keras.Model(inp, tf.keras.layers.Dense(5)(x))

    guess = detect_preprocessing(make_bundle(build, "rescaling").model)
    assert guess.name == "raw" and guess.certain and "'scale'" in guess.reason


def test_an_unknown_model_gets_pixels_over_255_marked_as_a_guess():
    guess = detect_preprocessing(make_bundle(tiny_cnn, "tiny-guess").model)
    assert guess.name == "unit" and not guess.certain and "guess" in guess.reason
    assert guess.architecture is None


def test_conventions_map_to_preprocessings():
    from xai_core.models.bundle import PREPROCESSINGS

    x = np.array([[[[0.0, 127.5, 255.0]]]], np.float32)
    np.testing.assert_allclose(PREPROCESSINGS[CONVENTION_TO_PREPROCESSING["tf"]](x), [[[[-1, 0, 1]]]], atol=1e-6)
    for convention in ("caffe", "torch"):
        spec = next(s for s in APPLICATIONS.values() if s.convention == convention)
        np.testing.assert_allclose(PREPROCESSINGS[CONVENTION_TO_PREPROCESSING[convention]](x), spec.preprocessing(x),
                                   rtol=1e-5)
