"""LRP-ε and LRP-0 as one reverse pass over the forward tensors (xai_core/methods/lrp_reverse.py) give iNNvestigate's
maps: checked against the analyzer itself on the demo nets (plain, residual with folded BatchNorm) and on
keras.applications networks saved and uploaded as users do (ReLU6 layers, depthwise convolutions, DenseNet's
pre-activation BatchNorm as affine layers, Concatenate, global average pooling), and the network with a layer the
pass does not map falls back to the analyzer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from xai_core.data.demo import load_demo_set
from xai_core.methods import Target, explain
from xai_core.methods._innvestigate import analyze
from xai_core.methods.base import Selection
from xai_core.methods.lrp_reverse import reverse_graph
from xai_core.models.demo import load_demo_model
from xai_core.models.upload import load_user_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo import calibration_images, save_zoo_model


def _analyzer_maps(bundle, method_id, x, indices, params):
    """The same map by iNNvestigate's analyzer (the path the reverse pass replaces)."""
    kwargs = {"epsilon": params["epsilon"]} if "epsilon" in params else {}
    return analyze(bundle, method_id, method_id, x, Selection(None, indices), **kwargs).sum(-1)


def _assert_same(bundle, images, method_id, params):
    assert reverse_graph(bundle, None, params.get("epsilon")) is not None, "the reverse pass applies here"
    fast = explain(bundle, method_id, images, Target.predicted(), params).maps[:, 0]
    x = bundle.preprocess(images)
    ref = _analyzer_maps(bundle, method_id, x, bundle.logits(x).argmax(1), params)
    scale = np.abs(ref).max()
    assert scale > 0
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-5 * scale)
    return fast


@pytest.fixture(scope="module", params=["digits_cnn", "digits_resnet", "shapes_resnet"])
def demo(request):
    bundle = load_demo_model(request.param)
    yield bundle, load_demo_set(bundle.info["dataset"], "test").images[:8].astype(np.float32)
    bundle.close()


@pytest.mark.parametrize("method_id,params", [("lrp.epsilon", {"epsilon": 0.1}), ("lrp.epsilon", {"epsilon": 1e-7}),
                                              ("lrp.z", {})])
def test_the_reverse_pass_gives_the_analyzers_maps_on_the_demo_nets(demo, method_id, params):
    _assert_same(*demo, method_id, params)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lrp-reverse-zoo")
    out = {}
    for name in ("MobileNetV2", "DenseNet121"):
        path = save_zoo_model(name, folder)["keras"]
        out[name] = load_user_model(path.read_bytes(), path.name)
    yield out
    for bundle in out.values():
        bundle.close()


@pytest.mark.parametrize("name", ["MobileNetV2", "DenseNet121"])
def test_the_reverse_pass_gives_the_analyzers_maps_on_uploaded_networks(zoo, name):
    images = calibration_images(n=4).astype(np.float32)
    maps = _assert_same(zoo[name], images, "lrp.epsilon", {"epsilon": 0.1})
    assert np.isfinite(maps).all()


def test_a_fused_activation_other_than_relu_falls_back_to_the_analyzer():
    from tiny_models import TINY_SHAPE, make_bundle, tiny_cnn

    bundle = make_bundle(lambda: tiny_cnn(activation="tanh"), "tiny-tanh")
    try:
        assert reverse_graph(bundle, None, 0.1) is None
        images = np.random.default_rng(0).uniform(0, 255, (2, *TINY_SHAPE)).astype(np.float32)
        maps = explain(bundle, "lrp.epsilon", images, Target.of_class(1), {"epsilon": 0.1}).maps
        x = bundle.preprocess(images)
        np.testing.assert_allclose(maps[:, 0], _analyzer_maps(bundle, "lrp.epsilon", x, np.array([1, 1]),
                                                              {"epsilon": 0.1}), rtol=1e-6, atol=1e-7)
    finally:
        bundle.close()


def _mixed_net():
    """Where the pass may skip the ε stabiliser (relevance zero wherever a ReLU output is zero: through max pooling,
    dropout, flatten, a capped ReLU) and where it may not (a difference's gradient sends relevance to a ReLU output
    that is zero; a sum of a linear branch; a LeakyReLU; the output, whose relevance has either sign)."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(3)
    layers = tf.keras.layers
    inp = tf.keras.Input((16, 16, 3), name="image")
    a = layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    a = layers.MaxPooling2D(name="pool")(a)
    a = layers.Dropout(0.5, name="drop")(a)
    b = layers.Conv2D(6, 3, padding="same", name="c2")(a)  # linear, then a LeakyReLU
    b = layers.LeakyReLU(0.2, name="leaky")(b)
    c = layers.Conv2D(6, 3, padding="same", name="c3")(a)  # linear, into the sum directly
    e = layers.Conv2D(6, 3, padding="same", activation="relu", name="c5")(a)
    e = layers.ReLU(name="relu_difference")(layers.Subtract(name="difference")([a, e]))  # relevance at e < 0 too
    s = layers.Add(name="sum")([a, b, c, e])
    s = layers.ReLU(max_value=6.0, name="relu6")(s)
    d = layers.Conv2D(8, 3, activation="relu", name="c4")(s)
    d = layers.Flatten(name="flat")(d)
    out = layers.Dense(5, name="logits")(d)
    return tf.keras.Model(inp, out, name="mixed")


def test_the_reverse_pass_skips_the_stabiliser_only_where_the_relevance_is_zero():
    from tiny_models import make_bundle

    bundle = make_bundle(_mixed_net, "tiny-mixed")
    try:
        images = np.random.default_rng(1).uniform(0, 255, (6, 16, 16, 3)).astype(np.float32)
        for method_id, params in [("lrp.epsilon", {"epsilon": 0.1}), ("lrp.epsilon", {"epsilon": 1e-7}),
                                  ("lrp.z", {})]:
            _assert_same(bundle, images, method_id, params)
        graph = reverse_graph(bundle, None, 0.1).relevance.graph
        assert any(op.type == "DivNoNan" for op in graph.get_operations()), "the shortcut was taken somewhere"
    finally:
        bundle.close()
