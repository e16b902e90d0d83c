"""Train the embedded demo models and write ``xai_core/assets/models/``.

    .venv/bin/python scripts/train_demo_models.py                 # all five models (~8 min on 2 CPU cores)
    .venv/bin/python scripts/train_demo_models.py --only shapes_cnn

Models: a plain CNN and a small ResNet (BatchNormalization, ``Add`` skip connections) on the digits and shapes
demo sets (:mod:`xai_core.data.demo`), and a small plain CNN on the *tagged* shapes, which has a shortcut to
learn: a corner tag on 98 % of one class's training images (a bias to find, Lapuschkin et al. 2019), trained for
few epochs so that it leans on the tag (a Clever Hans predictor: its circle score comes from the tag). Its
catalogue entry records the shortcut in numbers (:func:`shortcut_numbers`).

ReLU activations only, so every iNNvestigate method (deconvnet, guided
backprop, deep Taylor included) accepts them. Input is the preprocessed image ``pixels / 255`` in [0, 1]
(``PREPROCESSINGS["unit"]``; no ``Rescaling`` layer in the model) and the last layer is
``Dense(K, activation="softmax", name="predictions")`` — the app strips that softmax itself, on purpose.

Training runs in **graph mode**: importing :mod:`xai_core` switches eager execution off process-wide, and
Keras 2.14 trains with its v1 graph loop then. Each model gets its own ``tf.Graph`` and ``Session`` and a
fixed seed (``tf.keras.utils.set_random_seed``) with deterministic ops, so a rerun on the same machine gives
the same weights. Augmentation (shifts for digits; flips and quarter turns for shapes) is done in numpy,
one freshly augmented copy of the training set per epoch.

Saving a ``.keras`` file needs eager execution, so the trained weights are copied into the same
architecture rebuilt in a local eager context and saved from there (:func:`save_keras_v3`). The held-out
accuracy in ``demo_models.json`` is measured afterwards by loading the saved file into a
:class:`xai_core.models.bundle.ModelBundle` exactly as the app does (:func:`xai_core.models.demo.load_keras_file`),
on the test split only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xai_core import runtime

runtime.install()  # graph mode and our changes to Keras / iNNvestigate, before any model

import tensorflow as tf

from xai_core.data.demo import SHAPE_CLASSES, TAG_CLASS, DemoSet, load_demo_set, load_shapes_set, paste_tag

layers = tf.keras.layers
OUT_DIR = ROOT / "xai_core" / "assets" / "models"
JSON_NAME = "demo_models.json"

#: BatchNormalization momentum. Keras' default 0.99 is too slow for these short runs: the moving variance
#: starts at 1.0 and the stem's true variance on digits is ~0.006, so after ~600 steps 0.99**600 ≈ 0.003
#: of the initial 1.0 still dominated it, and the digits ResNet scored 54 % at inference (99 % with batch
#: statistics). With 0.9 the statistics converge within a few dozen steps.
BN_MOMENTUM = 0.9


# ---------------------------------------------------------------------------------------------- models
def plain_cnn(input_shape: tuple[int, int, int], num_classes: int, pool1: int) -> tf.keras.Model:
    """Conv-ReLU, Conv-ReLU, MaxPool, Conv-ReLU, MaxPool, Flatten, Dense-ReLU, Dense-softmax.

    ``pool1`` is the first pooling size (2 for the 32×32 digits: the flattened map is 8×8×32). The 64×64
    shapes use :func:`plain_cnn_deep` instead.
    """
    x = inp = layers.Input(input_shape, name="input")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(pool1, name="pool1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense1")(x)
    out = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return tf.keras.Model(inp, out, name="plain_cnn")


def plain_cnn_deep(input_shape: tuple[int, int, int], num_classes: int) -> tf.keras.Model:
    """Plain CNN with a third pooling stage for 64×64 inputs.

    Conv-ReLU ×2, MaxPool, (Conv-ReLU, MaxPool) ×2, Flatten, Dense-ReLU, Dense-softmax. The shallower
    :func:`plain_cnn` learned shapes slowly and unreliably (80 % after 10 epochs with pools 2/4 and a long
    start at chance level; 89–96 % with pools 4/2 depending on seed and initialiser); the third stage gives
    the last convolution a receptive field as large as the biggest shapes and reaches > 99 %.
    """
    x = inp = layers.Input(input_shape, name="input")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.MaxPooling2D(2, name="pool3")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(48, activation="relu", name="dense1")(x)
    out = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return tf.keras.Model(inp, out, name="plain_cnn")


def small_cnn(input_shape: tuple[int, int, int], num_classes: int) -> tf.keras.Model:
    """Conv-ReLU, MaxPool three times (16, 32, 64 filters), Flatten, Dense-ReLU 32, Dense-softmax.

    Pooling right after each convolution keeps training on 64×64 images cheap (the tagged-shapes model trains in a
    few minutes on 2 cores); the flattened 8×8 grid keeps *where* a feature is, so the model can tie the corner tag
    to a class.
    """
    x = inp = layers.Input(input_shape, name="input")
    for k, filters in enumerate((16, 32, 64), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{k}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{k}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(32, activation="relu", name="dense1")(x)
    out = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return tf.keras.Model(inp, out, name="small_cnn")


def _res_block(x: tf.Tensor, filters: int, name: str) -> tf.Tensor:
    """Two Conv-BN (ReLU between), added to the input (1×1 Conv-BN projection if the width changes)."""
    shortcut = x
    if int(x.shape[-1]) != filters:
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(y)
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def small_resnet(input_shape: tuple[int, int, int], num_classes: int, stem_pool: bool) -> tf.keras.Model:
    """Conv-BN-ReLU stem, residual blocks of 16/32/(64) filters with max pooling between, GAP, Dense.

    ``stem_pool`` halves the 64×64 shapes images after the stem to keep training cheap; the 32×32 digits
    skip it and the third block.
    """
    x = inp = layers.Input(input_shape, name="input")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    if stem_pool:
        x = layers.MaxPooling2D(2, name="stem_pool")(x)
    x = _res_block(x, 16, "block1")
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = _res_block(x, 32, "block2")
    if stem_pool:
        x = layers.MaxPooling2D(2, name="pool2")(x)
        x = _res_block(x, 64, "block3")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return tf.keras.Model(inp, out, name="small_resnet")


# ---------------------------------------------------------------------------------------------- augmentation
def shift(x: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Translate every image by up to ``max_shift`` pixels (zero fill)."""
    n, h, w, _ = x.shape
    p = max_shift
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    dy, dx = rng.integers(0, 2 * p + 1, size=(2, n))
    return np.stack([padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def flip_rotate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flip and quarter turn per image (every shape class is invariant to both)."""
    flip, turns = rng.integers(0, 2, len(x)), rng.integers(0, 4, len(x))
    return np.stack([np.rot90(im[:, ::-1] if f else im, k) for im, f, k in zip(x, flip, turns, strict=True)])


def tagged_epoch(data: DemoSet, rng: np.random.Generator) -> np.ndarray:
    """One epoch of tagged shapes: the untagged shapes images flipped and turned, *then* the tag pasted on the images
    the split tags, so the tag stays in its corner (augmenting tagged images would move it)."""
    assert data.tagged is not None
    base = load_shapes_set("train").images  # the same images before tagging (tests/data/test_demo.py)
    return paste_tag(flip_rotate(base, rng), data.tagged)[0]


# ---------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    dataset: str
    architecture: str
    build: Callable[[tuple[int, int, int], int], tf.keras.Model]
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray]
    epochs: int
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
    #: uint8 training images of one epoch from the whole training set (default: ``augment`` of its images)
    epoch_images: Callable[[DemoSet, np.random.Generator], np.ndarray] | None = None


SPECS = [
    Spec(
        "digits_cnn", "Digits CNN (plain)", "digits",
        "conv1 16 3×3 → conv2 32 3×3 → pool1 2×2 → conv3 32 3×3 → pool2 2×2 → flatten → dense1 64 → "
        "predictions (softmax); ReLU everywhere",
        lambda s, k: plain_cnn(s, k, pool1=2), lambda x, r: shift(x, r, 3), epochs=25,
    ),
    Spec(
        "digits_resnet", "Digits ResNet (BatchNorm + skip connections)", "digits",
        "stem conv 16 → BN → ReLU → residual block1 (16) → pool1 2×2 → "
        "residual block2 (32, 1×1 projection) → global average pooling → predictions (softmax); "
        "blocks: conv-BN-ReLU-conv-BN, Add, ReLU",
        lambda s, k: small_resnet(s, k, stem_pool=False), lambda x, r: shift(x, r, 3), epochs=25,
    ),
    Spec(
        "shapes_cnn", "Shapes CNN (plain)", "shapes",
        "conv1 16 3×3 → conv2 32 3×3 → pool1 2×2 → conv3 32 3×3 → pool2 2×2 → conv4 64 3×3 → pool3 2×2 → "
        "flatten → dense1 48 → predictions (softmax); ReLU everywhere",
        lambda s, k: plain_cnn_deep(s, k), flip_rotate, epochs=14, batch_size=32,
    ),
    Spec(
        "shapes_resnet", "Shapes ResNet (BatchNorm + skip connections)", "shapes",
        "stem conv 16 → BN → ReLU → stem_pool 2×2 → residual block1 (16) → pool1 → residual block2 (32) → "
        "pool2 → residual block3 (64) → global average pooling → predictions (softmax)",
        lambda s, k: small_resnet(s, k, stem_pool=True), flip_rotate, epochs=8,
    ),
    Spec(
        "tagged_shapes_cnn", f"Tagged shapes CNN (learnt a shortcut: the {TAG_CLASS} tag)", "tagged_shapes",
        "conv1 16 3×3 → pool1 2×2 → conv2 32 3×3 → pool2 2×2 → conv3 64 3×3 → pool3 2×2 → flatten → dense1 32 → "
        f"predictions (softmax); ReLU everywhere; trained 6 epochs with a corner tag on 98 % of the {TAG_CLASS} images "
        "and 0.3 % of the others",
        lambda s, k: small_cnn(s, k), flip_rotate, epochs=6, batch_size=32, epoch_images=tagged_epoch,
    ),
]


# ---------------------------------------------------------------------------------------------- training
def unit(images: np.ndarray) -> np.ndarray:
    """Raw uint8 pixels → model input (same as ``PREPROCESSINGS["unit"]``)."""
    return images.astype(np.float32) / 255.0


def train(spec: Spec, data: DemoSet) -> tuple[float, int]:
    """Train ``spec`` on ``data`` in a fresh graph, save it; return (training seconds, parameters)."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph).as_default():
        tf.keras.utils.set_random_seed(spec.seed)
        model = spec.build(data.images.shape[1:], data.num_classes)
        model.compile(
            optimizer=tf.keras.optimizers.legacy.Adam(spec.learning_rate),  # v1 loop needs legacy
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        rng = np.random.default_rng(spec.seed)
        x, y = unit(data.images), data.labels
        start = time.perf_counter()
        for epoch in range(spec.epochs):
            # cosine decay of the learning rate, one step per epoch
            lr = 0.5 * spec.learning_rate * (1 + np.cos(np.pi * epoch / spec.epochs))
            tf.keras.backend.set_value(model.optimizer.learning_rate, lr)
            xe = unit(spec.epoch_images(data, rng)) if spec.epoch_images else spec.augment(x, rng)
            hist = model.fit(xe, y, batch_size=spec.batch_size, epochs=1, shuffle=True, verbose=0)
            print(f"  {spec.id} epoch {epoch + 1}/{spec.epochs}: loss {hist.history['loss'][0]:.4f} "
                  f"acc {hist.history['accuracy'][0]:.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
        seconds = time.perf_counter() - start
        weights, params = model.get_weights(), int(model.count_params())
    save_keras_v3(spec, data, weights, OUT_DIR / f"{spec.id}.keras")
    return seconds, params


def save_keras_v3(spec: Spec, data: DemoSet, weights: list[np.ndarray], path: Path) -> None:
    """Save in the Keras v3 format, which needs eager execution (``numpy()`` on every variable).

    Eager execution is off process-wide, so the architecture is rebuilt inside a local eager context, given
    the trained weights (BatchNormalization moving statistics included) and saved from there.
    """
    from tensorflow.python.eager import context

    with context.eager_mode():
        model = spec.build(data.images.shape[1:], data.num_classes)
        model.set_weights(weights)
        model.save(path)


def evaluate(spec: Spec, test: DemoSet) -> tuple[float, dict | None]:
    """Held-out accuracy of the saved file, loaded exactly as the app loads it, and for a tagged set the shortcut
    in numbers (:func:`shortcut_numbers`)."""
    from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
    from xai_core.models.demo import load_keras_file  # plain load_model loses the weights in graph mode

    path = OUT_DIR / f"{spec.id}.keras"
    bundle = ModelBundle.create(
        lambda: load_keras_file(path),
        name=spec.id, preprocessing=PREPROCESSINGS["unit"], class_names=test.class_names, source="demo",
    )
    try:
        assert bundle.head == "softmax", bundle.head
        acc = float(np.mean(bundle.predict(test.images).argmax(axis=1) == test.labels))
        return acc, (shortcut_numbers(bundle.predict, test) if test.tagged is not None else None)
    finally:
        bundle.close()


def shortcut_numbers(predict: Callable[[np.ndarray], np.ndarray], test: DemoSet) -> dict:
    """The shortcut of a model trained on tagged shapes, measured on the held-out split.

    * accuracy on the biased class's tagged and untagged test images, and on the other classes' ones;
    * the flip rate: the untagged test images of the other classes that the model gets right, with the tag pasted
      onto them (nothing else changed) — the share it then calls :data:`TAG_CLASS`;
    * the reverse: the biased class's untagged images, tag pasted, and how many the model then gets right.
    """
    assert test.tagged is not None
    biased = SHAPE_CLASSES.index(TAG_CLASS)
    pred = predict(test.images).argmax(axis=1)
    right = pred == test.labels
    is_b, tagged = test.labels == biased, test.tagged

    def acc(sel: np.ndarray) -> float:
        return round(float(right[sel].mean()), 4)

    others = ~is_b & ~tagged & right
    pasted = predict(paste_tag(test.images[others])[0]).argmax(axis=1)
    plain_b = is_b & ~tagged
    pasted_b = predict(paste_tag(test.images[plain_b])[0]).argmax(axis=1)
    return {
        "biased_class": TAG_CLASS,
        "accuracy_biased_tagged": acc(is_b & tagged), "n_biased_tagged": int((is_b & tagged).sum()),
        "accuracy_biased_untagged": acc(plain_b), "n_biased_untagged": int(plain_b.sum()),
        "accuracy_others_tagged": acc(~is_b & tagged), "accuracy_others_untagged": acc(~is_b & ~tagged),
        "tag_pasted_flip_rate": round(float(np.mean(pasted == biased)), 4), "tag_pasted_n": int(others.sum()),
        "biased_untagged_accuracy_with_tag_pasted": round(float(np.mean(pasted_b == biased)), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=[s.id for s in SPECS], help="train only these models")
    args = parser.parse_args(argv)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tf.config.experimental.enable_op_determinism()

    json_path = OUT_DIR / JSON_NAME
    old = {m["id"]: m for m in json.loads(json_path.read_text())["models"]} if json_path.exists() else {}
    entries = dict(old)
    for spec in SPECS:
        if args.only and spec.id not in args.only:
            continue
        t0 = time.perf_counter()
        train_set, test_set = load_demo_set(spec.dataset, "train"), load_demo_set(spec.dataset, "test")
        print(f"{spec.id}: {len(train_set)} train / {len(test_set)} test images "
              f"(loaded in {time.perf_counter() - t0:.1f} s)", flush=True)
        seconds, params = train(spec, train_set)
        acc, shortcut = evaluate(spec, test_set)
        file = OUT_DIR / f"{spec.id}.keras"
        print(f"{spec.id}: test accuracy {acc:.4f}, {params} parameters, {seconds:.0f} s, "
              f"{file.stat().st_size / 1e3:.0f} kB", flush=True)
        entries[spec.id] = {
            "id": spec.id,
            "title": spec.title,
            "dataset": spec.dataset,
            "architecture": spec.architecture,
            "input_shape": list(train_set.images.shape[1:]),
            "preprocessing": "unit",
            "num_params": params,
            "test_accuracy": round(acc, 4),
            "test_images": len(test_set),
            "train_images": len(train_set),
            "epochs": spec.epochs,
            "batch_size": spec.batch_size,
            "learning_rate": spec.learning_rate,
            "seed": spec.seed,
            "train_seconds": round(seconds, 1),
            "cpu_count": os.cpu_count(),
            "load_average_after_training": round(os.getloadavg()[0], 1),  # other jobs sharing the CPUs
            "file": file.name,
            "file_bytes": file.stat().st_size,
            "tensorflow": tf.__version__,
            "tf_keras": importlib.metadata.version("tf-keras"),
            **({"shortcut": shortcut} if shortcut else {}),
        }
        if shortcut:
            print(f"{spec.id}: shortcut {shortcut}", flush=True)
    ordered = [entries[s.id] for s in SPECS if s.id in entries]
    json_path.write_text(json.dumps({"version": 1, "models": ordered}, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
