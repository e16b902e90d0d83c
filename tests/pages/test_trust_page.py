"""The Trust page and Visualize's "Can I trust this map?" panel under AppTest (tiny sample sizes).

Chart clicks cannot be simulated in AppTest: the click → method → worst images translation is unit-tested in
tests/quality/test_quality.py; here the selectbox that a click sets is driven instead.
"""

from __future__ import annotations

import pytest
from apptest_helpers import app, count_elements, ok
from streamlit.testing.v1 import AppTest

TIMEOUT = 300
PAGE = "pages/trust.py"



def _charts(at: AppTest) -> int:
    return count_elements(at, "vega", partial=True)


@pytest.fixture(scope="module")
def trust() -> AppTest:
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["trust.loc.n"] = 4
    at.session_state["trust.loc.methods"] = ["gradcam", "random"]
    return ok(at.run())


def test_nothing_is_computed_until_asked(trust):
    assert trust.title[0].value == "Can I trust this map?"
    assert [t.label for t in trust.tabs] == ["Localisation leaderboard", "Sanity check", "Data-set scale"]
    assert _charts(trust) == 0
    assert {b.key for b in trust.button} >= {"trust.loc.go", "trust.san.go", "trust.ds.go"}


def _report_disabled(at: AppTest) -> bool:
    return next(b for b in at.get("download_button") if b.proto.label == "Report (HTML)").proto.disabled


def test_localisation_leaderboard_and_worst_images(trust):
    assert _report_disabled(trust), "nothing ran yet: no report"
    ok(trust.button(key="trust.loc.go").click().run())
    assert not _report_disabled(trust), "the leaderboard ran: its report can be downloaded"
    assert _charts(trust) == 2, "pointing game and relevance mass"
    box = trust.selectbox(key="trust.loc.method")
    assert box.options == ["Grad-CAM", "Random"]
    captions = [c.value for c in trust.caption]
    worst = [c for c in captions if "Relevance mass in the object: **" in c]
    assert len(worst) >= 4, "each worst image names the metric and its value (not a bare number)"
    assert all(" (class " in c for c in worst), "and the class its map explains"
    assert count_elements(trust, "image") >= len(worst), "each worst image is shown with its map"
    box.set_value("random")
    ok(trust.run())
    assert _charts(trust) == 2, "changing the inspected method keeps the (cached) leaderboard"
    trust.session_state["trust.loc.n"] = 6
    ok(trust.run())
    assert _charts(trust) == 0, "new settings: nothing runs until the button is pressed again"


def test_sanity_check_runs_and_flags_reach_the_methods_page():
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["trust.san.model"] = "demo:digits_cnn"
    at.session_state["trust.san.method"] = "input"
    at.session_state["trust.san.n"] = 2
    at.session_state["trust.san.steps"] = 3
    ok(at.run())
    ok(at.button(key="trust.san.go").click().run())
    assert any("Input insensitive to the model" in w.value for w in at.warning)
    assert _charts(at) == 1
    methods = ok(app("pages/methods.py", default_timeout=TIMEOUT).run())
    flagged = [e.label for e in methods.expander if "insensitive to the model" in e.label]
    assert any("`input`" in label for label in flagged), flagged
    assert any("demo:digits_cnn**: Input insensitive" in w.value for w in methods.warning), "this server's check"
    at.session_state["trust.san.method"] = "gradient"
    ok(at.button(key="trust.san.go").click().run())
    assert any("Gradient (saliency) changes with the model" in s.value for s in at.success)


