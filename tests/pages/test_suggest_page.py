"""Suggest page under AppTest: activation histograms (layer and neuron mode), multi-model consensus, server
folders (labelled, unlabelled, missing) and models that cannot be compared. Chart clicks are covered by the pure
selection tests (test_suggest.py) and the browser test."""

from __future__ import annotations

import re

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


# ------------------------------------------------------------------------------------- strategies (SpRAy)
def _report_button(at: AppTest):
    return next(b for b in at.get("download_button") if b.proto.label == "Report (HTML)")


@pytest.fixture(scope="module")
def strategies_page() -> AppTest:
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["suggest.view"] = "strategies"
    at.session_state["suggest.ds_demo"] = "tagged_shapes"
    at.session_state["suggest.models"] = ["demo:tagged_shapes_cnn"]
    return ok(at.run())


def test_strategies_find_the_tag_and_the_check_measures_it(strategies_page):
    """The bias demo in the page: the circle class opens on the eigengap's two clusters, the tagged images one of
    them (the recorded tags say so), its relevance in the bottom-left corner, and the shortcut check shows the
    circle score falling when that corner is masked."""
    at = strategies_page
    class_key = f"suggest.sp_class.{at.session_state['suggest.sp_model']}"  # one class box per model
    assert at.session_state[class_key] == 0 and at.session_state["suggest.sp_k"] >= 2
    assert at.session_state["suggest.sp_method"] == "lrp.epsilon"
    assert any(c.value.startswith("**How to read it:**") for c in at.caption)
    assert any(c.value.startswith("**When it misleads:**") for c in at.caption)
    info = next(i.value for i in at.info if "records which images carry the tag" in i.value)
    purity, recall = (int(v) for v in re.findall(r"(\d+)% (?:tagged images|of all)", info))
    assert purity >= 90 and recall >= 90
    assert any("relevance sits **bottom-left**" in c.value for c in at.caption)
    verdict = next(m.value for m in at.markdown if m.value.startswith("Masking the hot region"))
    drop, control = (float(v) for v in re.findall(r"[-+]\d+\.\d+", verdict)[:2])
    assert drop <= -4 and abs(control) < abs(drop) / 4
    assert [b.proto.label for b in at.get("download_button")] == ["ViRelAy project (.zip)",
                                                                  "Cluster membership (.csv)", "Report (HTML)"]
    assert not _report_button(at).proto.disabled, "an analysis is on the page: its report can be downloaded"
    assert sum(b.label == "Explain" for b in at.button) == 24  # the first 24 images of the cluster, one click away


def test_changing_the_number_of_clusters_recomputes_nothing(strategies_page, monkeypatch):
    from xai_core.analysis import strategies as spray

    calls = {"maps": 0, "strategies": 0}
    real_maps, real_find = spray.class_maps, spray.find_strategies

    def count(name, fn):
        def wrapped(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(spray, "class_maps", count("maps", real_maps))
    monkeypatch.setattr(spray, "find_strategies", count("strategies", real_find))
    at = strategies_page
    k = at.session_state["suggest.sp_k"]
    at.slider(key="suggest.sp_k").set_value(k + 1)
    ok(at.run())
    assert at.session_state["suggest.sp_k"] == k + 1
    assert sum(1 for c in at.caption if c.value.startswith("**cluster ")) == k + 1
    assert calls == {"maps": 0, "strategies": 0}
    at.session_state["suggest.sp_relevance"] = "absolute"  # a clustering setting: clusters again, same maps
    ok(at.run())
    assert calls == {"maps": 0, "strategies": 1}


def test_without_an_analysis_the_strategies_report_is_disabled_and_says_why(tmp_path):
    """Twelve unlabelled digits: the class (by prediction) has too few images for strategies, so there is no
    analysis; the page says why, and the report's button is there, disabled, with a caption."""
    demo = load_demo_set("digits")
    for i in range(12):
        Image.fromarray(demo.images[i, ..., 0]).save(tmp_path / f"img{i:02d}.png")
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["suggest.ds_source"] = "folder"
    at.session_state["suggest.ds_folder"] = str(tmp_path)
    at.session_state["suggest.models"] = ["demo:digits_cnn"]
    at.session_state["suggest.view"] = "strategies"
    at.run()
    assert not at.exception and any("strategies need at least 10" in e.value for e in at.error)
    assert _report_button(at).proto.disabled
    assert any("report (HTML) is offered once" in c.value for c in at.caption)
