"""Home: what XAI Lens does, and a live prediction with explanations on the embedded demo.

A cold start must not keep a first visitor waiting for TensorFlow (6–10 s to import on a 2-core box). Home's first
view — the default demo model, test image 0, its predicted class, three methods — is drawn from
:mod:`xai_core.first_view` (the engine's own numbers, computed ahead and checked against the engine by
tests/test_first_view.py) with numpy alone; the page then starts the engine and computes the same view live, so the
visitor's next click finds it warm. Anything else the visitor picks is computed live.
"""

from __future__ import annotations

import streamlit as st

from ui.router import through_router

through_router()
PAGE = "home"

st.title("XAI Lens")
intro = st.empty()
intro.markdown("See **why** an image classifier predicts what it predicts. Open a model, pick images, and compare "
               "explanation methods — every iNNvestigate analyzer, the Grad-CAM family and occlusion — on any class "
               "or on single neurons of any layer.")

from functools import partial

import numpy as np

from ui.demo_data import demo_set
from ui.widgets.typed import select
from xai_core.data.images import to_display
from xai_core.first_view import HOME_METHODS, load_first_view
from xai_core.models.demo import DEMO_MODELS, demo_model_labels
from xai_core.viz.prediction_charts import predictions_chart, predictions_frame, selected_class
from xai_core.viz.render import normalize, overlay, upscale

ENGINE = "Starting TensorFlow and the explanation engine (first visit only) …"
view = load_first_view()


def start_engine() -> None:
    """Import the engine (seconds on a cold server; at once afterwards)."""
    with st.spinner(ENGINE):
        import ui.cache  # noqa: F401
        import xai_core.methods  # noqa: F401


if view is not None:
    counts = dict(view.family_counts)
else:
    start_engine()
    from xai_core.methods import FAMILIES, REGISTRY

    counts = {f: sum(spec.family == f for spec in REGISTRY.values()) for f in FAMILIES}
intro.markdown(
    "See **why** an image classifier predicts what it predicts. Open a model, pick images, and compare "
    f"**{sum(counts.values())} explanation methods** — every iNNvestigate analyzer, the Grad-CAM family and "
    "occlusion — on any class or on single neurons of any layer."
)
st.caption("Methods per family")
for col, (family, count) in zip(st.columns(len(counts)), counts.items()):
    col.metric(family, count)

st.subheader("Try it on the built-in demo")
st.caption("The demo models were trained on data that ships with the app, so this works fully offline.")

keys = demo_model_labels()
left, right = st.columns([2, 1])
model_key = select("Demo model", list(keys), labels=keys, key=f"{PAGE}.model", where=left)
dataset = DEMO_MODELS[model_key.removeprefix("demo:")].dataset
n_images = view.n_images if view is not None and view.model_key == model_key else len(demo_set(dataset))
index = int(right.number_input(f"Test image (0–{n_images - 1})", 0, n_images - 1, value=0, step=1,
                               key=f"{PAGE}.image"))

# Computed ahead (the first view) or live: the same numbers either way.
served = view if view is not None and view.covers(model_key, index) else None
if served is not None:
    pixels, true_label, image_key = served.image, served.true_label, served.image_id
    names, probs = list(served.class_names), served.probs
else:
    start_engine()
    from ui.cache import get_model, predictions
    from ui.feedback import run_safely

    bundle = run_safely(lambda: get_model(model_key), "Loading the model")
    if bundle is None:
        st.stop()
    data = demo_set(dataset)
    pixels, true_label, image_key = data.images[index], data.class_names[data.labels[index]], data.ids[index]
    names = bundle.class_names
    probs = predictions(model_key, image_key, pixels[None].astype(np.float32))[0]
image = pixels[None].astype(np.float32)

# The class explained: the prediction for a new image or model, else the one picked in the list or on the chart.
shown_for = (model_key, image_key)
if st.session_state.get(f"{PAGE}.class_for") != shown_for:
    st.session_state[f"{PAGE}.class_for"] = shown_for
    st.session_state[f"{PAGE}.class"] = int(np.argmax(probs))
st.session_state.setdefault(f"{PAGE}.class", int(np.argmax(probs)))


def on_bar_click() -> None:
    clicked = selected_class(st.session_state.get(f"{PAGE}.pred_chart"))
    if clicked is not None:
        st.session_state[f"{PAGE}.class"] = clicked


c_img, c_pred = st.columns([1, 2])
with c_img:
    st.image(upscale(to_display(pixels), 224), caption=f"True label: {true_label}", width=224)
with c_pred:
    order = [int(c) for c in np.argsort(-probs, kind="stable")]
    target_class = select("Class to explain", order, key=f"{PAGE}.class",
                          labels=lambda c: f"{names[c]} · {probs[c]:.1%}",
                          help="Every class, most probable first. Clicking a bar of the chart picks it too.")
    st.markdown("**Top-5 predictions** — click a bar to explain that class")
    df = predictions_frame(probs[None], names, k=5, image_names=[image_key])
    st.altair_chart(predictions_chart(df, selected=target_class), on_select=on_bar_click, key=f"{PAGE}.pred_chart",
                    width="stretch")

st.markdown(f"**Why “{names[target_class]}”?** Three methods, red = evidence for the class "
            "(blue = against, for signed methods):")
computed_ahead = True
for col, method_id in zip(st.columns(len(HOME_METHODS)), HOME_METHODS):
    shown = served.shown(method_id, target_class) if served is not None else None
    if shown is not None:
        label, summary, signed, heat = shown.label, shown.summary, shown.signed, shown.map
    else:
        computed_ahead = False
        start_engine()
        from ui.cache import explanation
        from ui.feedback import run_safely
        from xai_core.methods import REGISTRY, Target

        spec = REGISTRY[method_id]
        label, summary, signed = spec.label, spec.summary, spec.signed
        result = run_safely(partial(explanation, model_key, method_id, image_key, Target.of_class(target_class),
                                    spec.defaults(), image), label)
        if result is None:
            continue
        heat = result.maps[0, 0]
    norm = normalize(heat, signed=signed, mode="percentile", percentile=99.5)
    col.image(upscale(overlay(to_display(pixels), norm, signed, alpha=0.7), 224), caption=label, width=224)
    col.caption(summary)

st.info("Open **Methods** in the sidebar for what each method shows, when it misleads, and its paper.",
        icon=":material/menu_book:")

if computed_ahead:  # the maps above came from the first view: compute them live now, so the next click is warm
    with st.spinner("Starting the explanation engine for your own clicks (first visit only) …"):
        from ui.cache import explanation, get_model, predictions
        from ui.feedback import run_safely
        from xai_core.methods import REGISTRY, Target

        if run_safely(lambda: get_model(model_key), "Loading the model") is not None:
            predictions(model_key, image_key, image)
            for method_id in HOME_METHODS:
                run_safely(partial(explanation, model_key, method_id, image_key, Target.of_class(target_class),
                                   REGISTRY[method_id].defaults(), image), REGISTRY[method_id].label)
