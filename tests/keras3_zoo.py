"""A zoo of model files written by today's Keras, the way users write them, with Keras's own outputs.

Since TensorFlow 2.16 ``tf.keras`` is Keras 3: users upload ``.keras`` and ``.h5`` files written by Keras 3.x, or by
tf_keras ≥ 2.16 (the Keras 2 API). Both are installed here (Keras 3 is TensorFlow's own dependency), so each
*flavour* is built in a subprocess of its own: ``TF_USE_LEGACY_KERAS=0`` gives real Keras 3, ``=1`` tf_keras 2.21
(the variable must be set before TensorFlow is first imported, which is why it cannot be the test process).

Every model is built with ``weights=None`` at small inputs, its BatchNormalization layers given trained-like
statistics (random γ, β; moving mean and variance = the real statistics of their input on a batch, as in
tests/zoo.py), saved with ``model.save("<name>.keras")`` and ``model.save("<name>.h5")``, and run by Keras itself
on fixed images (``model(x, training=False)``, i.e. inference): ``<name>.npz`` holds ``x`` (raw pixels), ``y``
(the model's output on ``x`` prepared as its ``preprocess`` says) and ``logits`` (the scores before the softmax).
``manifest.json`` lists every model and what the tests expect of it.

Run (what :func:`build` does, one subprocess per flavour, in parallel)::

    python tests/keras3_zoo.py OUT_DIR keras3|tf_keras [--slow]

:func:`build` caches the result under ``artifacts/keras3-zoo/<key>/``; the key hashes this file and the installed
versions of TensorFlow, Keras and tf_keras, so an edit here or an upgrade rebuilds it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

FLAVOURS = ("keras3", "tf_keras")
#: keras.applications networks saved by Keras 3: (name, side, preprocessing, seed). ResNet50 at 64 px (its last
#: block 2×2, so Grad-CAM is not a single cell); the rest at their smallest input.
APPLICATIONS = [("ResNet50", 64, "caffe", 20), ("DenseNet121", 32, "torch", 21), ("EfficientNetB0", 32, "raw", 22),
                ("VGG16", 32, "caffe", 23), ("MobileNetV3Small", 32, "raw", 24)]
#: Built only for ``XAI_LENS_SLOW=1`` (ConvNeXt: Keras 3's LayerScale and keras.ops additions; 19 s to build).
SLOW_APPLICATIONS = [("ConvNeXtTiny", 32, "raw", 25)]
#: Models each flavour records (saved, run by Keras) and refuses (saved only), as the tests expect them.
SMALL = ["cnn_bn", "seq_rescaling", "seq_augment", "func_augment", "transfer", "preproc", "mixed", "custom_builtin",
         "lambda_builtin", "arithmetic", "dynamic_fixed", "nested_sequential", "two_outputs_first"]
RECORDED = {"keras3": [*SMALL, "raw_ops_layers", "seq_hard_swish", *(a[0] for a in APPLICATIONS)],
            "tf_keras": SMALL}
SLOW_RECORDED = {"keras3": [a[0] for a in SLOW_APPLICATIONS], "tf_keras": []}
#: Piecewise-linear (ReLU) networks, where LRP-0 must equal gradient × input.
RELU_MODELS = frozenset({*SMALL, "raw_ops_layers", "ResNet50", "DenseNet121", "VGG16"})
REFUSED = {"keras3": ["custom", "lambda", "dynamic", "two_outputs", "two_inputs", "raw_ops", "keras3_only"],
           "tf_keras": ["custom", "lambda", "dynamic", "two_outputs", "two_inputs"]}
REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE = REPO_ROOT / "artifacts" / "keras3-zoo"
N_IMAGES = 4


# ---------------------------------------------------------------------------------------------- the test side
def cache_key() -> str:
    versions = [metadata.version(p) for p in ("tensorflow", "keras", "tf_keras")]
    digest = hashlib.sha256(Path(__file__).read_bytes() + json.dumps(versions).encode()).hexdigest()
    return digest[:16]


def build(cache: Path = CACHE, slow: bool = False, timeout_s: float = 900) -> Path:
    """The zoo's folder (``<flavour>/manifest.json`` …), built once per key: both flavours in parallel
    subprocesses, into a temporary folder renamed when both succeeded. ``slow``: also :data:`SLOW_APPLICATIONS`."""
    folder = cache / (cache_key() + ("-slow" if slow else ""))
    if all((folder / f / "manifest.json").is_file() for f in FLAVOURS):
        return folder
    tmp = cache / f"{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    procs = {f: subprocess.Popen([sys.executable, __file__, str(tmp / f), f, *(["--slow"] if slow else [])], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for f in FLAVOURS}
    failed = {}
    try:
        for flavour, proc in procs.items():
            out, _ = proc.communicate(timeout=timeout_s)
            if proc.returncode != 0:
                failed[flavour] = out[-4000:]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if failed or any(p.returncode != 0 for p in procs.values()):
            shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        raise RuntimeError(f"building the Keras 3 zoo failed: {failed}")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    for stale in cache.iterdir():  # zoos of an older key (~0.65 GB each)
        if stale != folder and stale.is_dir() and ".tmp-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    return folder


def manifest(folder: Path, flavour: str) -> dict[str, dict[str, Any]]:
    return json.loads((folder / flavour / "manifest.json").read_text())


# ---------------------------------------------------------------------------------------------- the builder side
def _images(n: int, side: int, seed: int) -> Any:
    """Smooth image-like pixels in [0, 255] (random colour fields, bicubically enlarged, a little noise)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 5, 5, 3)).astype(np.float32) * 255
    smooth = tf.image.resize(coarse, (side, side), method="bicubic").numpy()
    return np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255).astype(np.float32)


