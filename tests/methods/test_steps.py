"""A build reports its steps (what the page shows while a method is new for a model), and a warm run none."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core.methods import Target, explain, steps


@pytest.fixture(scope="module")
def resnet():
    """A fresh BatchNorm + Add demo model (its own bundle: nothing built yet) and two test images."""
    from xai_core.data.demo import load_demo_set
    from xai_core.models.demo import load_demo_model

    return load_demo_model("digits_resnet"), load_demo_set("digits", "test").images[:2].astype(np.float32)


def _reported(bundle, method_id, images, target=None) -> list[str]:
    seen: list[str] = []
    with steps.reporting(seen.append):
        explain(bundle, method_id, images, target or Target.of_class(1))
    return seen


def test_relevance_build_says_canonize_reverse_graph_first_run(resnet):
    bundle, images = resnet
    assert _reported(bundle, "lrp.epsilon", images) == [steps.CANONIZE, steps.REVERSE_GRAPH, steps.FIRST_RUN]
    assert _reported(bundle, "lrp.epsilon", images, Target.of_class(7)) == []  # built: nothing to say
    # another rule on the same model reuses the canonical copy
    assert _reported(bundle, "lrp.z", images) == [steps.REVERSE_GRAPH, steps.FIRST_RUN]


def test_gradient_methods_share_one_gradient_graph(resnet):
    bundle, images = resnet
    assert _reported(bundle, "gradient", images) == [steps.GRADIENT_GRAPH, steps.FIRST_RUN]
    for method_id in ("input_t_gradient", "smoothgrad", "integrated_gradients"):
        assert _reported(bundle, method_id, images) == [], method_id


def test_no_reporter_no_effect_and_reporters_do_not_leak():
    outer: list[str] = []
    with steps.reporting(outer.append):
        with steps.reporting(lambda _text: None):
            steps.step("inner")
        steps.step("outer")
    steps.step("nobody listens")
    assert outer == ["outer"]
