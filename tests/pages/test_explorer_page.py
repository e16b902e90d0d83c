"""Dataset Explorer under AppTest on the demo digits set: every tab, chart selections (set through session state,
as a click would), deep dream runs, an unlabelled pairing, and layers without channel maps.

Real chart clicks are in tests/browser/test_explorer_browser.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from apptest_helpers import app, count_elements, ok
from streamlit.testing.v1 import AppTest

PAGE = "pages/explorer.py"
TIMEOUT = 300



def _images(at: AppTest) -> int:
    return count_elements(at, "image")


def _explain_keys(at: AppTest, part: str) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith(f"explorer.{part}.explain.")]


def _tab(at: AppTest, name: str) -> AppTest:
    """Run with tab ``name`` open (only the open tab runs). AppTest has no widget for stateful tabs and sends the
    first tab on the next run, so every run sets the tab again."""
    at.session_state["explorer.tab"] = name
    return ok(at.run())


@pytest.fixture(scope="module")
def page() -> AppTest:
    return ok(app(PAGE, default_timeout=TIMEOUT).run())


def test_accuracy_tab(page):
    assert page.title[0].value == "Dataset Explorer"
    assert [t.label for t in page.tabs] == ["Accuracy", "Confusion", "t-SNE", "Activations", "Max activating",
                                           "Deep dream"]
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Accuracy"] == "99.7%" and metrics["Labelled images"] == "360 of 360"
    assert metrics["Misclassified"] == "1"
    assert len(page.dataframe) == 2  # per-class table and each image's scores
    per_class, scores = page.dataframe[0].value, page.dataframe[1].value
    assert list(per_class.columns) == ["class", "precision", "recall", "f1", "support"]
    assert per_class["support"].sum() == 360 and scores.shape[0] == 360
    assert scores["correct"].sum() == 359 and {"p(0)", "p(9)"} <= set(scores.columns)


def test_only_the_open_tab_runs(page):
    _tab(page, "Deep dream")
    assert not page.metric and not page.dataframe
    assert any(b.label.startswith("Dream: maximise channel 0 of conv3") for b in page.button)


def test_confusion_cell_selection_lists_its_images_by_confidence(page):
    _tab(page, "Confusion")
    assert any(c.value.startswith("Rows: true class") for c in page.caption)
    page.session_state["explorer.confusion"] = {"selection": {"confusion_cell": [{"true_index": 3,
                                                                                  "predicted_index": 3}]}}
    _tab(page, "Confusion")
    assert any(s.value == "True 3, predicted 3: 37 images" for s in page.subheader)
    assert len(_explain_keys(page, "cell")) == 24, "the first 24 of 37 as cards"
    page.session_state["explorer.confusion"] = {"selection": {"confusion_cell": [{"true_index": 1,
                                                                                  "predicted_index": 2}]}}
    _tab(page, "Confusion")
    assert any(s.value == "True 1, predicted 2: 1 image" for s in page.subheader)
    assert len(_explain_keys(page, "cell")) == 1
    page.session_state["explorer.confusion"] = {"selection": {"confusion_cell": []}}
    _tab(page, "Confusion")
    assert not _explain_keys(page, "cell")


def test_tsne_pick_brush_and_perplexity(page):
    _tab(page, "t-SNE")
    assert any(c.value.startswith("360 images · all 8,192 activations of conv3") for c in page.caption)
    page.session_state["explorer.tsne"] = {"selection": {"tsne_pick": [{"index": 5}], "tsne_brush": {}}}
    _tab(page, "t-SNE")
    assert any(s.value == "1 selected image" for s in page.subheader)
    assert _explain_keys(page, "tsne") == ["explorer.tsne.explain.5"]
    page.session_state["explorer.tsne"] = {"selection": {"tsne_pick": [],
                                                         "tsne_brush": {"x": [-1e6, 1e6], "y": [-1e6, 1e6]}}}
    page.slider(key="explorer.perplexity").set_value(10)
    _tab(page, "t-SNE")
    assert any(s.value == "360 selected images" for s in page.subheader)
    assert page.slider(key="explorer.perplexity").max == 50
    page.session_state["explorer.tsne"] = {"selection": {}}
    _tab(page, "t-SNE")


def test_activations_tab(page):
    _tab(page, "Activations")
    assert _images(page) == 1 + 1 + 4, "the input, the channel grid and four overlays"
    page.number_input(key="explorer.image").set_value(17)
    page.segmented_control(key="explorer.by").set_value("max")
    _tab(page, "Activations")
    assert _explain_keys(page, "act") == ["explorer.act.explain.17"]


def test_max_activating_tab(page):
    _tab(page, "Max activating")
    captions = [c.value for c in page.caption]
    assert any("10×10-pixel receptive field" in c for c in captions)
    assert sum(" · activation " in c for c in captions) == 8, "eight maximally activating images"
    assert len(_explain_keys(page, "max")) == 8 and _images(page) == 8
    page.number_input(key="explorer.channel").set_value(5)
    page.slider(key="explorer.k").set_value(3)
    _tab(page, "Max activating")
    assert sum(" · activation " in c.value for c in page.caption) == 3
    assert any("The 3 images where channel 5 responds most" in c.value for c in page.caption)


def test_dense_layer_has_no_channel_maps_but_max_activating_works(page):
    page.selectbox(key="explorer.layer").set_value("dense1")
    _tab(page, "Max activating")
    assert any(c.value == "The 3 images where unit 5 responds most." for c in page.caption)
    _tab(page, "Activations")
    assert any("has no channel maps" in i.value for i in page.info)
    _tab(page, "t-SNE")
    assert any(c.value.startswith("360 images · all 64 activations of dense1") for c in page.caption)
    page.selectbox(key="explorer.layer").set_value("conv3")
    _tab(page, "t-SNE")


def test_deep_dream_runs_and_offers_the_png(page):
    _tab(page, "Deep dream")
    page.number_input(key="explorer.unit").set_value(7)
    page.slider(key="explorer.steps").set_value(48)
    page.button(key="explorer.dream").click()
    _tab(page, "Deep dream")
    objective = [m for m in page.metric if m.label == "Mean activation"]
    assert objective, "the dream result is shown"
    start = float(objective[0].delta.split("from ")[1].split(" ")[0])
    assert float(objective[0].value) > 5 * start
    assert any("sees it as" in c.value for c in page.caption)
    # a class, from a data set image
    page.segmented_control(key="explorer.kind").set_value("class")
    page.segmented_control(key="explorer.start").set_value("image")
    _tab(page, "Deep dream")
    page.selectbox(key="explorer.class").set_value(8)
    page.number_input(key="explorer.start_image").set_value(3)
    page.button(key="explorer.dream").click()
    _tab(page, "Deep dream")
    assert any("sees it as **8**" in c.value for c in page.caption)
    assert [m.label for m in page.metric] == ["Logit"]


def test_labels_that_do_not_match_the_model_are_unlabelled():
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["explorer.ds_demo"] = "shapes"  # digits model, shapes images: no class matches
    ok(at.run())
    assert any("only predictions are shown" in i.value for i in at.info)
    assert any(w.value.startswith("6 class folder(s) match no class") for w in at.warning)
    assert at.dataframe[0].value.shape[0] == 600
    assert not at.dataframe[0].value["correct"].any()
    _tab(at, "Confusion")
    assert any("confusion matrix needs labelled images" in i.value for i in at.info)


def test_shapes_model_on_shapes():
    at = app(PAGE, default_timeout=TIMEOUT)
    at.session_state["explorer.ds_demo"] = "shapes"
    at.session_state["explorer.model"] = "demo:shapes_cnn"
    ok(at.run())
    acc = float(next(m.value for m in at.metric if m.label == "Accuracy").rstrip("%")) / 100
    assert acc > 0.95
    assert np.isclose(at.dataframe[1].value["confidence"].max(), 1.0, atol=0.01)


def test_visualizes_method_is_prepared_in_the_background(page):
    """The page starts building the method Visualize opens on (LRP-ε by default) for the chosen model, says so,
    and says it is ready once built (on a later run: the page does not wait for it)."""
    import time

    at = _tab(page, "Accuracy")
    notes = [c.value for c in at.caption if "in the background" in c.value or "ready" in c.value]
    assert notes and "LRP-ε for" in notes[0] and "Explain" in notes[0]
    deadline = time.monotonic() + 120
    while "ready" not in notes[0] and time.monotonic() < deadline:
        time.sleep(0.5)
        at = _tab(page, "Accuracy")
        notes = [c.value for c in at.caption if "ready" in c.value or "in the background" in c.value]
    assert "LRP-ε for" in notes[0] and "ready" in notes[0], notes