class Builder:
    """Builds and records every model of one flavour (``keras``: the Keras module of the flavour)."""

    def __init__(self, out: Path, flavour: str) -> None:
        import numpy as np
        import tensorflow as tf

        self.np, self.tf = np, tf
        # what a user imports: ``import keras`` (Keras 3), ``import tf_keras`` (the Keras 2 API of TF >= 2.16)
        self.keras: Any = importlib.import_module("keras" if flavour == "keras3" else "tf_keras")
        assert tf.keras.layers.Layer.__module__.split(".")[0] == self.keras.__name__
        self.out, self.flavour = out, flavour
        self.version = self.keras.__version__ if flavour == "keras3" else metadata.version("tf_keras")
        self.entries: dict[str, dict[str, Any]] = {}
        out.mkdir(parents=True, exist_ok=True)

    # -------------------------------------------------------------------------------------- helpers
    def calibrate(self, model: Any, x: Any, seed: int) -> int:
        """Random γ, β; moving statistics = the real statistics of each BN input on ``x`` (one pass in training
        mode, where every BN normalises by its batch, so all are calibrated at once). Top-level BN layers only."""
        np, keras = self.np, self.keras
        rng = np.random.default_rng(seed)
        bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        if not bns:
            return 0
        for bn in bns:
            n = bn.moving_mean.shape
            if bn.gamma is not None:
                bn.gamma.assign(rng.uniform(0.6, 1.4, n).astype(np.float32))
            if bn.beta is not None:
                bn.beta.assign(rng.normal(0.0, 0.2, n).astype(np.float32))
            bn.moving_mean.assign(np.zeros(n, np.float32))
            bn.moving_variance.assign(np.ones(n, np.float32))
        probe = keras.Model(model.inputs, [bn.input for bn in bns])
        inputs = probe(x, training=True)
        inputs = inputs if isinstance(inputs, list | tuple) else [inputs]
        for bn, t in zip(bns, inputs):
            t = np.asarray(t, dtype=np.float64)
            axes = tuple(range(t.ndim - 1))
            bn.moving_mean.assign(t.mean(axis=axes).astype(np.float32))
            bn.moving_variance.assign(t.var(axis=axes).astype(np.float32))
        return len(bns)

    def train_briefly(self, model: Any, x: Any, seed: int, loss: Any = "sparse_categorical_crossentropy") -> None:
        """Compile and fit one epoch, as a user's script does before saving: the file then also holds the optimizer's
        state and the compile config, and the BatchNorm statistics are the ones training left."""
        np = self.np
        classes = int(model.outputs[0].shape[-1])
        labels = np.random.default_rng(seed).integers(0, classes, len(x))
        model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
        model.fit(x, labels, epochs=1, batch_size=8, verbose=0)

    def logits(self, model: Any, x: Any) -> Any:
        """The scores before the output softmax (the output itself for a linear head)."""
        keras, np = self.keras, self.np
        last = model.layers[-1]
        act = getattr(last, "activation", None)
        act_name = getattr(act, "__name__", "")
        if isinstance(last, keras.layers.Softmax) or (isinstance(last, keras.layers.Activation)
                                                        and act_name == "softmax"):
            return keras.Model(model.inputs, last.input)(x, training=False).numpy()
        if isinstance(last, keras.layers.Dense) and act_name == "softmax":
            features = keras.Model(model.inputs, last.input)(x, training=False).numpy()
            dtype = np.result_type(features.dtype, np.float32)
            return features @ np.asarray(last.kernel, dtype) + np.asarray(last.bias, dtype)
        return self.np.asarray(model(x, training=False))

    def record(self, name: str, model: Any, *, side: int, preprocess: str = "unit", formats: tuple[str, ...] = (
            "keras", "h5"), seed: int = 0, **expect: Any) -> dict[str, Any]:
        """Save ``model`` in each format, run it on fixed images, write ``<name>.npz`` and its manifest entry.

        ``preprocess``: what turns raw pixels into the model's input, as XAI Lens names it (``unit`` = / 255,
        ``raw``, or an application's ``preprocess_input``: ``caffe``, ``torch``, ``symmetric``)."""
        np = self.np
        x = _images(N_IMAGES, side, seed=100 + seed)
        files = {}
        for fmt in formats:
            path = self.out / f"{name}.{fmt}"
            model.save(path)
            files[fmt] = path.name
        prepared = self.prepare(x, preprocess)
        y = np.asarray(model(prepared, training=False))
        predicted = np.asarray(model.predict(prepared, verbose=0))
        arrays = {"x": x, "y": y, "y_predict": predicted, "logits": self.logits(model, prepared)}
        try:
            twin = self.float64_twin(model)
            arrays.update(y64=np.asarray(twin(prepared.astype(np.float64), training=False)),
                          logits64=self.logits(twin, prepared.astype(np.float64)))
        except TypeError:  # tf_keras's TFOpLambda keeps float32 constants: no twin (the tests then use Keras's y)
            pass
        arrays.update({k: v for k, v in expect.items() if isinstance(v, np.ndarray)})
        np.savez(self.out / f"{name}.npz", **arrays)
        entry = {"name": name, "flavour": self.flavour, "keras_version": self.version, "files": files,
                 "relu": name in RELU_MODELS,
                 "arrays": f"{name}.npz", "side": side, "preprocess": preprocess,
                 "layers": len(model.layers), "weights": int(sum(np.prod(w.shape) for w in model.weights)),
                 **{k: v for k, v in expect.items() if not isinstance(v, np.ndarray)}}
        self.entries[name] = entry
        return entry

    def float64_twin(self, model: Any) -> Any:
        """The same model and weights computing in float64: the exact answer Keras's float32 output approximates
        (the yardstick for deep networks, where float32 results of two correct implementations differ by more
        than 1e-5)."""
        keras, np = self.keras, self.np
        config = keras.saving.serialize_keras_object(model) if self.flavour == "keras3" else json.loads(
            model.to_json())

        def widen(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "dtype" and isinstance(value, str) and value.startswith(("float", "mixed_")):
                        node[key] = "float64"
                    elif key == "dtype" and isinstance(value, dict) and isinstance(value.get("config"), dict):
                        value["config"]["name"] = "float64"
                    else:
                        widen(value)
            elif isinstance(node, list):
                for value in node:
                    widen(value)

        widen(config)
        twin = (keras.saving.deserialize_keras_object(config) if self.flavour == "keras3"
                else keras.models.model_from_json(json.dumps(config)))
        twin.set_weights([np.asarray(w, np.float64) for w in model.get_weights()])
        for layer in twin.layers:  # Keras 3's Normalization reads its statistics from its variables only here
            if self.flavour == "keras3" and hasattr(layer, "finalize_state") and layer.weights:
                layer.finalize_state()
        assert all(w.dtype == "float64" for w in twin.weights if w.dtype != "int64"), model.name
        return twin

    def prepare(self, x: Any, preprocess: str) -> Any:
        apps = self.keras.applications
        if preprocess == "unit":
            return x / 255.0
        if preprocess == "raw":
            return x
        module = {"caffe": apps.resnet50, "torch": apps.densenet, "symmetric": apps.mobilenet_v2}[preprocess]
        return module.preprocess_input(x.copy())

    def refused(self, name: str, model: Any, side: int, **expect: Any) -> None:
        """A model XAI Lens must refuse: saved in both formats, no outputs recorded."""
        files = {}
        for fmt in ("keras", "h5"):
            model.save(self.out / f"{name}.{fmt}")
            files[fmt] = f"{name}.{fmt}"
        self.entries[name] = {"name": name, "flavour": self.flavour, "keras_version": self.version, "files": files,
                              "side": side, "refused": True, **expect}

    def write_manifest(self) -> None:
        (self.out / "manifest.json").write_text(json.dumps(self.entries, indent=1))

    # -------------------------------------------------------------------------------------- models
    def conv_bn_net(self, side: int, classes: int = 3, seed: int = 0, name: str = "cnn_bn") -> Any:
        """Functional CNN: Conv-BN-ReLU ×2, max pooling, global average pooling, Dense softmax."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(seed)
        inp = keras.Input((side, side, 3), name="image")
        x = layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
        x = layers.BatchNormalization(name="bn1")(x)
        x = layers.Activation("relu", name="relu1")(x)
        x = layers.MaxPooling2D(name="pool1")(x)
        x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv2")(x)
        x = layers.BatchNormalization(name="bn2")(x)
        x = layers.ReLU(name="relu2")(x)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        out = layers.Dense(classes, activation="softmax", name="scores", dtype="float32")(x)
        return keras.Model(inp, out, name=name)

    def cnn_bn(self) -> None:
        side = 32
        model = self.conv_bn_net(side)
        self.calibrate(model, _images(16, side, 1) / 255.0, 0)
        self.train_briefly(model, _images(16, side, 2) / 255.0, 0)
        self.record("cnn_bn", model, side=side, head="softmax")
        # model.export(): a SavedModel of the computation only, zipped as a user would upload it
        export = self.out / "cnn_bn_export"
        model.export(str(export))
        with zipfile.ZipFile(self.out / "cnn_bn_export.zip", "w") as zf:
            for p in sorted(export.rglob("*")):
                zf.write(p, f"{export.name}/{p.relative_to(export).as_posix()}")
        shutil.rmtree(export)
        self.entries["cnn_bn"]["export"] = "cnn_bn_export.zip"

    def seq_rescaling(self) -> None:
        """Sequential with Rescaling, a logits head (no softmax)."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(1)
        side = 32
        model = keras.Sequential([
            keras.Input((side, side, 3)),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(4),
        ], name="seq_rescaling")
        self.record("seq_rescaling", model, side=side, preprocess="raw", head="none")

    def seq_augment(self) -> None:
        """TensorFlow's "Image classification" tutorial: a Sequential augmentation block inside a Sequential."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(2)
        side = 32
        augmentation = keras.Sequential([
            layers.RandomFlip("horizontal", input_shape=(side, side, 3)),  # as the tutorial writes it
            layers.RandomRotation(0.1),
            layers.RandomZoom(0.1),
        ], name="data_augmentation")
        model = keras.Sequential([
            augmentation,
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Dropout(0.2),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(5, name="outputs"),
        ], name="seq_augment")
        self.record("seq_augment", model, side=side, preprocess="raw", head="none", augmentation=True)

    def func_augment(self) -> None:
        """Keras's "Image classification from scratch": augmentation inside a Functional model, residual blocks
        of separable convolutions, Dropout, a logits head."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(3)
        side = 32
        augmentation = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1),
                                         layers.RandomZoom(0.1)], name="data_augmentation")
        inputs = keras.Input((side, side, 3))
        x = augmentation(inputs)
        x = layers.Rescaling(1.0 / 255)(x)
        x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        previous = x
        for size in (16, 32):
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(size, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(size, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
            residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous)
            x = layers.add([x, residual])
            previous = x
        x = layers.SeparableConv2D(48, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dropout(0.25)(x)
        outputs = layers.Dense(3, activation=None)(x)
        model = keras.Model(inputs, outputs, name="func_augment")
        self.calibrate(model, _images(16, side, 3), 3)
        from_logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.train_briefly(model, _images(16, side, 31), 3, loss=from_logits)
        self.record("func_augment", model, side=side, preprocess="raw", head="none", augmentation=True)

    def transfer(self) -> None:
        """The transfer-learning shape: inputs → Rescaling → frozen MobileNetV2(x, training=False) → pooling →
        Dropout → Dense."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(4)
        side = 32
        base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(side, side, 3))
        self.calibrate(base, _images(16, side, 4) / 127.5 - 1, 4)
        base.trainable = False
        inputs = keras.Input((side, side, 3))
        x = layers.Rescaling(1.0 / 127.5, offset=-1)(inputs)
        x = base(x, training=False)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dropout(0.2)(x)
        outputs = layers.Dense(3, activation="softmax")(x)
        model = keras.Model(inputs, outputs, name="transfer")
        self.record("transfer", model, side=side, preprocess="raw", head="softmax", nested=True)

    def preproc(self) -> None:
        """Preprocessing layers inside the model: Resizing, CenterCrop, an adapted Normalization; an Activation
        softmax head."""
        keras, layers, np = self.keras, self.keras.layers, self.np
        keras.utils.set_random_seed(5)
        normalization = layers.Normalization()
        normalization.adapt(_images(16, 28, 5))
        inputs = keras.Input((40, 40, 3))
        x = layers.Resizing(32, 32)(inputs)
        x = layers.CenterCrop(28, 28)(x)
        x = normalization(x)
        x = layers.Conv2D(8, 3, activation="relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(3)(x)
        outputs = layers.Activation("softmax")(x)
        model = keras.Model(inputs, outputs, name="preproc")
        mean = np.asarray(normalization.mean).ravel()
        assert np.abs(mean).max() > 10, "Normalization was not adapted"
        self.record("preproc", model, side=40, preprocess="raw", head="softmax")

    def mixed(self) -> None:
        """A mixed-precision (float16) CNN: Keras computes in float16, XAI Lens in float32; the float64 twin of the
        same weights is the reference for both."""
        keras = self.keras
        side = 32
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            model = self.conv_bn_net(side, seed=6, name="mixed")
            self.calibrate(model, _images(16, side, 6) / 255.0, 6)
            self.train_briefly(model, _images(16, side, 61) / 255.0, 6)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        self.record("mixed", model, side=side, seed=6, head="softmax", mixed=True)

    def application(self, name: str, side: int, preprocess: str, seed: int) -> None:
        keras = self.keras
        keras.utils.set_random_seed(seed)
        model = getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3))
        self.calibrate(model, self.prepare(_images(16, side, seed), preprocess), seed)
        self.record(name, model, side=side, preprocess=preprocess, seed=seed, head="softmax",
                    architecture=name)

    def custom(self) -> None:
        """A custom layer (refused, named) and what the message says to do: the same model rebuilt from built-in
        layers, the trained weights copied over with set_weights()."""
        keras, layers = self.keras, self.keras.layers
        register = keras.saving.register_keras_serializable

        @register(package="zoo")
        class MyScale(layers.Layer):
            def __init__(self, factor: float = 1.0, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.factor = factor

            def call(self, x: Any) -> Any:
                return x * self.factor

            def get_config(self) -> dict[str, Any]:
                return {**super().get_config(), "factor": self.factor}

        custom = self.small_net(MyScale(1 / 255.0, name="my_scale"), seed=7)
        self.refused("custom", custom, 16, layer="my_scale", cls="MyScale")
        builtin = self.small_net(layers.Rescaling(1 / 255.0, name="my_scale"), seed=70)
        builtin.set_weights(custom.get_weights())
        self.record("custom_builtin", builtin, side=16, preprocess="raw", head="softmax")

    def small_net(self, first: Any, seed: int, side: int = 16) -> Any:
        """``first`` layer → Conv2D ReLU → global average pooling → Dense softmax."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(seed)
        inputs = keras.Input((side, side, 3))
        x = layers.Conv2D(4, 3, activation="relu", name="conv")(first(inputs))
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(inputs, layers.Dense(3, activation="softmax", name="scores")(x))

    def lambda_layer(self) -> None:
        """A Lambda layer (refused; its Python code must never run while XAI Lens reads the file), and what the
        message says to do: the same model with built-in layers, weights copied."""
        layers = self.keras.layers
        marker = str(self.out / "lambda_ran.txt")

        def body(x: Any, path: str = marker) -> Any:
            import pathlib

            pathlib.Path(path).write_text("the lambda body ran")
            return x / 255.0

        model = self.small_net(layers.Lambda(body, name="evil_lambda"), seed=8)
        self.refused("lambda", model, 16, layer="evil_lambda", marker="lambda_ran.txt")
        builtin = self.small_net(layers.Rescaling(1 / 255.0), seed=80)
        builtin.set_weights(model.get_weights())
        self.record("lambda_builtin", builtin, side=16, preprocess="raw", head="softmax")
        Path(marker).unlink(missing_ok=True)

    def arithmetic(self) -> None:
        """Arithmetic written with Python operators in a functional model, as people do (``x * (1 / 255)``,
        ``x - 0.5``, ``1.0 - x``, a residual ``a + b``): ``keras.ops`` calls in Keras 3, TFOpLambda layers in
        tf_keras. Keras 3's own applications do it too (ConvNeXt, MobileNetV3)."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(9)
        inputs = keras.Input((16, 16, 3))
        x = inputs * (1 / 255.0)
        x = 1.0 - (x - 0.5)
        a = layers.Conv2D(6, 3, activation="relu")(x)
        b = layers.Conv2D(6, 3, padding="same", activation="relu")(a)
        x = layers.GlobalAveragePooling2D()(a + b)
        self.record("arithmetic", keras.Model(inputs, layers.Dense(3)(x)), side=16, preprocess="raw", head="none")

    def raw_ops(self) -> None:
        """Keras 3 only: a ``keras.ops`` call with no Keras 2 layer (refused, named), and what the message says to
        do: the same with a layer (keras.ops.mean over height and width → GlobalAveragePooling2D)."""
        keras, layers = self.keras, self.keras.layers

        def net(use_ops: bool) -> Any:
            keras.utils.set_random_seed(10)
            inputs = keras.Input((16, 16, 3))
            x = layers.Conv2D(4, 3, activation="relu")(layers.Rescaling(1 / 255.0)(inputs))
            x = keras.ops.mean(x, axis=(1, 2)) if use_ops else layers.GlobalAveragePooling2D()(x)
            return keras.Model(inputs, layers.Dense(3)(x))

        self.refused("raw_ops", net(True), 16, op="mean")
        self.record("raw_ops_layers", net(False), side=16, preprocess="raw", head="none")

    def keras3_only(self) -> None:
        """Keras 3 only: AutoContrast, a preprocessing layer that acts at inference and tf_keras lacks (refused)."""
        keras, layers = self.keras, self.keras.layers
        self.refused("keras3_only", self.small_net(layers.AutoContrast(value_range=(0, 255)), seed=11), 16,
                     layer="auto_contrast", cls="AutoContrast")
        assert keras.__version__.startswith("3.")

    def dynamic(self) -> None:
        """An input of any size (refused: maps need a fixed size), and what the message says to do: the model
        called on a fixed-size keras.Input, saved again."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(12)
        inputs = keras.Input((None, None, 3))
        x = layers.Conv2D(4, 3, activation="relu")(layers.Rescaling(1 / 255.0)(inputs))
        model = keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)), name="any_size")
        self.refused("dynamic", model, 16)
        fixed = keras.Input((24, 24, 3))
        self.record("dynamic_fixed", keras.Model(fixed, model(fixed)), side=24, preprocess="raw", head="none",
                    nested=True)

    def nested_sequential(self) -> None:
        """A Sequential model (with its Input) called by a Functional one and giving its output."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(14)
        body = keras.Sequential([keras.Input((16, 16, 3)), layers.Rescaling(1 / 255.0),
                                 layers.Conv2D(4, 3, activation="relu"), layers.GlobalAveragePooling2D(),
                                 layers.Dense(3)], name="body")
        inputs = keras.Input((16, 16, 3))
        self.record("nested_sequential", keras.Model(inputs, body(inputs)), side=16, preprocess="raw",
                    head="none", nested=True)

    def seq_hard_swish(self) -> None:
        """A Sequential CNN with Keras 3's hard-swish and hard-sigmoid activations inside its layers."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(15)
        model = keras.Sequential([keras.Input((16, 16, 3)), layers.Rescaling(1 / 255.0),
                                  layers.Conv2D(6, 3, activation="hard_swish"), layers.GlobalAveragePooling2D(),
                                  layers.Dense(3, activation="hard_sigmoid")], name="seq_hard_swish")
        self.record("seq_hard_swish", model, side=16, preprocess="raw", head="none")

    def activations(self) -> None:
        """Every activation Keras 3 knows by name, on a grid: alone (an Activation layer) and inside a Dense layer,
        each saved as the architecture Keras writes (``activations.json``) with Keras's outputs."""
        keras, layers, np = self.keras, self.keras.layers, self.np
        x = np.linspace(-8, 8, 65, dtype=np.float32)[None, :]
        out: dict[str, Any] = {"x": x.tolist(), "activations": {}}
        for name in sorted(n for n in dir(keras.activations) if n[:1].islower() and n not in (
                "get", "serialize", "deserialize")):
            keras.utils.set_random_seed(16)
            inputs = keras.Input((65,))
            try:
                alone = keras.Model(inputs, layers.Activation(name)(inputs))
                dense = keras.Model(inputs, layers.Dense(4, activation=name)(inputs))
                values = {"y_alone": np.asarray(alone(x)).tolist(), "y_dense": np.asarray(dense(x)).tolist()}
            except Exception:  # glu, threshold: need more than one argument
                continue
            serialize = keras.saving.serialize_keras_object
            out["activations"][name] = {"alone": serialize(alone), "dense": serialize(dense),
                                        "weights": [w.tolist() for w in dense.get_weights()], **values}
        (self.out / "activations.json").write_text(json.dumps(out))

    def several_ends(self) -> None:
        """Two outputs (refused; the message says to save a one-output model, which then loads) and two inputs."""
        keras, layers = self.keras, self.keras.layers
        keras.utils.set_random_seed(13)
        inputs = keras.Input((16, 16, 3), name="image")
        x = layers.Rescaling(1 / 255.0)(inputs)
        x = layers.Conv2D(4, 3, activation="relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
        two = keras.Model(inputs, [layers.Dense(3, name="species")(x), layers.Dense(2, name="healthy")(x)])
        self.refused("two_outputs", two, 16, outputs=["species", "healthy"])
        first = keras.Model(two.inputs, two.outputs[0])  # what the message says to save
        self.record("two_outputs_first", first, side=16, preprocess="raw", head="none")
        image = keras.Input((16, 16, 3), name="image")
        extra = keras.Input((2,), name="metadata")
        y = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3)(image))
        y = layers.Dense(3)(layers.Concatenate()([y, extra]))
        self.refused("two_inputs", keras.Model([image, extra], y), 16, inputs=["image", "metadata"])


