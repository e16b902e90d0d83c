"""Where a method gets built (xai_core/methods/build.py): once per declared key, in the foreground or the
background, never by listing the methods, never by computing a map twice; a failed build withdraws the method."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from xai_core.errors import UnsupportedMethodError
from xai_core.methods import REGISTRY, Target, explain, methods_for, steps, unsupported_reason
from xai_core.methods.build import build_in_background, ensure_built, is_built, record


def _fresh_resnet():
    from xai_core.models.demo import load_demo_model

    return load_demo_model("digits_resnet")  # a new bundle each call: nothing built yet


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    from xai_core.data.demo import load_demo_set

    return load_demo_set("digits", "test").images[:2].astype(np.float32)


class _CountingSession:
    """Stands in for a bundle's session and counts ``run`` calls."""

    def __init__(self, session) -> None:
        self._session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self._session.run(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._session, name)


def test_listing_the_methods_builds_nothing():
    bundle = _fresh_resnet()
    n_ops = len(bundle.graph.get_operations())
    offered = methods_for(bundle)
    assert "lrp.epsilon" in offered and "deep_taylor" in offered and "guided_backprop" in offered
    assert len(bundle.graph.get_operations()) == n_ops, "deciding what a model supports added tensors"
    assert not [k for k in bundle._cache if isinstance(k, tuple) and k[0] in ("canonical", "analyzer", "build")]


def test_a_swish_network_is_refused_relu_only_methods_without_building(images):
    import tensorflow as tf
    from tiny_models import make_bundle

    def swish_net():
        inp = tf.keras.Input((16, 16, 3))
        x = tf.keras.layers.Conv2D(4, 3, activation="swish")(inp)
        x = tf.keras.layers.GlobalAveragePooling2D()(x)
        return tf.keras.Model(inp, tf.keras.layers.Dense(5)(x))

    bundle = make_bundle(swish_net, "swish")
    for method_id in ("deconvnet", "guided_backprop", "deep_taylor", "gradcam.guided"):
        assert method_id not in methods_for(bundle)
        assert "ReLU" in (unsupported_reason(bundle, method_id) or "")
    assert "lrp.epsilon" in methods_for(bundle) and "gradient" in methods_for(bundle)


def test_background_build_then_the_first_map_builds_nothing_and_equals_an_ordinary_build(images):
    bundle = _fresh_resnet()
    rec = build_in_background(bundle, "lrp.epsilon")
    assert rec is not None and build_in_background(bundle, "lrp.epsilon") is rec  # one build per key
    assert rec.wait(120) and rec.ready, rec.error
    assert rec.history == [steps.CANONIZE, steps.REVERSE_GRAPH]
    assert rec.background and rec.rss_growth >= 0
    assert is_built(bundle, "lrp.epsilon", None, None) and record(bundle, "lrp.epsilon", None, None) is rec
    assert build_in_background(bundle, "lrp.epsilon") is rec  # built: the same record, nothing started
    n_ops = len(bundle.graph.get_operations())
    seen: list[str] = []
    with steps.reporting(seen.append):
        ours = explain(bundle, "lrp.epsilon", images, Target.of_class(3)).raw
    assert seen == [steps.FIRST_RUN] and len(bundle.graph.get_operations()) == n_ops  # nothing built
    theirs = explain(_fresh_resnet(), "lrp.epsilon", images, Target.of_class(3)).raw
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * np.abs(theirs).max())
    assert np.abs(ours).max() > 0


def test_the_first_map_is_one_forward_pass_and_one_map(images):
    """A new method's first map: built once, then one forward pass (the target, the conservation check and the
    prediction bars share it) and one run of the map; no map computed to build and thrown away."""
    bundle = _fresh_resnet()
    ensure_built(bundle, "lrp.epsilon")
    counting = _CountingSession(bundle.session)
    bundle.session = counting
    try:
        explain(bundle, "lrp.epsilon", images[:1])  # predicted class: needs the logits
        assert counting.runs == 2, counting.runs
        bundle.predict(images[:1])  # the page's prediction bars
        assert counting.runs == 2, "the forward pass was not reused"
    finally:
        bundle.session = counting._session


def test_a_layer_is_its_own_build(images):
    bundle = _fresh_resnet()
    layer = bundle.spatial_layers()[-1].name
    rec = ensure_built(bundle, "gradient", layer=layer)
    assert rec is not None and rec.ready
    assert is_built(bundle, "gradient", None, layer) and not is_built(bundle, "gradient", None, None)
    assert is_built(bundle, "gradient", None, bundle.output_layer.name) is is_built(bundle, "gradient", None, None)


def test_run_time_parameters_do_not_rebuild(tiny):
    ensure_built(tiny, "smoothgrad", {"samples": 8})
    assert is_built(tiny, "smoothgrad", {"samples": 32, "noise_level": 0.3, "seed": 5}, None)
    n_ops = len(tiny.graph.get_operations())
    ensure_built(tiny, "integrated_gradients", {"steps": 7, "reference": "gray"})
    assert len(tiny.graph.get_operations()) == n_ops, "Integrated Gradients shares SmoothGrad's gradient"
    ensure_built(tiny, "lrp.epsilon", {"epsilon": 0.1})
    assert not is_built(tiny, "lrp.epsilon", {"epsilon": 0.01}, None), "ε changes the analyzer"
    assert not is_built(tiny, "smoothgrad", {"samples": "many"}, None)


def test_a_failed_build_keeps_its_reason_and_withdraws_the_method(monkeypatch):
    bundle = _fresh_resnet()

    def broken(*_args, **_kwargs):
        raise RuntimeError("no rule for layer 'weird'")

    monkeypatch.setitem(REGISTRY, "gradient", replace(REGISTRY["gradient"], build=broken))
    assert "gradient" in methods_for(bundle)
    with pytest.raises(UnsupportedMethodError, match="no rule for layer 'weird'"):
        explain(bundle, "gradient", np.zeros((1, *bundle.input_shape), np.float32))
    rec = record(bundle, "gradient", None, None)
    assert rec is not None and rec.done and not rec.ready and "weird" in (rec.error or "")
    assert "gradient" not in methods_for(bundle) and "weird" in (unsupported_reason(bundle, "gradient") or "")
    assert build_in_background(bundle, "gradient") is None  # withdrawn: nothing to start


def test_invalid_parameters_start_nothing():
    bundle = _fresh_resnet()
    assert build_in_background(bundle, "integrated_gradients", {"steps": 10_000}) is None  # outside the schema
    assert record(bundle, "integrated_gradients", {"steps": 10_000}, None) is None
