"""Pages under Streamlit's AppTest: each runs on its own and through the router, without exceptions."""

from __future__ import annotations

import pytest
from apptest_helpers import app, chart_frames, ok
from streamlit.testing.v1 import AppTest

from xai_core.methods import REGISTRY
from xai_core.models.demo import DEMO_MODELS

TIMEOUT = 180  # first runs load TensorFlow models and build analyzers



@pytest.fixture(scope="module")
def home() -> AppTest:
    return ok(app("pages/home.py", default_timeout=TIMEOUT).run())


def test_router_runs_home_page():
    at = ok(app("streamlit_app.py", default_timeout=TIMEOUT).run())
    assert at.title[0].value == "XAI Lens"


def test_home_shows_prediction_and_three_explanations(home):
    assert [m.label for m in home.metric] == ["Gradient", "LRP", "Deep Taylor", "Pattern", "CAM", "Perturbation",
                                              "Reference"], "short labels: 'Perturbation methods' was cut off"
    assert sum(int(m.value) for m in home.metric) == len(REGISTRY)
    captions = [c.value for c in home.caption]
    for label in ("Grad-CAM", "LRP-ε", "Integrated Gradients"):
        assert any(REGISTRY[mid].summary in captions for mid in REGISTRY if REGISTRY[mid].label == label)
    assert any("Why “" in m.value for m in home.markdown)


def test_home_highlights_the_class_it_explains():
    """Issue: the highlighted bar was the previously explained class (the chart was drawn before the click was
    read). Now the chart is drawn after the class is settled: the highlight and the heading always agree."""
    at = ok(app("pages/home.py", default_timeout=TIMEOUT).run())
    predicted = int(chart_frames(at)[0].sort_values("rank")["class_index"].iloc[0])
    for chosen in (4, 8, predicted):
        ok(at.selectbox(key="home.class").set_value(chosen).run())
        frame = chart_frames(at)[0]
        highlighted = frame.loc[frame["is_target"], "class_index"].tolist()
        assert highlighted == ([chosen] if chosen in frame["class_index"].tolist() else []), (chosen, highlighted)
        assert any(f"Why “{chosen}”?" in m.value for m in at.markdown)


def test_home_every_class_can_be_explained():
    """Issue: 0.0 % bars were 0 px wide and Home had no class picker, so only the top class could be explained.
    Every class is in the picker (most probable first), and every bar is at least MIN_BAR wide."""
    from xai_core.viz.prediction_charts import MIN_BAR

    at = ok(app("pages/home.py", default_timeout=TIMEOUT).run())
    picker = at.selectbox(key="home.class")
    assert len(picker.options) == 10, "all ten digits, not only the top five"
    frame = chart_frames(at)[0]
    assert (frame["shown"] >= MIN_BAR).all() and (frame["probability"] < MIN_BAR).any(), "tiny classes get a bar"
    least = frame.sort_values("rank")["class_index"].iloc[-1]
    ok(picker.set_value(int(least)).run())
    assert any(f"Why “{least}”?" in m.value for m in at.markdown)
    ok(at.number_input(key="home.image").set_value(3).run())
    top = int(chart_frames(at)[0].sort_values("rank")["class_index"].iloc[0])
    assert at.selectbox(key="home.class").value == top, "a new image is explained for its prediction again"


@pytest.mark.parametrize("model_id", list(DEMO_MODELS))
def test_home_every_demo_model(home, model_id):
    home.selectbox(key="home.model").set_value(f"demo:{model_id}").run()
    ok(home)
    home.number_input(key="home.image").set_value(7).run()
    ok(home)
    label = home.markdown[next(i for i, m in enumerate(home.markdown) if "Why “" in m.value)].value
    assert "Why “" in label


def test_methods_page_lists_every_method_and_searches():
    at = ok(app("pages/methods.py", default_timeout=TIMEOUT).run())
    labels = " ".join(e.label for e in at.expander)
    for spec in REGISTRY.values():
        assert f"`{spec.id}`" in labels
    at.text_input(key="methods.query").set_value("selvaraju").run()
    assert {e.label.split("`")[1] for e in ok(at).expander} == {"gradcam", "gradcam.guided", "gradcam.counterfactual"}
