"""Uploaded model files (xai_core.models.upload): formats, damaged and hostile files, Lambda layers,
preprocessing and class names.

Small models are built and saved in **eager** mode (the ``files`` fixture in conftest.py, helpers in
``model_files``), then loaded through XAI Lens in graph mode.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from model_files import make_zip

from xai_core.errors import InvalidParameterError, ModelLoadError
from xai_core.models.imagenet import imagenet_class_names
from xai_core.models.upload import find_lambda_layers, load_user_model


# ---------------------------------------------------------------------------------------------- bad uploads
@pytest.mark.parametrize(("filename", "message"), [
    ("random.keras", "not a model file: a .keras model is a zip archive"),
    ("random.h5", "not a model file: a .h5 model is an HDF5 file"),
    ("random.zip", "not a model file"),
])
def test_random_bytes_are_not_a_model(filename: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_user_model(np.random.default_rng(1).bytes(5000), filename)


def test_text_renamed_keras(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_text("hello, I am a text file\n")
    with pytest.raises(ModelLoadError, match=r"holds text \('hello, I am a text file'"):
        load_user_model(path)


def test_unknown_extension_and_missing_name() -> None:
    with pytest.raises(ModelLoadError, match=r"unsupported file type '\.pt'.*\.keras, \.h5, \.hdf5, \.zip"):
        load_user_model(b"whatever", "model.pt")
    with pytest.raises(ModelLoadError, match="name is needed"):
        load_user_model(b"whatever")
    with pytest.raises(ModelLoadError, match="is empty"):
        load_user_model(b"", "model.h5")


@pytest.mark.parametrize("filename", ["cnn.keras", "cnn.h5"])
def test_truncated_files_are_damaged(files: dict[str, Any], filename: str) -> None:
    data = (files["dir"] / filename).read_bytes()
    with pytest.raises(ModelLoadError, match="damaged"):
        load_user_model(data[: len(data) // 2], filename)


def test_weights_only_h5_and_zip_without_model(files: dict[str, Any]) -> None:
    with pytest.raises(ModelLoadError, match="holds only weights"):
        load_user_model(files["dir"] / "weights_only.h5")
    with pytest.raises(ModelLoadError, match="neither a Keras model .* nor a TensorFlow SavedModel"):
        load_user_model(make_zip({"readme.txt": b"hi"}), "model.zip")


@pytest.mark.parametrize("filename", ["lambda.keras", "lambda.h5", "lambda_sm.zip"])
def test_lambda_layer_is_refused_and_never_runs(files: dict[str, Any], filename: str) -> None:
    marker: Path = files["marker"]
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match="contains a Lambda layer \\('evil_lambda'\\)"):
        load_user_model(files["dir"] / filename)
    assert not marker.exists(), "the Lambda body was executed"


def test_lambda_in_h5_is_stopped_by_safe_mode_even_without_the_scan(
        files: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Second line of defence: with the config scan switched off, the file reader refuses the Lambda itself (and
    builds layers inside Keras' SafeModeScope); the Lambda never runs."""
    import xai_core.models.upload as upload

    monkeypatch.setattr(upload, "_check_config", lambda file, filename: None)
    marker: Path = files["marker"]
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match="'evil_lambda' is a Lambda layer, which holds Python code"):
        load_user_model(files["dir"] / "lambda.h5")
    assert not marker.exists()


@pytest.mark.parametrize("filename", ["lambda.keras", "lambda.h5"])
def test_lambda_marker_proves_keras_would_run_it(files: dict[str, Any], filename: str) -> None:
    """Control: loading the same file with plain Keras (unsafe) runs the body and leaves the marker."""
    marker: Path = files["marker"]
    marker.unlink(missing_ok=True)
    with tf.Graph().as_default():
        tf.keras.models.load_model(files["dir"] / filename, compile=False, safe_mode=False)
    assert marker.exists()
    marker.unlink()


def test_find_lambda_layers_inside_wrappers() -> None:
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "TimeDistributed", "config": {"layer": {"class_name": "Lambda", "config": {"name": "a"}}}},
        {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "b"}}]}},
        {"class_name": "TFOpLambda", "config": {"name": "tf.math.add"}},
    ]}}
    assert find_lambda_layers(config) == ["a", "b"]
    assert find_lambda_layers({"class_name": "Dense", "config": {"name": "Lambda"}}) == []


def test_keras_errors_are_wrapped(files: dict[str, Any]) -> None:
    data = bytearray((files["dir"] / "cnn.keras").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries["config.json"] = entries["config.json"].replace(b'"Conv2D"', b'"MyFancyConv"')
    with pytest.raises(ModelLoadError, match=r"custom layers \('conv' \(MyFancyConv\)\)"):
        load_user_model(make_zip(entries), "custom.keras")
    # a config Keras itself rejects: the original message is appended to ours
    entries["config.json"] = entries["config.json"].replace(b'"MyFancyConv"', b'"Conv2D"').replace(
        b'"kernel_size"', b'"kernel_sighs"')
    with pytest.raises(ModelLoadError, match="Keras could not build the model from its architecture: .*kernel_sighs"):
        load_user_model(make_zip(entries), "broken.keras")


def test_bad_preprocessing_choice() -> None:
    with pytest.raises(InvalidParameterError, match="Unknown preprocessing 'imagenet'.*auto, unit"):
        load_user_model(b"never read", "m.keras", preprocessing="imagenet")


# ---------------------------------------------------------------------------------------------- good uploads
@pytest.mark.parametrize(("filename", "fmt"), [("cnn.keras", "keras"), ("cnn.h5", "h5"), ("sm.zip", "savedmodel")])
def test_round_trip_predictions_are_identical(files: dict[str, Any], filename: str, fmt: str) -> None:
    path = files["dir"] / filename
    bundle = load_user_model(path.read_bytes(), filename)  # as from st.file_uploader
    assert bundle.info["format"] == fmt and bundle.source == "upload" and bundle.name == Path(filename).stem
    assert bundle.head == "softmax" and bundle.preprocessing.name == "unit"
    assert bundle.class_names == ["class 0", "class 1", "class 2"]
    assert bundle.info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # the report names the file by it
    np.testing.assert_allclose(bundle.predict(files["x"]), files["ref"], rtol=1e-5, atol=1e-6)


def test_auto_preprocessing_and_explicit_choice(files: dict[str, Any]) -> None:
    raw = load_user_model(files["dir"] / "rescale.h5")
    assert raw.preprocessing.name == "raw"
    np.testing.assert_allclose(raw.predict(files["x"]), files["ref_rescale"], rtol=1e-5, atol=1e-6)
    caffe = load_user_model(files["dir"] / "cnn.h5", preprocessing="caffe", name="mine")
    assert caffe.preprocessing.name == "caffe" and caffe.name == "mine"
    assert caffe.info["preprocessing_auto"] is False


def test_class_names(files: dict[str, Any]) -> None:
    assert load_user_model(files["dir"] / "k1000.h5").class_names == imagenet_class_names()
    named = load_user_model(files["dir"] / "cnn.h5", class_names=["cat", "dog", "bird"])
    assert named.class_names == ["cat", "dog", "bird"]
    with pytest.raises(ModelLoadError, match="3 outputs but 2 class names"):
        load_user_model(files["dir"] / "cnn.h5", class_names=["cat", "dog"])
