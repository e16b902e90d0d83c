"""Model files as today's Keras writes them, met through the upload path (:func:`load_user_model`).

The zoo (tests/keras3_zoo.py) is built once per session in two subprocesses — real Keras 3.15 and tf_keras 2.21, as
users save with TensorFlow ≥ 2.16 — and cached under artifacts/keras3-zoo/. Each recorded model comes with Keras's
own output on fixed images and the output of its float64 twin (same weights, computed in float64: the exact answer).

What is checked, per file (``.keras`` and ``.h5`` of each model):

* predictions: logits and probabilities as close to the exact answer as Keras's own float32 answer is: error ≤
  max(1e-5, 4 × Keras's own), relative to the largest logit, absolute for probabilities. On the small nets both are
  ~1e-7 (so XAI Lens and Keras agree to ~1e-7); on ResNet50 and EfficientNetB0 Keras's float32 answer is itself
  3e-5 to 2e-4 from the exact one (and its ``predict()`` differs from its ``__call__`` by as much), so a bound of
  1e-5 to Keras's output would fail any correct float32 implementation but Keras's own. Mixed-precision files:
  Keras computes in float16, XAI Lens in float32, which must be within 1e-5 of the exact answer;
* maps: finite and not flat; LRP-0 = gradient × input on the ReLU nets (Pearson r ≥ 0.99, the independent identity);
* augmentation models: identical predictions and maps on repeated runs, equal to Keras's inference output;
* refusals: the message names the layer or class and says what to do, and following it (a file the zoo saved the
  way the message says) loads with Keras's predictions.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras3_zoo
import numpy as np
import pytest
from keras3_zoo import RECORDED, REFUSED, SLOW_RECORDED

from xai_core.errors import ModelLoadError
from xai_core.methods import explain, methods_for, unsupported_reason
from xai_core.models.bundle import ModelBundle
from xai_core.models.upload import load_user_model

SLOW = bool(os.environ.get("XAI_LENS_SLOW"))
FORMATS = ("keras", "h5")
CASES = [(f, n, fmt) for f, names in RECORDED.items() for n in names + (SLOW_RECORDED[f] if SLOW else [])
         for fmt in FORMATS]
REFUSED_CASES = [(f, n, fmt) for f, names in REFUSED.items() for n in names for fmt in FORMATS]
VERSION = {"keras3": "Keras 3.15.1 file, converted", "tf_keras": "Keras 2.21.0 file, read"}


@pytest.fixture(scope="session")
def zoo() -> Path:
    return keras3_zoo.build(slow=SLOW)


@pytest.fixture(scope="session")
def manifests(zoo: Path) -> dict[str, dict[str, dict[str, Any]]]:
    return {flavour: keras3_zoo.manifest(zoo, flavour) for flavour in keras3_zoo.FLAVOURS}


class Uploads:
    """Bundles of zoo files, loaded once through the upload path; the big ones closed when no test needs them."""

    def __init__(self, zoo: Path) -> None:
        self.zoo = zoo
        self.loaded: dict[tuple[str, str, str], ModelBundle] = {}

    def path(self, flavour: str, name: str, fmt: str) -> Path:
        return self.zoo / flavour / f"{name}.{fmt}"

    def get(self, flavour: str, name: str, fmt: str = "keras") -> ModelBundle:
        key = (flavour, name, fmt)
        if key not in self.loaded:
            self.loaded[key] = load_user_model(self.path(*key))
        return self.loaded[key]

    def close(self, flavour: str, name: str, fmt: str) -> None:
        bundle = self.loaded.pop((flavour, name, fmt), None)
        if bundle is not None:
            bundle.close()


@pytest.fixture(scope="module")
def uploads(zoo: Path) -> Iterator[Uploads]:
    u = Uploads(zoo)
    yield u
    for key in list(u.loaded):
        u.close(*key)


def _arrays(zoo: Path, flavour: str, entry: dict[str, Any]) -> dict[str, np.ndarray]:
    with np.load(zoo / flavour / entry["arrays"]) as data:
        return dict(data)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([np.corrcoef(u.ravel(), v.ravel())[0, 1] for u, v in zip(a, b)])


def assert_keras_predictions(bundle: ModelBundle, entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """The bundle computes what Keras computes (see the module docstring for the bounds)."""
    x = arrays["x"]
    logits = bundle.logits(bundle.preprocess(x))
    if "logits64" in arrays:
        keras_error = _relative(arrays["logits"], arrays["logits64"])
        ours = _relative(logits, arrays["logits64"])
        if entry.get("mixed"):  # Keras computed in float16: the float64 twin is the reference
            assert ours <= 1e-5, ours
        else:
            assert ours <= max(1e-5, 4 * keras_error), (ours, keras_error)
    else:  # no float64 twin (tf_keras TFOpLambda constants): Keras's float32 answer
        assert _relative(logits, arrays["logits"]) <= 1e-5
    if entry["head"] != "none":
        probabilities = bundle.predict(x)
        if "y64" in arrays:
            keras_error = float(np.abs(arrays["y"] - arrays["y64"]).max())
            ours = float(np.abs(probabilities - arrays["y64"]).max())
            assert ours <= (1e-5 if entry.get("mixed") else max(1e-5, 4 * keras_error)), (ours, keras_error)
        else:
            np.testing.assert_allclose(probabilities, arrays["y"], rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------- predictions
@pytest.mark.parametrize(("flavour", "name", "fmt"), CASES)
def test_upload_predicts_what_keras_predicts(zoo, manifests, uploads, flavour, name, fmt):
    entry = manifests[flavour][name]
    bundle = uploads.get(flavour, name, fmt)
    assert_keras_predictions(bundle, entry, _arrays(zoo, flavour, entry))
    assert bundle.head == entry["head"]
    assert bundle.preprocessing.name == entry["preprocess"], bundle.info["preprocessing_reason"]
    if "architecture" in entry:  # the network, or its family where the layer names do not tell which one
        assert bundle.info["architecture"] == FAMILY.get(entry["architecture"], entry["architecture"])
    report = bundle.info["load_report"]
    assert report.startswith(VERSION[flavour]), report
    if not entry.get("nested") and not entry.get("augmentation") and not (flavour == "keras3" and name in REWRITTEN):
        # Keras 3 counts seed-generator states of augmentation layers as weights; tf_keras does not
        assert f"{entry['layers']} layers" in report and (f"{entry['weights']:,} weights" in report
                                                          or f"{entry['weights'] / 1e6:.1f} M weights" in report)
    if entry.get("mixed"):
        assert "mixed precision (mixed_float16): runs in float32" in report
    if entry.get("augmentation"):
        assert "augmentation layers run as at inference" in report
    if fmt == "h5" or (not entry.get("relu") and name not in MAP_METHODS):
        uploads.close(flavour, name, fmt)  # the maps below use the .keras uploads of these


#: Networks recognised by family only (the layer names are those of every member).
FAMILY = {"EfficientNetB0": "EfficientNet", "MobileNetV3Small": "MobileNetV3", "ConvNeXtTiny": None}
#: Keras 3 models whose converted form has more layers: keras.ops calls (not layers in Keras 3's count) and hard
#: sigmoid / SiLU activations (written as two or three layers).
REWRITTEN = {"arithmetic", "MobileNetV3Small", "ConvNeXtTiny", "seq_hard_swish"}


def test_keras3_resnet50_report_reads_as_the_page_shows_it(uploads):
    assert uploads.get("keras3", "ResNet50").info["load_report"] == (
        "Keras 3.15.1 file, converted: 177 layers, 25.6 M weights")


# ---------------------------------------------------------------------------------------------- maps
#: Methods checked for finite, non-flat maps, per Keras 3 model (.keras upload); each must be offered.
MAP_METHODS = {
    "cnn_bn": ["gradient", "gradcam", "lrp.epsilon"],
    "arithmetic": ["gradient", "lrp.epsilon"],  # keras.ops arithmetic turned into Rescaling / Add layers
    "transfer": ["gradcam", "lrp.epsilon"],
    "ResNet50": ["gradcam", "lrp.epsilon"],
    "EfficientNetB0": ["gradient", "gradcam"],
    "MobileNetV3Small": ["gradient", "gradcam"],  # hard-swish written as Rescaling / ReLU / Multiply
    "seq_hard_swish": ["gradient", "gradcam"],  # the same in a Sequential model, rewritten as a Functional one
}


@pytest.mark.parametrize(("name", "method_id"), [(n, m) for n, ms in MAP_METHODS.items() for m in ms])
def test_maps_are_finite_and_not_flat(zoo, manifests, uploads, name, method_id):
    entry = manifests["keras3"][name]
    bundle = uploads.get("keras3", name)
    assert method_id in methods_for(bundle), unsupported_reason(bundle, method_id)
    x = _arrays(zoo, "keras3", entry)["x"][:2]
    maps = explain(bundle, method_id, x).maps
    assert maps.shape == (2, 1, entry["side"], entry["side"])
    assert np.all(np.isfinite(maps))
    assert np.all(maps.reshape(2, -1).std(axis=1) > 0), f"{method_id} gave a constant map"


RELU = [(f, n) for f, names in RECORDED.items() for n in names if n in keras3_zoo.RELU_MODELS]


@pytest.mark.parametrize(("flavour", "name"), RELU)
def test_lrp0_equals_gradient_times_input(zoo, manifests, uploads, flavour, name):
    """The identity LRP-0 = gradient × input of piecewise-linear (ReLU) networks, on each converted file."""
    entry = manifests[flavour][name]
    bundle = uploads.get(flavour, name)
    x = _arrays(zoo, flavour, entry)["x"][:2]
    lrp = explain(bundle, "lrp.z", x).raw
    ixg = explain(bundle, "input_t_gradient", x).raw
    assert np.abs(ixg).max() > 0
    assert _pearson(lrp, ixg).min() >= 0.99


@pytest.mark.parametrize("flavour", keras3_zoo.FLAVOURS)
@pytest.mark.parametrize("name", ["seq_augment", "func_augment"])
def test_augmentation_models_are_deterministic_and_equal_keras_inference(zoo, manifests, uploads, flavour, name):
    """RandomFlip / RandomRotation / RandomZoom inside the model: Keras runs them as the identity at inference; so
    must XAI Lens, for predictions and maps, every time (tf_keras's transform randomly in a graph fixed at
    inference unless called with training=False)."""
    entry = manifests[flavour][name]
    arrays = _arrays(zoo, flavour, entry)
    bundle = uploads.get(flavour, name)
    assert any(type(layer).__name__ == "RandomFlip" for layer in bundle.model.layers)
    first, second = bundle.predict(arrays["x"]), bundle.predict(arrays["x"])
    np.testing.assert_array_equal(first, second)
    assert_keras_predictions(bundle, entry, arrays)
    for method_id in ("gradient", "lrp.epsilon"):
        a = explain(bundle, method_id, arrays["x"][:2]).maps
        b = explain(bundle, method_id, arrays["x"][:2]).maps
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------- refusals
#: Refused model → (what its message must say, the zoo file that does what the message says, or None).
REFUSALS: dict[str, tuple[list[str], str | None]] = {
    "custom": (["custom layers ('my_scale' (MyScale))", "Rebuild the model from built-in keras.layers",
                "keras.layers.Rescaling", "set_weights()"], "custom_builtin"),
    "lambda": (["Lambda layer ('evil_lambda')", "Replace it with built-in Keras layers (e.g. Rescaling"],
               "lambda_builtin"),
    "raw_ops": (["'mean' (keras.ops.mean)", "GlobalAveragePooling2D instead of keras.ops.mean"], "raw_ops_layers"),
    "keras3_only": (["Keras 3 layers", "'auto_contrast' (AutoContrast)", "cannot be explained here"], None),
    "two_outputs": (["2 outputs ('species', 'healthy')", "keras.Model(model.inputs, model.outputs[0])"
                     ".save('model.keras')"], "two_outputs_first"),
    "two_inputs": (["2 inputs ('image', 'metadata')", "exactly one input, an image"], None),
    "dynamic": (["no fixed height and width", "inputs = keras.Input((224, 224, 3)); keras.Model(inputs, "
                 "model(inputs)).save('model.keras')"], "dynamic_fixed"),
}


@pytest.mark.parametrize(("flavour", "name", "fmt"), REFUSED_CASES)
def test_refusal_says_what_it_promises_and_its_hint_works(zoo, manifests, uploads, flavour, name, fmt):
    expected, route = REFUSALS[name]
    with pytest.raises(ModelLoadError) as info:
        load_user_model(uploads.path(flavour, name, fmt))
    message = str(info.value)
    for part in expected:
        assert part in message, message
    assert "{" not in message and "class_name" not in message and len(message) < 600, message  # no config dump
    marker = manifests[flavour][name].get("marker")
    if marker:
        assert not (zoo / flavour / marker).exists(), "the Lambda layer's code ran"
    if route:  # the file saved the way the message says loads, with Keras's predictions
        entry = manifests[flavour][route]
        bundle = uploads.get(flavour, route, fmt)
        assert_keras_predictions(bundle, entry, _arrays(zoo, flavour, entry))
        uploads.close(flavour, route, fmt)


@pytest.mark.parametrize("flavour", keras3_zoo.FLAVOURS)
def test_exported_savedmodel_gets_the_plain_sentence_and_its_hint_works(zoo, manifests, uploads, flavour):
    """``model.export()`` writes the computation only: the message says so and names the file to upload instead,
    and that file (the same model saved with model.save('model.keras')) loads."""
    entry = manifests[flavour]["cnn_bn"]
    with pytest.raises(ModelLoadError) as info:
        load_user_model(zoo / flavour / entry["export"])
    message = str(info.value)
    assert "holds no Keras layers" in message and "model.export()" in message
    assert "Upload the file written by model.save('model.keras') instead" in message
    assert_keras_predictions(uploads.get(flavour, "cnn_bn", "keras"), entry, _arrays(zoo, flavour, entry))


def test_format_help_names_routes_that_work(zoo, manifests, uploads):
    """The sentence every "not a model file" message ends with names two ways to save: both load (Keras 3 and
    tf_keras files, .keras and .h5)."""
    with pytest.raises(ModelLoadError) as info:
        load_user_model(b"whatever", "model.pt")
    assert "model.save('model.keras') (any Keras version; recommended) or model.save('model.h5')" in str(info.value)
    for flavour in keras3_zoo.FLAVOURS:
        entry = manifests[flavour]["seq_rescaling"]
        for fmt in FORMATS:
            assert_keras_predictions(uploads.get(flavour, "seq_rescaling", fmt), entry, _arrays(zoo, flavour, entry))


def test_every_keras3_activation_computes_what_keras3_computes_or_is_refused_by_name(zoo):
    """Each activation Keras 3 knows by name, alone and inside a Dense layer (the zoo saved both as Keras writes
    them): converted, tf_keras computes Keras 3's values, or the file is refused naming the activation. Keras 3's
    ``hard_sigmoid`` is not tf_keras's (0.08 apart) and tf_keras has no ``hard_silu``: both are written as layers."""
    import tensorflow as tf

    from xai_core.compat import keras as keras_compat
    from xai_core.models.keras_files import to_keras2

    recorded = json.loads((zoo / "keras3" / "activations.json").read_text())
    x = np.asarray(recorded["x"], np.float32)
    computed, refused = set(), set()
    for name, entry in recorded["activations"].items():
        for kind in ("alone", "dense"):
            try:
                config, _ = to_keras2(entry[kind], keras3=True)
            except ModelLoadError as exc:
                assert f"activation '{name}', which Keras 2 does not have" in str(exc), str(exc)
                refused.add(name)
                continue
            with tf.Graph().as_default(), tf.compat.v1.Session().as_default() as session, keras_compat.safe_mode():
                model = tf.keras.layers.deserialize(config, use_legacy_format=True)
                if kind == "dense":
                    dense = next(layer for layer in model.layers if isinstance(layer, tf.keras.layers.Dense))
                    keras_compat.write_variables(session, list(zip(keras_compat.layer_variables(dense),
                                                                   map(np.asarray, entry["weights"]))))
                ours = session.run(model.output, {model.input: x})
            np.testing.assert_allclose(ours, np.asarray(entry[f"y_{kind}"], np.float32), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name} ({kind})")
            computed.add(name)
    assert {"relu", "gelu", "silu", "hard_sigmoid", "hard_silu", "leaky_relu", "relu6", "softmax"} <= computed
    assert not computed & refused, computed & refused
    assert refused <= {"celu", "hard_shrink", "hard_tanh", "log_sigmoid", "soft_shrink", "sparse_plus",
                       "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink"}, refused


