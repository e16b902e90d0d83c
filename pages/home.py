"""Home: what XAI Lens does, and a live prediction with explanations on the embedded demo.

The title and the introduction are drawn before TensorFlow is imported (a cold start takes seconds), so a first
visitor never looks at a blank page; the loading step then shows as a spinner.
"""

from __future__ import annotations

import streamlit as st

from ui.router import through_router

through_router()
PAGE = "home"
SHOWN_METHODS = ("gradcam", "lrp.epsilon", "integrated_gradients")

st.title("XAI Lens")
intro = st.empty()
intro.markdown("See **why** an image classifier predicts what it predicts. Open a model, pick images, and compare "
               "explanation methods — every iNNvestigate analyzer, the Grad-CAM family and occlusion — on any class "
               "or on single neurons of any layer.")

with st.spinner("Starting TensorFlow and the explanation engine (first visit only) …"):
    from functools import partial

    import numpy as np

    from ui.cache import demo_set, explanation, get_model, predictions
    from ui.feedback import run_safely
    from ui.state import init_state
    from ui.widgets.models import demo_model_keys
    from ui.widgets.typed import select
    from xai_core.data.images import to_display
    from xai_core.methods import FAMILIES, REGISTRY, Target
    from xai_core.viz.prediction_charts import predictions_chart, predictions_frame, selected_class
    from xai_core.viz.render import normalize, overlay, upscale

intro.markdown(
    "See **why** an image classifier predicts what it predicts. Open a model, pick images, and compare "
    f"**{len(REGISTRY)} explanation methods** — every iNNvestigate analyzer, the Grad-CAM family and occlusion — "
    "on any class or on single neurons of any layer."
)
st.caption("Methods per family")
families = {f: sum(spec.family == f for spec in REGISTRY.values()) for f in FAMILIES}
for col, (family, count) in zip(st.columns(len(families)), families.items()):
    col.metric(family, count)

st.subheader("Try it on the built-in demo")
st.caption("The demo models were trained on data that ships with the app, so this works fully offline.")

keys = demo_model_keys()
left, right = st.columns([2, 1])
model_key = select("Demo model", list(keys), labels=keys, key=f"{PAGE}.model", where=left)
bundle = run_safely(lambda: get_model(model_key), "Loading the model")
if bundle is None:
    st.stop()

data = demo_set(bundle.info.get("dataset", "digits"), "test")
index = int(right.number_input(f"Test image (0–{len(data) - 1})", 0, len(data) - 1, value=0, step=1,
                               key=f"{PAGE}.image"))
image = data.images[index : index + 1].astype(np.float32)
image_key = data.ids[index]
probs = predictions(model_key, image_key, image)[0]

# The class explained: the prediction for a new image or model, else the one picked in the list or on the chart.
shown_for = (model_key, image_key)
if st.session_state.get(f"{PAGE}.class_for") != shown_for:
    st.session_state[f"{PAGE}.class_for"] = shown_for
    st.session_state[f"{PAGE}.class"] = int(probs.argmax())
init_state(f"{PAGE}.class", int(probs.argmax()))


def on_bar_click() -> None:
    clicked = selected_class(st.session_state.get(f"{PAGE}.pred_chart"))
    if clicked is not None:
        st.session_state[f"{PAGE}.class"] = clicked


c_img, c_pred = st.columns([1, 2])
with c_img:
    st.image(upscale(to_display(image[0]), 224), caption=f"True label: {data.class_names[data.labels[index]]}",
             width=224)
with c_pred:
    order = [int(c) for c in np.argsort(-probs, kind="stable")]
    names = bundle.class_names
    target_class = select("Class to explain", order, key=f"{PAGE}.class",
                          labels=lambda c: f"{names[c]} · {probs[c]:.1%}",
                          help="Every class, most probable first. Clicking a bar of the chart picks it too.")
    st.markdown("**Top-5 predictions** — click a bar to explain that class")
    df = predictions_frame(probs[None], bundle.class_names, k=5, image_names=[image_key])
    st.altair_chart(predictions_chart(df, selected=target_class), on_select=on_bar_click, key=f"{PAGE}.pred_chart",
                    width="stretch")

st.markdown(f"**Why “{bundle.class_names[target_class]}”?** Three methods, red = evidence for the class "
            "(blue = against, for signed methods):")
for col, method_id in zip(st.columns(len(SHOWN_METHODS)), SHOWN_METHODS):
    spec = REGISTRY[method_id]
    result = run_safely(partial(explanation, model_key, method_id, image_key, Target.of_class(target_class),
                                spec.defaults(), image), spec.label)
    if result is None:
        continue
    norm = normalize(result.maps[0, 0], signed=spec.signed, mode="percentile", percentile=99.5)
    col.image(upscale(overlay(to_display(image[0]), norm, spec.signed, alpha=0.7), 224), caption=spec.label,
              width=224)
    col.caption(spec.summary)

st.info("Open **Methods** in the sidebar for what each method shows, when it misleads, and its paper.",
        icon=":material/menu_book:")
