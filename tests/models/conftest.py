"""Fixtures of tests/models: the model files of test_upload.py and test_graph.py.

``files`` stays module-scoped (built once per module, ~2 s): test_upload.py::test_keras_errors_are_wrapped expects
the message of Keras' v2 ``Layer.from_config``, and Keras swaps a layer class between its v1 and v2 base classes
whenever it is instantiated in graph or eager mode. The models built here (eager) right before the upload tests
keep the order the single test_model_sources.py had; a session-wide build would leave Conv2D in whatever mode
test_graph.py created it last.
"""

from __future__ import annotations

from typing import Any

import pytest
import tensorflow as tf
from model_files import SHAPE, L, eager, eager_logits, images, marker_function, small_cnn, zip_dir


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Model files written in eager mode, with reference outputs of the original models."""
    d = tmp_path_factory.mktemp("models")
    marker = d / "lambda_ran.txt"
    x = images()
    out: dict[str, Any] = {"dir": d, "marker": marker, "x": x}
    with eager():
        m = small_cnn("softmax")
        out["ref"] = m(x / 255.0).numpy()
        m.save(d / "cnn.keras")
        m.save(d / "cnn.h5")
        m.save(d / "my_model", save_format="tf")
        m.save_weights(d / "weights_only.h5")
        for head in ("sigmoid", "softmax_layer", "activation", "linear"):
            hm = small_cnn(head, seed=1)
            out[f"head_{head}"] = (hm(x / 255.0).numpy(), eager_logits(hm, x / 255.0))
            hm.save(d / f"head_{head}.h5")
        r = small_cnn("softmax", rescale=True, seed=2)
        out["ref_rescale"] = r(x).numpy()
        r.save(d / "rescale.h5")
        # Lambda inside a nested Sequential: the scan must look into nested configs
        inp = tf.keras.Input(SHAPE)
        inner = tf.keras.Sequential([L.Lambda(marker_function(str(marker)), name="evil_lambda")], name="inner")
        y = L.GlobalAveragePooling2D()(inner(inp))
        lam = tf.keras.Model(inp, L.Dense(3, activation="softmax")(y))
        lam.save(d / "lambda.keras")
        lam.save(d / "lambda.h5")
        lam.save(d / "lambda_sm", save_format="tf")
        inp = tf.keras.Input(SHAPE)
        g = L.GlobalAveragePooling2D()(inp)
        tf.keras.Model(inp, [L.Dense(3)(g), L.Dense(2)(g)]).save(d / "two_outputs.keras")
        inp = tf.keras.Input((20,))
        tf.keras.Model(inp, L.Dense(3, activation="softmax")(inp)).save(d / "tabular.keras")
        inp = tf.keras.Input((8, 8, 3))
        tf.keras.Model(inp, L.Dense(1000)(L.GlobalAveragePooling2D()(inp))).save(d / "k1000.h5")
    assert marker.exists(), "building the Lambda model should have run its body once"
    marker.unlink()
    (d / "sm.zip").write_bytes(zip_dir(d / "my_model"))
    (d / "lambda_sm.zip").write_bytes(zip_dir(d / "lambda_sm"))
    return out
