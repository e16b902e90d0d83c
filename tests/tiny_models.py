"""Tiny Keras models built in-process for tests (imported by conftest.py and test modules)."""

from __future__ import annotations

import tensorflow as tf

from xai_core.models.bundle import PREPROCESSINGS, ModelBundle

TINY_SHAPE = (16, 16, 3)


def tiny_cnn(bias: bool = True, activation: str = "relu", seed: int = 0) -> tf.keras.Model:
    """Conv(6) → MaxPool → Conv(8) → Flatten → Dense(5, softmax): small enough for every method in seconds."""
    tf.keras.utils.set_random_seed(seed)
    init = tf.keras.initializers.HeNormal(seed=seed)
    inp = tf.keras.Input(TINY_SHAPE, name="image")
    x = tf.keras.layers.Conv2D(6, 3, activation=activation, use_bias=bias, kernel_initializer=init, name="conv1")(inp)
    x = tf.keras.layers.MaxPooling2D(name="pool1")(x)
    x = tf.keras.layers.Conv2D(8, 3, activation=activation, use_bias=bias, kernel_initializer=init, name="conv2")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    out = tf.keras.layers.Dense(5, activation="softmax", use_bias=bias, kernel_initializer=init, name="predictions")(x)
    return tf.keras.Model(inp, out, name="tiny")


def make_bundle(factory, name: str) -> ModelBundle:
    # pixels / 255: tests reason in model-input space via ``bundle.preprocess(images)``.
    return ModelBundle.create(factory, name=name, preprocessing=PREPROCESSINGS["unit"],
                              class_names=[f"c{i}" for i in range(5)], source="test")
