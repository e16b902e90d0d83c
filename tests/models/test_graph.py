"""What loading does to a model's graph (xai_core.models.graph): validation, the head split off, nested
models flattened, Keras' default layer names reserved.

Models are saved in eager mode (``model_files``, the ``files`` fixture in conftest.py) and loaded through
:func:`xai_core.models.upload.load_user_model` in graph mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from model_files import SHAPE, L, eager, eager_logits, images

from xai_core.errors import ModelLoadError
from xai_core.models.upload import load_user_model


# ---------------------------------------------------------------------------------------------- validation
def test_model_without_defined_input_is_explained() -> None:
    from xai_core.models.graph import validate_classifier

    with tf.Graph().as_default(), pytest.raises(ModelLoadError, match="no defined input.*keras.Input"):
        validate_classifier(tf.keras.Sequential([L.Dense(3)]))


def test_two_outputs_and_non_image_input(files: dict[str, Any]) -> None:
    with pytest.raises(ModelLoadError, match=r"2 outputs \(.*\); XAI Lens explains one output"):
        load_user_model(files["dir"] / "two_outputs.keras")
    with pytest.raises(ModelLoadError, match=r"shape \(None, 20\), not an image batch"):
        load_user_model(files["dir"] / "tabular.keras")


# ---------------------------------------------------------------------------------------------- head
@pytest.mark.parametrize(("head", "expected"), [
    ("sigmoid", "sigmoid"), ("softmax_layer", "softmax"), ("activation", "softmax"), ("linear", "none"),
])
def test_heads_are_split_off(files: dict[str, Any], head: str, expected: str) -> None:
    outputs, logits = files[f"head_{head}"]
    bundle = load_user_model(files["dir"] / f"head_{head}.h5")
    assert bundle.head == expected
    x = bundle.preprocess(files["x"])
    np.testing.assert_allclose(bundle.logits(x), logits, rtol=1e-5, atol=1e-5)
    if head == "linear":
        np.testing.assert_allclose(bundle.logits(x), outputs, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(bundle.predict(files["x"]), outputs, rtol=1e-5, atol=1e-6)
        assert type(bundle.model.layers[-1]).__name__ == "Dense"


# ---------------------------------------------------------------------------------------------- nesting
def test_nested_mobilenet_is_flattened_with_equal_logits(tmp_path: Path) -> None:
    x = images(3, (32, 32, 3), seed=7)
    with eager():
        tf.keras.utils.set_random_seed(3)
        base = tf.keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
        rng = np.random.default_rng(3)
        for layer in base.layers:  # non-trivial BN statistics, so the activations are far from zero
            if isinstance(layer, L.BatchNormalization):
                g, b, mean, var = layer.get_weights()
                layer.set_weights([g, rng.normal(0, 0.5, b.shape).astype(np.float32), mean, var])
        model = tf.keras.Sequential([base, L.GlobalAveragePooling2D(), L.Dense(3, activation="softmax",
                                                                                name="scores")])
        ref_probs = model(x / 255.0).numpy()
        ref_logits = eager_logits(model, x / 255.0)
        inner_names = {layer.name for layer in base.layers}
        model.save(tmp_path / "transfer.h5")
    bundle = load_user_model(tmp_path / "transfer.h5")
    assert bundle.info["flattened"] is True and bundle.head == "softmax"
    assert not any(isinstance(layer, tf.keras.Model) for layer in bundle.model.layers)
    names = {layer.name for layer in bundle.layers}
    assert inner_names - {base.layers[0].name} <= names  # every inner layer is visible (not its Input)
    assert np.abs(ref_logits).max() > 1e-2
    np.testing.assert_allclose(bundle.logits(bundle.preprocess(x)), ref_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bundle.predict(x), ref_probs, rtol=1e-4, atol=1e-6)
    assert bundle.activations(bundle.preprocess(x), "Conv1").shape == (3, 16 * 16 * 32)


def test_nested_twice_with_clashing_names_is_analysable(tmp_path: Path) -> None:
    x = images(2, seed=9)
    with eager():
        tf.keras.utils.set_random_seed(4)
        i0 = tf.keras.Input(SHAPE)
        inner = tf.keras.Model(i0, L.BatchNormalization(name="bn")(L.Conv2D(4, 3, name="conv", activation="relu")(i0)),
                               name="inner")
        i1 = tf.keras.Input(SHAPE)
        mid = tf.keras.Model(i1, L.Conv2D(5, 3, name="conv2", activation="relu")(inner(i1, training=False)),
                             name="mid")
        i2 = tf.keras.Input(SHAPE)
        h = L.Conv2D(6, 3, name="conv", activation="relu")(mid(i2))  # same name as the innermost conv
        h = L.Dropout(0.5)(L.GlobalAveragePooling2D()(h))
        outer = tf.keras.Model(i2, L.Dense(3, activation="softmax", name="scores")(h), name="outer")
        ref = outer(x / 255.0).numpy()
        outer.save(tmp_path / "nested.keras")
    bundle = load_user_model(tmp_path / "nested.keras")
    names = [layer.name for layer in bundle.layers]
    assert len(names) == len(set(names)) and {"conv", "outer_conv", "conv2", "bn"} <= set(names)
    np.testing.assert_allclose(bundle.predict(x), ref, rtol=1e-5, atol=1e-6)
    # iNNvestigate sees plain layers (LRP needs a rule for each of them), and several analyzers can be built
    # on one bundle: on the original model, a static BatchNormalization breaks the second one (Keras wraps the
    # FusedBatchNormV3 op that the first analyzer's gradients touch into an op-layer and overwrites the BN
    # output's Keras history; iNNvestigate then loses the path back to the input), which is why make_analyzer
    # gives every analyzer the BN-free canonical model.
    from xai_core.methods._innvestigate import make_analyzer

    with bundle.scope():
        for method in ("deconvnet", "lrp.epsilon", "guided_backprop", "gradient.baseline"):
            analyzer = make_analyzer(bundle, method, None)
            maps = analyzer.analyze(bundle.preprocess(x), neuron_selection=np.array([0, 1]))
            assert maps.shape == (2, *SHAPE) and np.isfinite(maps).all() and np.abs(maps).sum() > 0, method


# ---------------------------------------------------------------------------------------------- layer names
def test_default_layer_names_of_another_process_do_not_clash(tmp_path: Path) -> None:
    """A model saved elsewhere keeps Keras' default names (``input_1``, ``conv2d``, ``conv2d_1`` …) while the
    bundle's fresh graph counts from zero: Integrated Gradients' unnamed reference Input was then called
    ``input_1`` too and failed with 'The name "input_1" is used 2 times in the model' (seen on an uploaded
    ResNet50). Names are now reserved at load time, for any default names."""
    from tf_keras.src import backend

    with eager():
        tf.keras.utils.set_random_seed(5)
        inp = L.Input(SHAPE, name="input_1")
        x = L.Conv2D(4, 3, activation="relu", name="conv2d")(inp)
        x = L.Conv2D(4, 3, activation="relu", name="conv2d_1")(x)
        model = tf.keras.Model(inp, L.Dense(3, name="dense")(L.Flatten(name="flatten")(x)))
        model.save(tmp_path / "defaults.keras")
    bundle = load_user_model(tmp_path / "defaults.keras")
    taken = {layer.name for layer in bundle.model.layers}
    with bundle.scope():
        fresh = [L.InputLayer(SHAPE).name, L.Conv2D(2, 1).name, L.Conv2D(2, 1).name, L.Dense(2).name]
        assert not taken & set(fresh), fresh
        assert backend.get_uid("input") >= 2
    from xai_core.methods import explain

    x = images(3)
    for method in ("gradcam", "gradient", "integrated_gradients"):  # the order that failed
        e = explain(bundle, method, x)
        assert np.isfinite(e.maps).all() and np.abs(e.maps).sum() > 0, method
