"""A method built in the background before its first map: the map that follows needs no build, equals a map
built the ordinary way, and a failed or repeated start is handled."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core.methods import Target, explain, steps
from xai_core.methods.prebuild import running_prebuild, start_prebuild
from xai_core.methods.prepared import is_prepared


def _fresh_resnet():
    from xai_core.models.demo import load_demo_model

    return load_demo_model("digits_resnet")  # a new bundle each call: nothing built yet


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    from xai_core.data.demo import load_demo_set

    return load_demo_set("digits", "test").images[:2].astype(np.float32)


def test_prebuilt_method_maps_without_building_and_equals_an_ordinary_build(images):
    bundle = _fresh_resnet()
    record = start_prebuild(bundle, "lrp.epsilon")
    assert record is not None and start_prebuild(bundle, "lrp.epsilon") is record  # one build per key
    assert record.wait(120) and record.ready, record.error
    assert record.history == [steps.CANONIZE, steps.REVERSE_GRAPH, steps.FIRST_RUN]
    assert is_prepared(bundle, "lrp.epsilon", None, None)
    assert running_prebuild(bundle, "lrp.epsilon", None) is record
    assert start_prebuild(bundle, "lrp.epsilon") is None  # built: nothing to start
    n_ops = len(bundle.graph.get_operations())
    seen: list[str] = []
    with steps.reporting(seen.append):
        ours = explain(bundle, "lrp.epsilon", images, Target.of_class(3)).raw
    assert seen == [] and len(bundle.graph.get_operations()) == n_ops  # nothing built for the first real map
    theirs = explain(_fresh_resnet(), "lrp.epsilon", images, Target.of_class(3)).raw
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * np.abs(theirs).max())
    assert np.abs(ours).max() > 0


def test_prebuild_for_a_layer_is_its_own_build(images):
    bundle = _fresh_resnet()
    layer = bundle.spatial_layers()[-1].name
    record = start_prebuild(bundle, "gradient", layer=layer)
    assert record is not None and record.wait(120) and record.ready, record and record.error
    assert is_prepared(bundle, "gradient", None, layer) and not is_prepared(bundle, "gradient", None, None)


def test_failed_prebuild_keeps_the_reason_and_can_start_again():
    bundle = _fresh_resnet()
    record = start_prebuild(bundle, "pattern.net")  # needs patterns fitted on data first
    assert record is not None and record.wait(60)
    assert not record.ready and record.error and "pattern" in record.error.lower()
    assert not is_prepared(bundle, "pattern.net", None, None)
    again = start_prebuild(bundle, "pattern.net")
    assert again is not None and again is not record and again.wait(60) and again.error


def test_invalid_parameters_start_nothing():
    bundle = _fresh_resnet()
    assert start_prebuild(bundle, "integrated_gradients", {"steps": 10_000}) is None  # outside the schema
    assert running_prebuild(bundle, "integrated_gradients", {"steps": 10_000}) is None
