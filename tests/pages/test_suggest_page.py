"""Suggest page under AppTest: activation histograms (layer and neuron mode), multi-model consensus, server
folders (labelled, unlabelled, missing) and models that cannot be compared. Chart clicks are covered by the pure
selection tests (test_suggest.py) and the browser test."""

from __future__ import annotations

import numpy as np
import pytest
from apptest_helpers import app, ok
from PIL import Image
from streamlit.testing.v1 import AppTest

from xai_core.data.demo import load_demo_set

PAGE = "pages/suggest.py"
TIMEOUT = 300


def _labels(at: AppTest) -> list[str]:
    """Labels of every expander on the page ("expander" nodes in AppTest's tree of Streamlit 1.67)."""

    def walk(node) -> list[str]:
        own = [node.label] if getattr(node, "type", None) == "expander" else []
        return own + [label for child in getattr(node, "children", {}).values() for label in walk(child)]

    return walk(at._tree)


@pytest.fixture(scope="module")
def page() -> AppTest:
    at = ok(app(PAGE, default_timeout=TIMEOUT).run())
    at.session_state["suggest.view"] = "activations"
    return ok(at.run())


def test_opens_on_the_images_worth_a_look():
    """Issue: Suggest opened on "mean activation of predictions_logits", which tells a newcomer nothing. It opens on
    two demo models' agreement, with the rankings of the images worth explaining and a sentence on how to read it."""
    at = ok(app(PAGE, default_timeout=TIMEOUT).run())
    assert at.session_state["suggest.view"] == "consensus"
    assert any(c.value.startswith("**How to read it:**") for c in at.caption)
    assert [t.label.split(" (")[0] for t in at.tabs][:2] == ["most disagreed", "least confident"]


def test_layer_mode_default(page):
    assert page.title[0].value == "Suggest"
    assert any("digits/test" in c.value and "360 images" in c.value for c in page.caption)
    assert any(c.value.startswith("360 images") for c in page.caption)


def test_neuron_mode_dense_and_spatial(page):
    page.session_state["suggest.mode"] = "neuron"
    page.session_state["suggest.layer"] = "dense1"
    ok(page.run())
    assert page.number_input(key="suggest.channel").max == 63
    page.session_state["suggest.layer"] = "conv2"
    page.session_state["suggest.how"] = "unit"
    ok(page.run())
    assert page.number_input(key="suggest.row").max == 31


def test_consensus_of_two_models(page):
    page.session_state["suggest.models"] = ["demo:digits_cnn", "demo:digits_resnet"]
    page.session_state["suggest.view"] = "consensus"
    ok(page.run())
    assert any("with disagreement" in c.value for c in page.caption)
    assert any("far are the models from the truth" in s.value for s in page.subheader)
    assert len(page.tabs) == 3  # most disagreed, least confident, confidently wrong


def test_models_with_different_classes_are_refused_in_the_page(page):
    page.session_state["suggest.models"] = ["demo:digits_cnn", "demo:shapes_cnn"]
    page.session_state["suggest.view"] = "consensus"
    page.run()
    assert not page.exception
    assert any("different classes" in e.value for e in page.error)


def test_unlabelled_folder_and_missing_folder(tmp_path):
    demo = load_demo_set("digits")
    for i in range(12):
        Image.fromarray(demo.images[i, ..., 0]).save(tmp_path / f"img{i:02d}.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["suggest.ds_source"] = "folder"
    at.session_state["suggest.ds_folder"] = str(tmp_path)
    ok(at.run())
    assert any("12 images" in c.value and "unlabelled" in c.value for c in at.caption)
    assert "1 file(s) skipped" in _labels(at)
    at.session_state["suggest.models"] = ["demo:digits_cnn", "demo:digits_resnet"]
    at.session_state["suggest.view"] = "consensus"
    ok(at.run())
    assert not any("far are the models" in s.value for s in at.subheader)  # no ground truth yet
    at.selectbox(key="suggest.one_class").set_value(int(np.bincount(demo.labels[:12]).argmax()))
    ok(at.run())
    assert any("far are the models" in s.value for s in at.subheader)
    at.session_state["suggest.ds_folder"] = str(tmp_path / "nope")
    at.run()
    assert not at.exception and any("not a folder" in e.value for e in at.error)
