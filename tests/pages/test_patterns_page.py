"""Visualize with a pattern method: the "Fit patterns" step on the demo model, then the map; fitting happens once."""

from __future__ import annotations

import pytest
import streamlit as st
from apptest_helpers import app, count_elements, ok
from streamlit.testing.v1 import AppTest

TIMEOUT = 300
PAGE = "pages/visualize.py"



def _images(at: AppTest) -> int:
    return count_elements(at, "image")


def _fit_buttons(at: AppTest) -> list:
    return [b for b in at.button if b.label == "Fit patterns"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty pattern cache, and fresh model bundles (no patterns registered by an earlier page run)."""
    monkeypatch.setenv("XAI_LENS_CACHE", str(tmp_path))
    st.cache_resource.clear()
    return tmp_path


def _pattern_page(method: str) -> AppTest:
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.family"] = "Pattern"
    at.session_state["visualize.method.pattern"] = method
    return ok(at.run())


def test_fit_patterns_step_then_map(cache):
    at = _pattern_page("pattern.attribution")
    assert len(_fit_buttons(at)) == 1, "the demo digits model has no patterns yet"
    assert any("training images of digits/train" in c.value for c in at.caption)
    assert not any("Why?" in s.value for s in at.subheader), "no map before fitting"
    _fit_buttons(at)[0].click().run()
    ok(at)
    assert any("Why? PatternAttribution for" in s.value for s in at.subheader), [s.value for s in at.subheader]
    assert _images(at) >= 4  # input, heatmap, overlay (+ gallery thumbnail)
    assert list((cache / "patterns").glob("demo-digits-cnn-*-relu.npz")), "patterns saved to disk"
    ok(at.run())
    assert not _fit_buttons(at), "fitted once: no second fit step"
    # another session, after the server forgot its models: the patterns come back from disk
    st.cache_resource.clear()
    other = _pattern_page("pattern.net")
    assert not _fit_buttons(other)
    assert any("Why? PatternNet for" in s.value for s in other.subheader)


def test_other_estimator_needs_its_own_fit(cache):
    at = _pattern_page("pattern.net")
    at.session_state["visualize.param.pattern.net.estimator"] = "linear"
    ok(at.run())
    assert len(_fit_buttons(at)) == 1 and "linear estimator" in " ".join(m.value for m in at.markdown)


def test_own_model_fits_on_the_images_chosen_on_the_page(cache):
    """A user's model has no known training data: the step fits on the page's images (here: 4 digits), and says so."""
    from xai_core.data.gallery import demo_images
    from xai_core.models.demo import DEMO_MODELS

    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.family"] = "Pattern"
    at.session_state["visualize.method.pattern"] = "pattern.attribution"
    at.session_state["visualize.gallery"] = [g.key for g in demo_images("digits")][:4]
    at.run()
    model_file = DEMO_MODELS["digits_cnn"].path.read_bytes()  # the demo's file, uploaded as "your own model"
    at.file_uploader(key="visualize.model_file").set_value(("mine.keras", model_file, "application/octet-stream"))
    at.run()
    at.session_state["visualize.models"] = [k for k in at.session_state["visualize.models"] if k.startswith("upload:")]
    ok(at.run())
    assert len(_fit_buttons(at)) == 1
    (fit_on,) = [r for r in at.radio if r.label == "Fit on"]
    assert fit_on.value == "page" and "the 4 image(s) chosen above" in fit_on.options[0]
    _fit_buttons(at)[0].click().run()
    ok(at)
    assert any("Why? PatternAttribution for" in s.value for s in at.subheader)
    assert list((cache / "patterns").glob("upload-*-relu.npz"))


def test_own_model_can_fit_on_a_data_set(cache):
    """Instead of the page's images, a user's model can learn its patterns from a data set (here the digits test
    split through the same picker Suggest uses); the progress runs over all of its images."""
    from xai_core.data.gallery import demo_images
    from xai_core.models.demo import DEMO_MODELS

    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["visualize.family"] = "Pattern"
    at.session_state["visualize.method.pattern"] = "pattern.net"
    at.session_state["visualize.gallery"] = [g.key for g in demo_images("digits")][:1]
    at.run()
    model_file = DEMO_MODELS["digits_cnn"].path.read_bytes()
    at.file_uploader(key="visualize.model_file").set_value(("mine2.keras", model_file, "application/octet-stream"))
    at.run()
    at.session_state["visualize.models"] = [k for k in at.session_state["visualize.models"] if k.startswith("upload:")]
    ok(at.run())
    (fit_on,) = [r for r in at.radio if r.label == "Fit on"]
    fit_on.set_value("dataset").run()
    ok(at)
    assert any("digits" in c.value and "360 images" in c.value for c in at.caption), "the picked set is described"
    _fit_buttons(at)[0].click().run()
    ok(at)
    assert not _fit_buttons(at)
    assert any("Why? PatternNet for" in s.value for s in at.subheader)
    assert list((cache / "patterns").glob("upload-*-relu.npz"))