def test_dataset_scale_and_sending_the_worst_images_to_visualize(monkeypatch):
    """Score on 3 shapes, switch the metric (no recompute), send the worst images: Visualize then explains them
    with the same model and method. (st.switch_page needs the router, whose AppTest ignores button clicks, so the
    switch itself is recorded here and Visualize is run with the state it would receive.)"""
    import streamlit

    switched: list[str] = []
    monkeypatch.setattr(streamlit, "switch_page", lambda page: switched.append(page))
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["trust.ds.model"] = "demo:shapes_cnn"
    at.session_state["trust.ds_demo"] = "shapes"
    at.session_state["trust.ds.methods"] = ["gradcam", "random"]
    at.session_state["trust.ds.n"] = 3
    at.session_state["trust.ds.steps"] = 5
    at.session_state["trust.ds.metric"] = "relevance_mass"
    ok(at.run())
    assert "Pointing game (hit rate)" in at.selectbox(key="trust.ds.metric").options, "shapes have masks"
    ok(at.button(key="trust.ds.go").click().run())
    assert _charts(at) == 1
    at.selectbox(key="trust.ds.metric").set_value("deletion_auc")
    ok(at.run())
    assert _charts(at) == 1, "all metrics were computed at once: switching the metric recomputes nothing"
    assert at.selectbox(key="trust.ds.method").value in ("gradcam", "random")
    ok(at.button(key="trust.ds.send").click().run())
    assert switched == ["pages/visualize.py"]
    sent = at.session_state["shared.images"]
    assert len(sent) == 3 and all(r["name"].startswith("shapes/test/") for r in sent)
    method = at.session_state["trust.ds.method"]
    request = at.session_state["handoff.visualize"]  # the declared hand-off, not Visualize's own widget keys
    assert request["models"] == ["demo:shapes_cnn"] and request["method"] == method
    assert not any(str(k).startswith("visualize.") for k in at.session_state), "no Visualize keys"

    vis = app("pages/visualize.py", default_timeout=TIMEOUT)
    for key in ("shared.images", "handoff.visualize"):
        vis.session_state[key] = at.session_state[key]
    vis.session_state["visualize.gallery"] = []
    ok(vis.run())
    label = "Grad-CAM" if method == "gradcam" else "Random"
    assert any(f"Why? {label} for" in s.value for s in vis.subheader)
    captions = [c for img in vis.image for c in img.captions]
    assert sum(c.startswith("shapes/test/") and c.endswith("(input 64×64)") for c in captions) == 3, captions


def test_digits_offer_no_mask_metrics():
    at = app(PAGE, default_timeout=TIMEOUT)
    ok(at.run())
    options = at.selectbox(key="trust.ds.metric").options
    assert "Pointing game (hit rate)" not in options and "Deletion AUC" in options


# --------------------------------------------------------------------------- Visualize panel
@pytest.fixture(scope="module")
def vis() -> AppTest:
    at = app("pages/visualize.py", default_timeout=TIMEOUT)
    at.session_state["visualize.trust.steps"] = 10
    return ok(at.run())


def test_visualize_panel_is_on_demand(vis):
    assert any(e.label == "Can I trust this map?" for e in vis.expander)
    assert not any("beats a random order" in m.value for m in vis.markdown), "nothing computed before the toggle"
    vis.toggle(key="visualize.trust.on").set_value(True)
    ok(vis.run())
    assert any("beats a random order on both curves" in m.value for m in vis.markdown)
    assert _charts(vis) >= 2, "the prediction chart and the curves chart"


def test_visualize_panel_shows_the_axiom_for_integrated_gradients(vis):
    vis.session_state["visualize.family"] = "Gradient"
    vis.session_state["visualize.method.gradient"] = "integrated_gradients"
    vis.session_state["visualize.trust.on"] = True
    ok(vis.run())
    text = " ".join(m.value for m in vis.markdown)
    assert "Completeness (Σ attribution = f(x) − f(reference)) holds within 5%" in text
    assert any("tolerance 5%" in c.value for c in vis.caption)


def test_visualize_panel_explains_neuron_targets_are_not_scored(vis):
    vis.session_state["visualize.family"] = "Gradient"
    vis.session_state["visualize.method.gradient"] = "gradient"
    vis.session_state["visualize.target"] = "neuron"
    ok(vis.run())
    assert any("score class explanations" in i.value for i in vis.info)
    vis.session_state["visualize.target"] = "predicted"
    ok(vis.run())


def test_pattern_methods_wait_for_their_patterns(tmp_path, monkeypatch):
    """Unfitted pattern methods are not offered (they could only fail) and the page says where to fit them; once
    the patterns exist they are offered; the sanity check never offers them (each randomised model would need its
    own patterns)."""
    import streamlit as st

    from xai_core.methods.patterns import fit_and_cache, image_batches, training_images

    monkeypatch.setenv("XAI_LENS_CACHE", str(tmp_path))
    st.cache_resource.clear()
    at = ok(app(PAGE, default_timeout=TIMEOUT).run())
    ds_methods = at.multiselect(key="trust.ds.methods").options  # labels, as shown
    assert "PatternNet" not in ds_methods and "Gradient (saliency)" in ds_methods
    assert any("appear here once their patterns are fitted" in c.value for c in at.caption)
    assert "PatternNet" not in at.selectbox(key="trust.san.method").options

    from ui.cache import get_model

    bundle = get_model("demo:digits_cnn")
    _name, images = training_images(bundle)
    fit_and_cache(bundle, "demo:digits_cnn", image_batches(images[:64]), 64)
    ok(at.run())
    assert "PatternNet" in at.multiselect(key="trust.ds.methods").options
    assert "PatternNet" not in at.selectbox(key="trust.san.method").options
