"""Pages under Streamlit's AppTest: each runs on its own and through the router, without exceptions."""

from __future__ import annotations

import pytest
from apptest_helpers import ok
from streamlit.testing.v1 import AppTest

from xai_core.methods import REGISTRY
from xai_core.models.demo import DEMO_MODELS

TIMEOUT = 180  # first runs load TensorFlow models and build analyzers



@pytest.fixture(scope="module")
def home() -> AppTest:
    return ok(AppTest.from_file("pages/home.py", default_timeout=TIMEOUT).run())


def test_router_runs_home_page():
    at = ok(AppTest.from_file("streamlit_app.py", default_timeout=TIMEOUT).run())
    assert at.title[0].value == "XAI Lens"


def test_home_shows_prediction_and_three_explanations(home):
    assert [m.label for m in home.metric] == [f"{f} methods" for f in
                                              ("Gradient", "LRP", "Deep Taylor", "Pattern", "CAM", "Perturbation",
                                               "Reference")]
    assert sum(int(m.value) for m in home.metric) == len(REGISTRY)
    captions = [c.value for c in home.caption]
    for label in ("Grad-CAM", "LRP-ε", "Integrated Gradients"):
        assert any(REGISTRY[mid].summary in captions for mid in REGISTRY if REGISTRY[mid].label == label)
    assert any("Why “" in m.value for m in home.markdown)


@pytest.mark.parametrize("model_id", list(DEMO_MODELS))
def test_home_every_demo_model(home, model_id):
    home.selectbox(key="home.model").set_value(f"demo:{model_id}").run()
    ok(home)
    home.number_input(key="home.image").set_value(7).run()
    ok(home)
    label = home.markdown[[i for i, m in enumerate(home.markdown) if "Why “" in m.value][0]].value
    assert "Why “" in label


def test_methods_page_lists_every_method_and_searches():
    at = ok(AppTest.from_file("pages/methods.py", default_timeout=TIMEOUT).run())
    labels = " ".join(e.label for e in at.expander)
    for spec in REGISTRY.values():
        assert f"`{spec.id}`" in labels
    at.text_input(key="methods.query").set_value("selvaraju").run()
    assert {e.label.split("`")[1] for e in ok(at).expander} == {"gradcam", "gradcam.guided", "gradcam.counterfactual"}
