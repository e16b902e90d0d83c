"""Home: what XAI Lens does, and a live prediction with explanations on the embedded demo."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from ui.cache import demo_set, explanation, get_model, predictions
from ui.feedback import run_safely
from ui.router import through_router
from ui.widgets.models import demo_model_keys
from ui.widgets.typed import select
from xai_core.data.images import to_display
from xai_core.methods import FAMILIES, REGISTRY, Target
from xai_core.viz.prediction_charts import predictions_chart, predictions_frame, selected_class
from xai_core.viz.render import normalize, overlay, upscale

through_router()
PAGE = "home"
SHOWN_METHODS = ("gradcam", "lrp.epsilon", "integrated_gradients")

st.title("XAI Lens")
st.markdown(
    "See **why** an image classifier predicts what it predicts. Open a model, pick images, and compare "
    f"**{len(REGISTRY)} explanation methods** — every iNNvestigate analyzer, the Grad-CAM family and occlusion — "
    "on any class or on single neurons of any layer."
)

families = {f: sum(spec.family == f for spec in REGISTRY.values()) for f in FAMILIES}
cols = st.columns(len(families))
for col, (family, count) in zip(cols, families.items()):
    col.metric(f"{family} methods", count)

st.subheader("Try it on the built-in demo")
st.caption("The demo models were trained on data that ships with the app, so this works fully offline.")

keys = demo_model_keys()
left, right = st.columns([2, 1])
model_key = select("Demo model", list(keys), labels=keys, key=f"{PAGE}.model", where=left)
bundle = run_safely(lambda: get_model(model_key), "Loading the model")
if bundle is None:
    st.stop()

data = demo_set(bundle.info.get("dataset", "digits"), "test")
index = right.number_input(f"Test image (0–{len(data) - 1})", 0, len(data) - 1, value=0, step=1,
                           key=f"{PAGE}.image")
image = data.images[index : index + 1].astype(np.float32)
image_key = data.ids[index]
probs = predictions(model_key, image_key, image)[0]

c_img, c_pred = st.columns([1, 2])
with c_img:
    st.image(upscale(to_display(image[0]), 224), caption=f"True label: {data.class_names[data.labels[index]]}",
             width=224)
with c_pred:
    st.markdown("**Top-5 predictions** — click a bar to explain that class")
    df = predictions_frame(probs[None], bundle.class_names, k=5, image_names=[image_key])
    chosen = st.session_state.get(f"{PAGE}.target")
    event = st.altair_chart(predictions_chart(df, selected=chosen), on_select="rerun",
                            key=f"{PAGE}.pred_chart", width="stretch")
    clicked = selected_class(event)
    target_class = clicked if clicked is not None else int(probs.argmax())
    st.session_state[f"{PAGE}.target"] = target_class

st.markdown(f"**Why “{bundle.class_names[target_class]}”?** Three methods, red = evidence for the class "
            "(blue = against, for signed methods):")
map_cols = st.columns(len(SHOWN_METHODS))
for col, method_id in zip(map_cols, SHOWN_METHODS):
    spec = REGISTRY[method_id]
    params = spec.defaults()
    result = run_safely(partial(explanation, model_key, method_id, image_key, Target.of_class(target_class), params,
                                image), spec.label)
    if result is None:
        continue
    norm = normalize(result.maps[0, 0], signed=spec.signed, mode="percentile", percentile=99.5)
    col.image(upscale(overlay(to_display(image[0]), norm, spec.signed, alpha=0.7), 224), caption=spec.label,
              width=224)
    col.caption(spec.summary)

st.info("Open **Methods** in the sidebar for what each method shows, when it misleads, and its paper.",
        icon=":material/menu_book:")
