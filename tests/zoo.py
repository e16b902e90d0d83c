"""Real ``tf.keras.applications`` architectures saved as a user would, with trained-like BatchNorm statistics.

An untrained network's BatchNormalization is an identity (moving mean 0, variance 1, γ 1, β 0), which hides
every bug of a BN rule. :func:`save_zoo_model` therefore draws γ and β at random and then sets each BN layer's
moving statistics to the mean and variance its input really has on a batch of images (one forward pass in
training mode, where every BN normalises by its batch statistics, so all layers are calibrated at once), as
training would. The model is built and saved in a plain TF session of its own, then loaded back through the
upload path (:func:`xai_core.models.upload.load_user_model`) by the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

#: name → (constructor keyword arguments). Small inputs keep the suite fast; every net accepts 64×64.
ZOO: dict[str, dict] = {
    "ResNet50": {},
    "MobileNetV2": {},
    "DenseNet121": {},
    "VGG16": {},
    "EfficientNetB0": {},
}
SIDE = 64


def calibration_images(n: int = 16, side: int = SIDE, seed: int = 0) -> np.ndarray:
    """Image-like uint8 pixels ``(n, side, side, 3)``: the demo shapes test images, resized."""
    from xai_core.data.demo import load_demo_set

    imgs = load_demo_set("shapes", "test").images[:n]
    if imgs.shape[1] != side:  # Pillow, not tf.image: works in graph mode too (bench/bench_memory.py at 224)
        from PIL import Image

        imgs = np.stack([np.asarray(Image.fromarray(np.asarray(i, np.uint8)).resize((side, side),
                                                                                     Image.Resampling.BILINEAR))
                         for i in imgs])
    return np.clip(imgs, 0, 255).astype(np.float32)


def _calibrate_batchnorm(model: tf.keras.Model, x: np.ndarray, seed: int) -> int:
    """Random γ, β; moving mean / variance = the statistics of each BN input on ``x``. Returns #BN layers.

    Eager. The probe model runs with ``training=True``: every BN normalises by the statistics of its own batch,
    so each layer's input is what it will be once all BN layers before it are calibrated.
    """
    rng = np.random.default_rng(seed)
    bns = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.BatchNormalization)]

    def kind(w: tf.Variable) -> str:
        return w.name.split("/")[-1].split(":")[0]

    for bn in bns:
        bn.set_weights([{"gamma": rng.uniform(0.6, 1.4, w.shape), "beta": rng.normal(0.0, 0.2, w.shape),
                         "moving_mean": np.zeros(w.shape), "moving_variance": np.ones(w.shape)}[kind(w)]
                        for w in bn.weights])
    probe = tf.keras.Model(model.inputs, [bn.input for bn in bns])
    inputs = probe(x, training=True)
    for bn, t in zip(bns, inputs):
        t = np.asarray(t, dtype=np.float64)
        axes = tuple(range(t.ndim - 1))
        stats = {"moving_mean": t.mean(axis=axes), "moving_variance": t.var(axis=axes)}
        bn.set_weights([stats.get(kind(w), v) for w, v in zip(bn.weights, bn.get_weights())])
    return len(bns)


def preprocess_for(name: str, images: np.ndarray) -> np.ndarray:
    """The architecture's own ``preprocess_input`` (what Keras documents for it)."""
    from xai_core.models.applications import get_application

    return get_application(name).preprocessing(images)


def save_zoo_model(name: str, folder: Path, side: int = SIDE, seed: int = 0) -> dict[str, Path]:
    """Build ``tf.keras.applications.<name>(weights=None)`` at ``side``×``side`` in eager mode (as a user's
    training script would), calibrate its BN layers, save it as ``.keras`` and ``.h5``.

    Returns ``{"keras": path, "h5": path}``.
    """
    from tensorflow.python.eager import context

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"keras": folder / f"{name}.keras", "h5": folder / f"{name}.h5"}
    x = preprocess_for(name, calibration_images(side=side))
    with context.eager_mode():
        tf.keras.utils.set_random_seed(seed)
        model = getattr(tf.keras.applications, name)(weights=None, input_shape=(side, side, 3), **ZOO.get(name, {}))
        _calibrate_batchnorm(model, x, seed)
        model.save(paths["keras"])
        model.save(paths["h5"])
    return paths
