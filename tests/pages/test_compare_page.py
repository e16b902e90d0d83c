"""Compare Models page under AppTest: both grids on the demo models, agreement, downloads, the data set section.

AppTest cannot click the Altair agreement matrix: the click → pair translation is unit-tested in
tests/analysis/test_agreement.py and the pair is set here through its selectbox (the state the click callback writes).
"""

from __future__ import annotations

import pytest
from apptest_helpers import app, count_elements, ok
from streamlit.testing.v1 import AppTest

from ui.cache import gallery

TIMEOUT = 300
PAGE = "pages/compare.py"




def _downloads(at: AppTest) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


@pytest.fixture(scope="module")
def cmp() -> AppTest:
    return ok(app(PAGE, default_timeout=TIMEOUT).run())


def test_models_side_by_side_default(cmp):
    assert cmp.title[0].value == "Compare Models"
    assert any(s.value == "LRP-ε on 2 models" for s in cmp.subheader)
    headers = [m.value for m in cmp.markdown]
    assert "**Digits CNN**" in headers and "**Digits ResNet**" in headers
    # 3 default images: gallery thumbnails (3) + per row the input and one overlay per model (3 × 3)
    # + one difference map per image (3)
    assert count_elements(cmp, "image") >= 3 + 3 * 3 + 3
    captions = [c for img in cmp.image for c in img.captions]
    assert sum("%" in c and " · " in c for c in captions) >= 6, "each model's prediction and confidence per cell"


def test_agreement_table_and_downloads(cmp):
    table = cmp.dataframe[0].value
    assert list(table.columns) == ["row", "column", "Spearman ρ", "top-k IoU"]
    assert list(table["row"]) == ["Digits CNN"] and list(table["column"]) == ["Digits ResNet"]
    rho, iou = table.iloc[0]["Spearman ρ"], table.iloc[0]["top-k IoU"]
    assert -1 <= rho <= 1 and 0 <= iou <= 1
    # ρ ranks only the pixels that carry relevance (the shared empty background no longer counts as agreement), and
    # a random top-10 % pair overlaps by IoU ≈ 0.05
    assert rho > 0.05 and iou > 0.1, "two digit classifiers explaining the same digits agree more than chance"
    assert _downloads(cmp) == ["Grid (PNG)", "Agreement (CSV)", "Predictions (CSV)", "Report (HTML)"]
    assert count_elements(cmp, "vega_lite_chart") == 2, "the agreement matrix and the accuracy chart"


def test_over_a_data_set_lists_disagreements_and_adds_one_to_the_grid(cmp):
    assert any(s.value == "Over a data set" for s in cmp.subheader)
    counts = [m.value for m in cmp.markdown if "where the models disagree" in m.value]
    assert counts and int(counts[0].strip("*").split()[0]) >= 1
    picks = [b for b in cmp.button if b.label == "Add to the grid"]
    assert picks
    images_before = count_elements(cmp, "image")
    picks[0].click().run()
    ok(cmp)
    assert any(c.value.startswith("Added from the data set below") for c in cmp.caption)
    assert count_elements(cmp, "image") >= images_before + 3, "one more row: input + two model cells (+ its difference)"
    next(b for b in cmp.button if b.label == "Remove them").click().run()
    assert not any(c.value.startswith("Added from the data set below") for c in ok(cmp).caption)


def test_three_models_with_different_class_lists(cmp):
    cmp.session_state["compare.models"] = ["demo:digits_cnn", "demo:digits_resnet", "demo:shapes_cnn"]
    ok(cmp.run())
    assert "**Shapes CNN**" in [m.value for m in cmp.markdown]
    assert len(cmp.dataframe[0].value) == 3, "three pairs"
    assert any("Not evaluated" in c.value and "Shapes CNN" in c.value for c in cmp.caption)
    cmp.session_state["compare.pair"] = ("Digits ResNet", "Shapes CNN")
    ok(cmp.run())
    assert any("Digits ResNet − Shapes CNN" in m.value for m in cmp.markdown)
    cmp.session_state["compare.models"] = ["demo:digits_cnn", "demo:digits_resnet"]
    ok(cmp.run())