def main(out: Path, flavour: str, slow: bool) -> None:
    builder = Builder(out, flavour)
    steps = [builder.cnn_bn, builder.seq_rescaling, builder.seq_augment, builder.func_augment, builder.transfer,
             builder.preproc, builder.mixed, builder.custom, builder.lambda_layer, builder.arithmetic,
             builder.dynamic, builder.nested_sequential, builder.several_ends]
    if flavour == "keras3":
        steps += [builder.raw_ops, builder.keras3_only, builder.seq_hard_swish, builder.activations]
        steps += [functools.partial(builder.application, *args)
                  for args in APPLICATIONS + (SLOW_APPLICATIONS if slow else [])]
    for step in steps:
        start = time.perf_counter()
        step()
        what = step.args[0] if isinstance(step, functools.partial) else step.__name__
        print(f"{flavour}: {what} {time.perf_counter() - start:.1f} s", flush=True)
    expected = {*RECORDED[flavour], *REFUSED[flavour], *(SLOW_RECORDED[flavour] if slow else [])}
    assert set(builder.entries) == expected, set(builder.entries) ^ expected
    builder.write_manifest()


if __name__ == "__main__":
    target, kind = Path(sys.argv[1]), sys.argv[2]
    if kind not in FLAVOURS:
        raise SystemExit(f"flavour must be one of {FLAVOURS}, not {kind!r}")
    os.environ["TF_USE_LEGACY_KERAS"] = "0" if kind == "keras3" else "1"  # before TensorFlow is imported
    main(target, kind, "--slow" in sys.argv[3:])
