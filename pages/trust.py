"""Trust — can I trust this map? A localisation leaderboard, the sanity check, and any quality metric at scale."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from ui.router import through_router  # isort: skip
from ui.cache import get_model, localisation_frame, quality_frame, sanity_check
from ui.demo_data import demo_set
from ui.feedback import run_safely
from ui.format import label_of
from ui.report import report_button
from ui.state import init_state, keep_valid, open_in_visualize
from ui.widgets.datasets import dataset_picker
from ui.widgets.models import demo_model_keys, model_select
from ui.widgets.trust import worst_cards
from ui.widgets.typed import select
from xai_core.data.dataset import Dataset, demo_dataset
from xai_core.data.inputs import make_record
from xai_core.methods import methods_for, ready_methods
from xai_core.models.bundle import ModelBundle
from xai_core.models.demo import DEMO_MODELS
from xai_core.quality import METRICS, leaderboard, worst_images
from xai_core.quality.localisation import HOW_TO_READ as LOCALISATION_HOW_TO_READ
from xai_core.quality.sanity import HOW_TO_READ as SANITY_HOW_TO_READ
from xai_core.report.trust import LocalisationRun, SanityRun, ScaleRun, TrustRuns, WorstShown, trust_report
from xai_core.viz.quality_charts import (
    DATASET_METHOD,
    QUALITY_METHOD,
    dataset_chart,
    leaderboard_chart,
    sanity_chart,
    selected_method,
)

PAGE = "trust"
LOC_METHODS = ("gradient", "integrated_gradients", "lrp.epsilon", "lrp.sequential_preset_a", "gradcam", "random")
SCALE_METHODS = ("gradient", "lrp.epsilon", "gradcam", "random")


def runnable(bundle: ModelBundle, model_key: str) -> list[str]:
    """The methods that can run on the model now; pattern methods wait until their patterns are fitted."""
    usable, waiting = ready_methods(bundle, model_key)
    if waiting:
        st.caption(f"{' and '.join(label_of(m) for m in waiting)} appear here once their patterns are fitted for this "
                   "model (choose the method on Visualize: it offers the fit, once per model).")
    return usable


def on_method_click(chart_key: str, state_key: str, selection: str) -> None:
    """Chart callback: the clicked method becomes the one whose worst images are shown."""
    method = selected_method(st.session_state.get(chart_key), selection)
    if method is not None:
        st.session_state[state_key] = method


def requested(name: str, settings: tuple, text: str) -> bool:
    """A button that runs a computation for ``settings``; True while the settings are still the ones run."""
    if st.button(text, key=f"{PAGE}.{name}.go", type="primary", icon=":material/play_arrow:"):
        st.session_state[f"{PAGE}.{name}.ran"] = settings
    return st.session_state.get(f"{PAGE}.{name}.ran") == settings


def method_choice(name: str, allowed: list[str], defaults: tuple[str, ...]) -> list[str]:
    key = f"{PAGE}.{name}.methods"
    init_state(key, [m for m in defaults if m in allowed])
    st.session_state[key] = [m for m in st.session_state[key] if m in allowed]
    return st.multiselect("Methods", allowed, key=key, format_func=label_of, placeholder="Choose methods")


def worst_block(name: str, model_key: str, dataset: Dataset, frame: pd.DataFrame, methods: list[str],
                metric: str, explained: str = "predicted") -> WorstShown:
    """The method to inspect (a bar click picks it), its worst images with their maps and scores, and a button
    opening them in Visualize; returns what it showed."""
    key = f"{PAGE}.{name}.method"
    keep_valid(key, methods, methods[0])
    method = st.selectbox("Worst images of", methods, key=key, format_func=label_of,
                          help="Click a bar of the chart to choose a method.")
    st.caption(f"Where {label_of(method)} scores worst on *{METRICS[metric].label}*: each image with its map (for "
               f"{'the labelled class' if explained == 'label' else 'the predicted class'}) and its score.")
    indices, shown = worst_cards(model_key, dataset, method, metric, worst_images(frame, method, metric, k=6),
                                 explained)
    if indices and st.button(f"Open these {len(indices)} images in Visualize", key=f"{PAGE}.{name}.send",
                             icon=":material/image_search:"):
        pixels = run_safely(lambda: dataset.read(indices), "Reading the images")
        if pixels is not None:
            open_in_visualize([make_record(p, dataset.ids[i]) for i, p in zip(indices, pixels)], models=[model_key],
                              method=method, switch=True)
    return shown


through_router()
st.title("Can I trust this map?")
st.caption("An explanation is a claim about the model. These checks test the claim: does the map point at the object "
           "(localisation), does it change when the model is destroyed (sanity check), does removing what it "
           "highlights destroy the prediction (deletion / insertion)? Every check runs only when you ask.")
tab_loc, tab_sanity, tab_scale = st.tabs(["Localisation leaderboard", "Sanity check", "Data-set scale"])
runs = TrustRuns()  # what this run computed, for the report

with tab_loc:
    st.caption(LOCALISATION_HOW_TO_READ)
    shapes_keys = [f"demo:{m.id}" for m in DEMO_MODELS.values() if m.dataset == "shapes"]
    c1, c2, c3 = st.columns([3, 2, 2])
    keep_valid(f"{PAGE}.loc.model", shapes_keys, shapes_keys[0])
    loc_model = select("Model", shapes_keys, key=f"{PAGE}.loc.model", labels=demo_model_keys(), where=c1)
    init_state(f"{PAGE}.loc.n", 16)
    n_loc = c2.slider("Images", 2, 120, step=2, key=f"{PAGE}.loc.n")
    init_state(f"{PAGE}.loc.margin", 4)
    margin = c3.slider("Pointing-game margin (pixels)", 0, 8, key=f"{PAGE}.loc.margin",
                       help="Zhang et al. allow 15 pixels on 224-pixel images: 4 pixels on these 64-pixel images.")
    bundle = run_safely(lambda: get_model(loc_model), "Loading the model")
    methods = method_choice("loc", runnable(bundle, loc_model), LOC_METHODS) if bundle else []
    if bundle and methods and requested("loc", (loc_model, tuple(methods), n_loc, margin), "Compute the leaderboard"):
        frame = run_safely(lambda: localisation_frame(loc_model, methods, n_loc, margin=margin), "Localisation")
        if frame is not None:
            for col, metric in zip(st.columns(2, gap="large"), ("pointing_game", "relevance_mass")):
                chart_key = f"{PAGE}.loc.chart.{metric}"
                col.markdown(f"**{METRICS[metric].label}** · mean ± sd over {n_loc} images")
                col.altair_chart(leaderboard_chart(leaderboard(frame, metric)), key=chart_key, width="stretch",
                                 on_select=partial(on_method_click, chart_key, f"{PAGE}.loc.method", QUALITY_METHOD))
            runs.localisation = LocalisationRun(bundle, frame, n_loc, margin, worst=worst_block(
                "loc", loc_model, demo_dataset("shapes"), frame, methods, "relevance_mass", "label"))

with tab_sanity:
    st.caption(SANITY_HOW_TO_READ)
    keys = list(demo_model_keys())
    c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
    keep_valid(f"{PAGE}.san.model", keys, keys[0])
    san_model = select("Model", keys, key=f"{PAGE}.san.model", labels=demo_model_keys(), where=c1)
    bundle = run_safely(lambda: get_model(san_model), "Loading the model")
    if bundle is not None:
        # pattern methods are left out: each randomised model would need its own patterns fitted
        allowed = [m for m, spec in methods_for(bundle).items() if spec.fitting is None]
        keep_valid(f"{PAGE}.san.method", allowed, "guided_backprop" if "guided_backprop" in allowed else allowed[0])
        method = c2.selectbox("Method", allowed, key=f"{PAGE}.san.method", format_func=label_of)
        init_state(f"{PAGE}.san.n", 4)
        n_san = c3.slider("Test images", 1, 16, key=f"{PAGE}.san.n")
        init_state(f"{PAGE}.san.steps", 0)
        max_steps = c4.selectbox("Randomised models", [0, 3, 6], key=f"{PAGE}.san.steps",
                                 format_func=lambda s: "one per layer" if s == 0 else f"{s}, evenly spaced")
        if requested("san", (san_model, method, n_san, max_steps), "Run the sanity check"):
            demo_name = bundle.info["dataset"]
            images = demo_set(demo_name).images[:n_san]
            result = run_safely(partial(sanity_check, san_model, method, {}, f"{demo_name}/test[:{n_san}]", images,
                                        max_steps or None), "Sanity check")
            if result is not None:
                runs.sanity = SanityRun(bundle, result, f"{demo_name}/test[:{n_san}]")
                (st.warning if result.insensitive else st.success)(result.verdict)
                st.altair_chart(sanity_chart(result.frame, result.threshold), width="stretch")
                st.dataframe(result.summary(), hide_index=True, column_config={
                    "mean": st.column_config.NumberColumn(format="%.2f"),
                    "sd": st.column_config.NumberColumn(format="%.2f")})

with tab_scale:
    st.caption("Any metric for several methods over N images of a data set: the mean per method, and the images where "
               "a method does worst. Click a bar (or choose below) to see them and open them in Visualize.")
    ds_model = model_select(PAGE, "ds.model", "demo:digits_cnn")
    dataset = dataset_picker(PAGE)
    bundle = run_safely(lambda: get_model(ds_model), "Loading the model")
    if dataset is not None and bundle is not None:
        metrics = [m for m in METRICS.values() if not m.needs_masks or dataset.masks is not None]
        c1, c2 = st.columns([3, 2])
        with c1:
            methods = method_choice("ds", runnable(bundle, ds_model), SCALE_METHODS)
        keep_valid(f"{PAGE}.ds.metric", [m.id for m in metrics], "insertion_gain")
        metric = c2.selectbox("Metric", [m.id for m in metrics], key=f"{PAGE}.ds.metric",
                              format_func=lambda m: METRICS[m].label, help=METRICS["insertion_gain"].help)
        c1, c2, c3, c4 = st.columns(4)
        init_state(f"{PAGE}.ds.n", min(16, len(dataset)))
        n_ds = c1.number_input("Sample size", 1, len(dataset), key=f"{PAGE}.ds.n")
        init_state(f"{PAGE}.ds.seed", 0)
        seed = c2.number_input("Sample seed", 0, 10_000, key=f"{PAGE}.ds.seed")
        init_state(f"{PAGE}.ds.target", "predicted")
        target = select("Explain", ["predicted", "label"], key=f"{PAGE}.ds.target", where=c3,
                        labels={"predicted": "predicted class", "label": "labelled class"})
        init_state(f"{PAGE}.ds.steps", 20)
        steps = c4.select_slider("Deletion steps", [5, 10, 20, 50], key=f"{PAGE}.ds.steps")
        settings = (ds_model, dataset.key, tuple(methods), n_ds, seed, target, steps)
        if methods and requested("ds", settings, f"Score {len(methods)} method(s) on {n_ds} images"):
            frame = run_safely(partial(quality_frame, ds_model, dataset, methods, [m.id for m in metrics], n_ds, seed,
                                       target=target, steps=steps), "Data-set scale")
            if frame is not None and not frame[frame["metric"] == metric].empty:
                board = leaderboard(frame, metric)
                chart_key = f"{PAGE}.ds.chart"
                st.altair_chart(dataset_chart(board), key=chart_key, width="stretch",
                                on_select=partial(on_method_click, chart_key, f"{PAGE}.ds.method", DATASET_METHOD))
                runs.scale = ScaleRun(bundle, dataset.name, frame, metric, n_ds, seed, target, steps, worst_block(
                    "ds", ds_model, dataset, frame, list(board["method"]), metric, target))
            elif frame is not None:
                st.info(f"No method here has a value for {METRICS[metric].label}.", icon=":material/info:")

st.divider()
report_button(PAGE, partial(trust_report, runs), "xai-lens_trust.html", disabled=not runs.any())
st.caption("The report holds the checks computed above in this run." if runs.any() else
           "Run a check above to download its report (HTML).")