def test_one_model_asks_for_a_second():
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["compare.models"] = ["demo:digits_cnn"]
    at.run()
    assert not at.exception
    assert any("two to six models" in i.value for i in at.info)


def test_method_grid():
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["compare.mode"] = "methods"
    at.session_state["compare.grid_model"] = "demo:shapes_cnn"
    at.session_state["compare.gallery"] = [k for k in gallery() if k.startswith("shapes/")][:6:2]
    ok(at.run())
    methods = at.multiselect(key="compare.methods").value
    assert 3 <= len(methods) <= 4 and "gradcam" in methods
    assert any(s.value == f"Shapes CNN (plain): {len(methods)} methods" for s in at.subheader)
    headers = [m.value for m in at.markdown]
    assert all(f"**{label}**" in headers for label in ("Gradient (saliency)", "LRP-ε", "Grad-CAM"))
    # 3 images × (input + one tile per method) + 3 difference maps
    assert count_elements(at, "image") >= 3 * (1 + len(methods)) + 3
    table = at.dataframe[0].value
    assert len(table) == len(methods) * (len(methods) - 1) // 2
    assert _downloads(at) == ["Grid (PNG)", "Agreement (CSV)", "Predictions (CSV)", "Report (HTML)"]
    assert not any(s.value == "Over a data set" for s in at.subheader), "one model: no accuracy comparison"
    at.multiselect(key="compare.methods").set_value(["gradient", "input_t_gradient"]).run()
    ok(at)
    assert len(at.dataframe[0].value) == 1


def test_method_grid_reuses_visualize_maps(monkeypatch):
    """A map computed on Visualize (same model, method, image, default parameters) is not computed again."""
    import ui.cache as common

    calls = []
    real = common.explain
    monkeypatch.setattr(common, "explain", lambda *a, **kw: calls.append(a[1]) or real(*a, **kw))
    common._explanation.clear()  # maps other tests computed (the cache is the process's) must not count here
    vis = app("pages/visualize.py", default_timeout=TIMEOUT)
    vis.session_state["visualize.gallery"] = ["digits/test/0078"]
    vis.session_state["visualize.family"] = "Gradient"
    vis.session_state["visualize.method.gradient"] = "smoothgrad"
    ok(vis.run())
    assert "smoothgrad" in calls
    calls.clear()
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["compare.mode"] = "methods"
    at.session_state["compare.gallery"] = ["digits/test/0078"]
    at.session_state["compare.methods"] = ["smoothgrad", "gradient"]
    ok(at.run())
    assert "smoothgrad" not in calls, f"Visualize's smoothgrad map was recomputed: {calls}"
    assert "gradient" in calls, "the method Visualize had not shown is computed here"


def test_router_lists_and_opens_compare():
    at = app("streamlit_app.py", default_timeout=TIMEOUT).run()
    ok(at.switch_page("pages/compare.py").run())
    assert at.title[0].value == "Compare Models"


def test_pattern_methods_fit_their_patterns_first(tmp_path, monkeypatch):
    """A method grid with PatternAttribution offers the "Fit patterns" step (no map can exist before it); after the
    fit the grid shows every method's map."""
    import streamlit as st

    monkeypatch.setenv("XAI_LENS_CACHE", str(tmp_path))
    st.cache_resource.clear()  # fresh bundles: no patterns registered by an earlier test
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["compare.mode"] = "methods"
    at.session_state["compare.grid_model"] = "demo:digits_cnn"
    at.session_state["compare.methods"] = ["gradient", "pattern.attribution"]
    ok(at.run())
    fit = [b for b in at.button if b.label == "Fit patterns"]
    assert len(fit) == 1 and not at.dataframe, "the grid waits for the patterns"
    fit[0].click().run()
    ok(at)
    assert not [b for b in at.button if b.label == "Fit patterns"]
    assert any(s.value == "Digits CNN (plain): 2 methods" for s in at.subheader)
    assert list(tmp_path.glob("patterns/demo-digits-cnn-*-relu.npz"))