# ---------------------------------------------------------------------------------------------- every application
APP_CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "keras3_app_configs.json.gz"
#: Built in CI (a few seconds each); XAI_LENS_SLOW=1 builds all 40 (about 5 minutes).
CI_BUILDS = ["MobileNet", "ResNet50V2", "Xception"]


@pytest.fixture(scope="module")
def app_configs() -> dict[str, dict[str, Any]]:
    with gzip.open(APP_CONFIGS, "rt") as f:
        configs = json.load(f)
    configs.pop("__keras_version__")
    return configs


def test_every_keras3_application_converts_to_keras2(app_configs):
    """The architecture of every keras.applications network as Keras 3.15 saves it (scripts/
    record_keras3_app_configs.py) converts without refusal: ops in ConvNeXt and MobileNetV3, LayerScale, hard-swish,
    Normalization with constants, DepthwiseConv2D …"""
    from xai_core.models.keras_files import to_keras2

    assert len(app_configs) == 40
    for name, entry in app_configs.items():
        config, notes = to_keras2(entry["config"], keras3=True)
        assert config["class_name"] == "Functional" and not notes, name


def _app_names() -> list[str]:
    with gzip.open(APP_CONFIGS, "rt") as f:
        return sorted(n for n in json.load(f) if not n.startswith("__"))


@pytest.mark.parametrize("name", _app_names() if SLOW else CI_BUILDS)
def test_keras3_application_builds_with_every_weight(app_configs, name):
    """tf_keras builds the converted architecture with exactly the weights Keras 3 made (shapes are then checked
    weight by weight when a file is read)."""
    import tensorflow as tf

    from xai_core.compat import keras as keras_compat
    from xai_core.models.keras_files import to_keras2

    entry = app_configs[name]
    config, _ = to_keras2(entry["config"], keras3=True)
    with tf.Graph().as_default(), keras_compat.safe_mode():
        model = tf.keras.layers.deserialize(config, use_legacy_format=True)
        assert int(sum(v.shape.num_elements() for v in model.weights)) == entry["weights"]
