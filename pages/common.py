"""Shared page plumbing: the one place with Streamlit caching, plus error display and state namespacing.

Models live in ``st.cache_resource`` (one bundle per model for the whole server: it owns a TF graph, session
and lock, so any session's thread can use it); data lives in ``st.cache_data`` with explicit string keys.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from xai_core.analysis.dataset_pass import DatasetPass, dataset_pass
from xai_core.data.dataset import Dataset, demo_dataset, open_folder, open_zip
from xai_core.data.demo import DEMO_DATASETS, DemoSet, load_demo_set
from xai_core.data.gallery import GalleryImage, demo_images, photos
from xai_core.data.images import FIT_MODES, IMAGE_TYPES, fit_to_model, to_display
from xai_core.data.inputs import (
    ImageItem,
    content_key,
    decode_uploads,
    fit_key,
    from_records,
    make_record,
    shrink,
    unique,
)
from xai_core.errors import ModelLoadError, WeightsUnavailableError, XaiLensError
from xai_core.methods import (
    FAMILIES,
    REGISTRY,
    TOP_K_CHOICES,
    Explanation,
    MethodSpec,
    Target,
    explain,
    get_method,
    methods_for,
    unsupported_reason,
)
from xai_core.methods.explain import neuron_position
from xai_core.methods.patterns import cached_patterns, fit_and_cache, image_batches, training_images
from xai_core.methods.prepared import is_prepared, mark_prepared
from xai_core.models.applications import APPLICATIONS, load_application, weights_cached
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.models.demo import DEMO_MODELS, default_demo_model_id, load_demo_model
from xai_core.models.upload import AUTO, MODEL_SUFFIXES, load_user_model
from xai_core.viz.exports import slug
from xai_core.viz.prediction_charts import selected_class
from xai_core.viz.render import DIVERGING_CMAPS, SEQUENTIAL_CMAPS, VIEWS, upscale


# --------------------------------------------------------------------------- models (cache_resource)
@st.cache_resource(show_spinner="Loading the demo model …", max_entries=16)
def demo_model(model_id: str) -> ModelBundle:
    return load_demo_model(model_id)


def get_model(key: str) -> ModelBundle:
    """A loaded model by key: ``demo:<id>``, ``app:<Name>`` (a ``keras.applications`` network with ImageNet
    weights) or ``upload:...`` (a user's model registered with :func:`register_upload`)."""
    source, _, name = key.partition(":")
    if source == "demo":
        return demo_model(name)
    if source == "app":
        return application_model(name)
    if source == "upload":
        return uploaded_model(key)
    raise XaiLensError(f"Unknown model '{key}'.")


def demo_model_keys() -> dict[str, str]:
    """``demo:<id>`` → display title with accuracy."""
    return {f"demo:{m.id}": f"{m.title} — {m.test_accuracy:.1%} test accuracy" for m in DEMO_MODELS.values()}


# --------------------------------------------------------------------------- data (cache_data)
@st.cache_data(show_spinner="Preparing the demo images …", max_entries=8)
def demo_set(name: str, split: str = "test") -> DemoSet:
    return load_demo_set(name, split)


@st.cache_data(show_spinner=False, max_entries=512)
def predictions(model_key: str, image_key: str, _images: np.ndarray) -> np.ndarray:
    """Probabilities ``(N, classes)`` of ``_images`` (identified by ``image_key``) under model ``model_key``."""
    return get_model(model_key).predict(_images)


@st.cache_data(show_spinner=False, max_entries=256)
def explanation(model_key: str, method_id: str, image_key: str, target: Target, params_key: str,
                _images: np.ndarray, _params: dict[str, Any]) -> Explanation:
    """Maps for ``_images`` (identified by ``image_key``); ``params_key`` is a stable repr of ``_params``."""
    bundle = get_model(model_key)
    result = explain(bundle, method_id, _images, target, _params)
    mark_prepared(bundle, method_id, _params, target.layer)
    return result


def params_key(params: dict[str, Any]) -> str:
    return repr(sorted(params.items()))


# --------------------------------------------------------------------------- errors and state
def run_safely(fn: Callable[[], Any], what: str) -> Any | None:
    """Run ``fn``; show an :class:`XaiLensError` (or any unexpected error) as ``st.error`` and return None."""
    try:
        return fn()
    except XaiLensError as exc:
        st.error(f"**{what}:** {exc}", icon=":material/error:")
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback in the page
        st.error(f"**{what}** failed unexpectedly: {type(exc).__name__}: {exc}", icon=":material/error:")
    return None


def state_key(page: str, name: str) -> str:
    """Session-state / widget key namespaced per page, e.g. ``home.model``."""
    return f"{page}.{name}"


# =========================================================================== Visualize and friends
# Images handed from any page to Visualize: a list of records {"key": str, "name": str, "pixels": uint8 (H, W, 3)}
# (build them with xai_core.data.inputs.make_record, or call send_to_visualize).
SHARED_IMAGES = "shared.images"
MAX_IMAGES = 12  # images explained at once
MAX_UPLOAD_SIDE = 1024  # uploaded photos are downscaled to this once; models take a few hundred pixels at most
APP_RETRY_S = 60.0  # a failed ImageNet weights download is not retried on every rerun


def send_to_visualize(images: Sequence[Any], names: Sequence[str] | None = None, *, switch: bool = False,
                      models: Sequence[str] | None = None, layer: str | None = None, neuron: int | None = None) -> int:
    """Hand images to the Visualize page (replacing earlier ones); returns how many were sent.

    ``images``: uint8/float pixel arrays ``(H, W[, 1|3|4])`` in [0, 255], or records made with
    :func:`xai_core.data.inputs.make_record`. ``switch=True`` opens Visualize right away (not from a callback).
    ``models`` preselects model keys; ``layer`` (with ``neuron``: that neuron, else the layer's top neurons)
    preselects the explanation target.
    """
    records = [img if isinstance(img, dict) else make_record(img, names[i] if names else f"image {i + 1}")
               for i, img in enumerate(images)]
    st.session_state[SHARED_IMAGES] = records
    st.session_state["visualize.use_sent"] = True
    if models:
        st.session_state["visualize.models"] = list(models)
    if layer is not None:
        st.session_state["visualize.layer"] = layer
        st.session_state["visualize.target"] = "neuron" if neuron is not None else "top_neurons"
        if neuron is not None:
            st.session_state["visualize.neuron"] = int(neuron)
    if switch:
        st.switch_page("pages/visualize.py")
    return len(records)


# --------------------------------------------------------------------------- more model sources
@st.cache_resource(show_spinner=False)
def _download_failures() -> dict[str, tuple[float, str]]:
    return {}


@st.cache_resource(show_spinner="Building the Keras network (first use only) …", max_entries=4)
def _application(name: str) -> ModelBundle:
    return load_application(name)


def application_model(name: str) -> ModelBundle:
    """``keras.applications.<name>`` with ImageNet weights; offline the download error is remembered briefly."""
    failed = _download_failures().get(name)
    if failed and time.monotonic() - failed[0] < APP_RETRY_S:
        raise WeightsUnavailableError(failed[1])
    try:
        return _application(name)
    except WeightsUnavailableError as exc:
        _download_failures()[name] = (time.monotonic(), str(exc))
        raise


@st.cache_resource(show_spinner=False)
def _upload_store() -> dict[str, tuple[bytes, str, str, tuple[str, ...] | None]]:
    return {}


def register_upload(data: bytes, filename: str, preprocessing: str = AUTO,
                    class_names: Sequence[str] | None = None) -> str:
    """Keep an uploaded model file in memory; returns its model key (content hash + options) for get_model."""
    classes = tuple(class_names) if class_names else None
    ckey = content_key("\n".join(classes).encode()) if classes else "-"
    key = f"upload:{content_key(data)}:{preprocessing}:{ckey}"
    store = _upload_store()
    store[key] = (bytes(data), filename, preprocessing, classes)
    while len(store) > 8:
        store.pop(next(iter(store)))
    return key


@st.cache_resource(show_spinner="Loading your model …", max_entries=8)
def uploaded_model(key: str) -> ModelBundle:
    try:
        data, filename, preprocessing, classes = _upload_store()[key]
    except KeyError:
        raise ModelLoadError("That uploaded model is no longer in memory: upload the file again.") from None
    return load_user_model(data, filename, preprocessing=preprocessing,
                           class_names=list(classes) if classes else None)


def model_choices() -> dict[str, str]:
    """Model key → label: demo models, every keras.applications network, the user's uploads."""
    out = {f"demo:{m.id}": f"Demo · {m.title} ({m.test_accuracy:.0%})" for m in DEMO_MODELS.values()}
    for name, spec in APPLICATIONS.items():
        note = "" if weights_cached(name) else " · downloads weights"
        out[f"app:{name}"] = f"ImageNet · {name} ({spec.input_size[0]}×{spec.input_size[1]}){note}"
    for key, (_, filename, preprocessing, _) in _upload_store().items():
        out[key] = f"Yours · {filename} ({preprocessing})"
    return out


def model_summary(bundle: ModelBundle) -> str:
    """One compact Markdown line: name, input, parameters, layers, classes, preprocessing (and why), source."""
    why = bundle.info.get("preprocessing_reason")
    pre = f"preprocessing *{bundle.preprocessing.name}* ({bundle.preprocessing.description or 'custom'})"
    return (f"**{bundle.name}** · input {'×'.join(map(str, bundle.input_shape))} · {bundle.num_params:,} parameters · "
            f"{len(bundle.layers)} layers · {bundle.num_classes} classes · {pre} · {bundle.source or 'unknown source'}"
            + (f"  \n{'⚠️ ' if not bundle.info.get('preprocessing_certain', True) else ''}Preprocessing {why}"
               if why else ""))


def model_summary_frame(bundles: Sequence[ModelBundle]) -> pd.DataFrame:
    """One compact row per model: input, parameters, layers, classes, preprocessing, source."""
    return pd.DataFrame([{
        "model": b.name, "input": "×".join(map(str, b.input_shape)), "parameters": f"{b.num_params:,}",
        "layers": len(b.layers), "classes": b.num_classes, "preprocessing": b.preprocessing.name,
        "source": b.source} for b in bundles])


# --------------------------------------------------------------------------- images
@lru_cache(maxsize=1)
def gallery() -> dict[str, GalleryImage]:
    """The offline gallery: photos, then two test images per class of each demo data set."""
    return {g.key: g for g in (*photos(), *demo_images("digits"), *demo_images("shapes"))}


@st.cache_data(show_spinner="Reading the uploaded images …", max_entries=64)
def _decoded(file_keys: tuple[str, ...], _files: tuple[tuple[str, bytes], ...]) -> tuple[list[ImageItem], list[str]]:
    return decode_uploads(_files, max_side=MAX_UPLOAD_SIDE)


@st.cache_data(show_spinner=False, max_entries=512)
def _fitted(key: str, size: tuple[int, int], channels: int, mode: str, _pixels: np.ndarray) -> np.ndarray:
    return fit_to_model(_pixels, size, channels, mode)[None]


def model_input(item: ImageItem, bundle: ModelBundle, mode: str) -> tuple[str, np.ndarray]:
    """``(cache key, float32 (1, H, W, C))`` of ``item`` fitted to ``bundle``'s input with fit ``mode``."""
    key = fit_key(item.key, bundle.input_size, bundle.channels, mode)
    return key, _fitted(key, bundle.input_size, bundle.channels, mode, item.pixels)


def thumbnails(items: Sequence[ImageItem], width: int = 100) -> None:
    if items:
        st.image([upscale(i.pixels, width) for i in items], width=width,
                 caption=[i.name if len(i.name) <= 16 else i.name[:15] + "…" for i in items])


def image_picker(page: str, default: Sequence[str] = ()) -> list[ImageItem]:
    """Gallery multiselect, drag-and-drop upload and images sent from other pages; shows every problem with
    st.error and returns the usable images (at most :data:`MAX_IMAGES`)."""
    options = gallery()
    init_state(f"{page}.gallery", [k for k in default if k in options])
    chosen = st.multiselect("Gallery", list(options), format_func=lambda k: options[k].title,
                            key=f"{page}.gallery", placeholder="Photos and demo data set images")
    items = [ImageItem(k, options[k].title, options[k].pixels, "gallery") for k in chosen]
    files = st.file_uploader("Upload images", type=list(IMAGE_TYPES), accept_multiple_files=True,
                             key=f"{page}.uploads", help="PNG, JPEG, BMP, WebP, GIF or TIFF; grayscale, RGBA, "
                             "palette and 16-bit images are converted to RGB.")
    if files:
        data = tuple((f.name, f.getvalue()) for f in files)
        uploaded, errors = _decoded(tuple(f"{n}:{content_key(b)}" for n, b in data), data)
        for message in errors:
            st.error(message, icon=":material/broken_image:")
        items += uploaded
    sent, errors = from_records(st.session_state.get(SHARED_IMAGES))
    for message in errors:
        st.error(message, icon=":material/broken_image:")
    if sent:
        init_state(f"{page}.use_sent", True)
        left, right = st.columns([3, 1], vertical_alignment="center")
        use = left.toggle(f"Use the {len(sent)} image{'s' * (len(sent) > 1)} sent from another page",
                          key=f"{page}.use_sent")
        right.button("Forget them", on_click=lambda: st.session_state.pop(SHARED_IMAGES, None), type="tertiary")
        items += sent if use else []
    items = unique(items)
    if len(items) > MAX_IMAGES:
        st.warning(f"{len(items)} images chosen; the first {MAX_IMAGES} are explained.")
        items = items[:MAX_IMAGES]
    init_state(f"{page}.fit", "center-crop")
    st.radio("Fit to the model's input", list(FIT_MODES), key=f"{page}.fit", horizontal=True,
             help="\n\n".join(f"**{k}**: {v}" for k, v in FIT_MODES.items()))
    thumbnails(items)
    return items


# --------------------------------------------------------------------------- models
def model_picker(page: str, max_models: int = 4) -> list[str]:
    """Multiselect of up to ``max_models`` model keys, plus the upload of the user's own model (added to the
    selection once loaded)."""
    key = f"{page}.models"
    init_state(key, [f"demo:{default_demo_model_id()}"])
    box = st.container()
    with st.expander("Use your own model", icon=":material/upload_file:"):
        file = st.file_uploader("Model file", type=[s.lstrip(".") for s in MODEL_SUFFIXES], key=f"{page}.model_file",
                                help="model.save('model.keras') (recommended), an .h5 file, or a zipped SavedModel.")
        labels = {AUTO: "auto (the model's own rescaling, or a recognised keras.applications network's)",
                  **{k: f"{k}: {p.description}" for k, p in PREPROCESSINGS.items()}}
        init_state(f"{page}.model_pre", AUTO)
        pre = st.selectbox("Preprocessing", list(labels), format_func=labels.get, key=f"{page}.model_pre")
        names_file = st.file_uploader("Class names (optional .txt, one per line)", type=["txt"],
                                      key=f"{page}.model_classes")
        if file is not None:
            names = None
            if names_file is not None:
                text = names_file.getvalue().decode("utf-8-sig", errors="replace")
                names = [line.strip() for line in text.splitlines() if line.strip()] or None
            ukey = register_upload(file.getvalue(), file.name, pre, names)
            bundle = run_safely(lambda: get_model(ukey), f"Loading '{file.name}'")
            if bundle is not None:
                st.success(f"Loaded **{bundle.name}**: {bundle.num_classes} classes, input "
                           f"{'×'.join(map(str, bundle.input_shape))}. Preprocessing "
                           f"{bundle.info.get('preprocessing_reason', bundle.preprocessing.name)}",
                           icon=":material/check_circle:")
                if not bundle.info.get("preprocessing_certain", True):
                    st.warning("The preprocessing is a guess: if the predictions look wrong, pick the one the "
                               "model was trained with under **Preprocessing** above.", icon=":material/help:")
                added = st.session_state.setdefault(f"{page}.added_uploads", [])
                if ukey not in added:
                    added.append(ukey)
                    st.session_state[key] = [*st.session_state[key], ukey][-max_models:]
    choices = model_choices()
    st.session_state[key] = [k for k in st.session_state[key] if k in choices]
    return box.multiselect("Models", list(choices), format_func=choices.get, key=key, max_selections=max_models,
                           placeholder="Choose one or more models",
                           help="Demo models work offline; ImageNet networks download their weights once.")


def common_methods(bundles: Sequence[ModelBundle]) -> dict[str, MethodSpec]:
    """Methods every model can run, in registry (family) order."""
    return {mid: spec for mid, spec in REGISTRY.items()
            if all(unsupported_reason(b, mid) is None for b in bundles)}


# --------------------------------------------------------------------------- explanations
def explanation_shown(model_key: str, bundle: ModelBundle, method_id: str, image_key: str, target: Target,
                      params: dict[str, Any], images: np.ndarray) -> Explanation:
    """:func:`explanation`, with a spinner that says what is being built when the method is new for the model."""
    call = lambda: explanation(model_key, method_id, image_key, target, params_key(params), images, params)  # noqa: E731
    if is_prepared(bundle, method_id, params, target.layer):
        return call()
    where = f" (layer {target.layer})" if target.layer else ""
    with st.spinner(f"Building {get_method(method_id).label} for {bundle.name}{where} — first use only …"):
        return call()


def attempt(fn: Callable[[], Any], what: str) -> tuple[Any | None, str | None]:
    """``(result, None)`` or ``(None, readable message)``: like :func:`run_safely`, for showing errors later."""
    try:
        return fn(), None
    except XaiLensError as exc:
        return None, f"**{what}:** {exc}"
    except Exception as exc:  # noqa: BLE001 - never a traceback in the page
        return None, f"**{what}** failed unexpectedly: {type(exc).__name__}: {exc}"


def pattern_fit_step(page: str, bundle: ModelBundle, model_key: str, estimator: str, page_images: np.ndarray) -> bool:
    """True when ``bundle`` has signal patterns (``estimator``) for PatternNet/PatternAttribution, registered or saved
    on disk; otherwise draws a "Fit patterns" step and returns False until it was clicked and the fit succeeded.

    Demo models fit on their data set's training split; other models on ``page_images`` (the images chosen on the
    page, ``(N, H, W, C)`` at the model's input size) or on a data set the user picks (zip or server folder).
    Patterns are saved per model key, so this happens once.
    """
    if cached_patterns(bundle, model_key, estimator) is not None:
        return True
    train = training_images(bundle)
    slot = st.empty()
    box = slot.container(border=True)
    box.markdown(f"**{bundle.name}: fit patterns first.** PatternNet and PatternAttribution learn each layer's signal "
                 f"patterns from data ({estimator} estimator), once per model; they are then kept on disk.")
    fit_key = f"{page}.fit_patterns.{slug(model_key)}.{estimator}"
    dataset: Dataset | None = None
    if train is not None:
        total, batches = len(train[1]), lambda: image_batches(train[1])
        box.caption(f"They are fitted on the {total:,} training images of {train[0]}.")
    else:
        init_state(f"{fit_key}.on", "page")
        on = box.radio("Fit on", ["page", "dataset"], key=f"{fit_key}.on", horizontal=True,
                       format_func={"page": f"the {len(page_images)} image(s) chosen above",
                                    "dataset": "a data set (demo, zip upload or server folder)"}.get)
        if on == "page":
            total, batches = len(page_images), lambda: image_batches(page_images)
            box.caption("A handful of images gives rough patterns (dense layers especially): choose as many typical "
                        "images as you can, or fit on a data set.")
        else:
            with box:
                dataset = dataset_picker(f"{fit_key}.ds")
            if dataset is None:
                return False
            total = len(dataset)
            batches = lambda: (b.images for b in dataset.batches(bundle.input_size, bundle.channels,  # noqa: E731
                                                                 batch_size=64))
    if not box.button("Fit patterns", key=fit_key, type="primary", icon=":material/model_training:"):
        return False
    bar = box.progress(0.0, text="Fitting patterns …")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Fitting patterns for {bundle.name}: {done:,} / {total:,} images")

    fitted = run_safely(lambda: fit_and_cache(bundle, model_key, batches(), total, estimator, progress),
                        f"Fitting patterns for {bundle.name}")
    if fitted is not None:
        slot.empty()
    return fitted is not None


def patterns_ready(page: str, needs: Sequence[tuple[str, ModelBundle, str]],
                   images: Callable[[ModelBundle], np.ndarray]) -> bool:
    """:func:`pattern_fit_step` for every distinct ``(model key, bundle, estimator)`` in ``needs``; True when all
    have patterns. ``images(bundle)`` gives the page's images at that model's input size (fitted only if needed)."""
    distinct = {(key, est): bundle for key, bundle, est in needs}
    return all([pattern_fit_step(page, bundle, key, est, images(bundle)) for (key, est), bundle in distinct.items()])


def ready_methods(bundle: ModelBundle, model_key: str) -> tuple[list[str], list[str]]:
    """``(usable, waiting)``: the methods ``bundle`` supports, split into those that can run now and the pattern
    methods whose patterns are not fitted yet (the Visualize page fits them)."""
    usable, waiting = [], []
    for mid in methods_for(bundle):
        fitted = REGISTRY[mid].family != "Pattern" or cached_patterns(bundle, model_key, "relu") is not None
        (usable if fitted else waiting).append(mid)
    return usable, waiting


# --------------------------------------------------------------------------- widget helpers
def init_state(key: str, default: Any) -> None:
    """Give a widget key its default once (widgets are then created without ``value=``/``index=``)."""
    if key not in st.session_state:
        st.session_state[key] = default


def keep_valid(key: str, options: Sequence[Any], default: Any) -> None:
    """Reset ``key`` to ``default`` when its value is not one of ``options`` (options depend on other choices)."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def reset_page(page: str) -> None:
    """Callback: forget every ``<page>.*`` key, so all of the page's widgets return to their defaults."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.startswith(f"{page}.")]:
        del st.session_state[key]


def page_header(page: str, title: str, caption: str) -> None:
    """The page title with a "Reset page" button beside it (see :func:`reset_page`), and a one-line caption."""
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    left.title(title)
    right.button("Reset page", icon=":material/restart_alt:", on_click=reset_page, args=(page,), width="stretch",
                 help="Restore every choice on this page to its default.")
    st.caption(caption)


def _decades(lo: float, hi: float, default: float) -> list[float]:
    values = {float(f"1e{e}") for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)}
    return sorted(v for v in values | {float(default)} if lo <= v <= hi)


def param_widgets(spec: MethodSpec, key_prefix: str, layers: Sequence[str] | None = None) -> dict[str, Any]:
    """One widget per schema parameter of ``spec``; returns ``{name: value}`` (``None`` = auto).

    ``layers``: feature layers offered for a ``layer`` parameter; ``None`` = automatic only (several models).
    """
    values: dict[str, Any] = {}
    for p in spec.params:
        key = f"{key_prefix}.{spec.id}.{p.name}"
        num = int if p.kind == "int" else float
        if p.kind == "layer":
            options = ["auto", *(layers or [])]
            keep_valid(key, options, "auto")
            help_ = p.help + ("" if layers is not None else " With several models the layer is chosen automatically.")
            value = st.selectbox(p.label, options, key=key, help=help_, disabled=layers is None,
                                 format_func=lambda o: "auto (last spatial layer)" if o == "auto" else o)
            values[p.name] = None if value == "auto" else value
        elif p.kind == "choice":
            keep_valid(key, list(p.choices), p.default)
            values[p.name] = st.selectbox(p.label, p.choices, key=key, help=p.help)
        elif p.kind == "bool":
            init_state(key, bool(p.default))
            values[p.name] = st.toggle(p.label, key=key, help=p.help)
        elif p.kind == "float" and p.log and p.min and p.max and p.default is not None:
            options = _decades(p.min, p.max, p.default)
            keep_valid(key, options, float(p.default))
            values[p.name] = st.select_slider(p.label, options, key=key, help=p.help, format_func=lambda v: f"{v:g}")
        elif p.default is None or p.min is None or p.max is None or (p.max - p.min) / (p.step or 1) > 300:
            init_state(key, p.default)
            values[p.name] = st.number_input(
                p.label, min_value=None if p.min is None else num(p.min),
                max_value=None if p.max is None else num(p.max),
                step=num(p.step or (1 if p.kind == "int" else 0.1)), key=key, help=p.help,
                placeholder="auto" if p.default is None else None)
        else:
            init_state(key, num(p.default))
            values[p.name] = st.slider(p.label, num(p.min), num(p.max), step=num(p.step or 1), key=key, help=p.help)
    return values


def method_picker(page: str, allowed: dict[str, MethodSpec], default: str = "lrp.epsilon",
                  family_box: Any = None) -> MethodSpec:
    """Family (in :data:`FAMILIES` order, drawn in ``family_box`` if given) then method among ``allowed``; the
    chosen method's card below."""
    families = [f for f in FAMILIES if any(s.family == f for s in allowed.values())]
    counts = {f: sum(s.family == f for s in allowed.values()) for f in families}
    keep_valid(f"{page}.family", families, allowed[default].family if default in allowed else families[0])
    family = (family_box or st).segmented_control(
        "Method family", families, key=f"{page}.family", required=True, format_func=lambda f: f"{f} · {counts[f]}",
        help="Only methods that every chosen model supports are offered.")
    ids = [mid for mid, s in allowed.items() if s.family == family]
    key = f"{page}.method.{slug(family)}"
    keep_valid(key, ids, default if default in ids else ids[0])
    spec = allowed[st.selectbox("Method", ids, key=key, format_func=lambda m: allowed[m].label)]
    st.markdown(spec.summary)
    st.caption(f":material/warning: {spec.caveat}  \n:material/menu_book: {spec.reference}  \n"
               f"Map: {'signed — red for, blue against' if spec.signed else 'non-negative'}")
    return spec


TARGET_LABELS = {"predicted": "Predicted", "class": "Class", "neuron": "Neuron", "top_neurons": "Top neurons"}


def method_section(page: str, allowed: dict[str, MethodSpec], models: Sequence[ModelBundle],
                   ) -> tuple[MethodSpec, dict[str, Any], Target]:
    """The "Method and target" block: family + method, the method's parameters (a layer list when one model is
    chosen) and the target, side by side. Returns ``(spec, params, target)``."""
    st.subheader("Method and target")
    family_box = st.container()
    c_method, c_params, c_target = st.columns([4, 3, 5], gap="large")
    with c_method:
        spec = method_picker(page, allowed, family_box=family_box)
    with c_params:
        st.markdown("**Parameters**")
        spatial = [layer.name for layer in models[0].spatial_layers()] if len(models) == 1 else None
        params = param_widgets(spec, f"{page}.param", spatial)
        if not spec.params:
            st.caption("This method has no parameters.")
    with c_target:
        target = target_picker(page, spec, models)
    return spec, params, target


def _default_layer(layers: Sequence[Any]) -> str:
    convs = [layer for layer in layers if "Conv" in layer.kind and layer.spatial]
    return (convs or layers)[-1].name


def target_picker(page: str, spec: MethodSpec, bundles: Sequence[ModelBundle]) -> Target:
    """Predicted class, a class, a neuron of a layer or its top-k neurons (the latter two for one model only)."""
    first = bundles[0]
    same_classes = all(b.class_names == first.class_names for b in bundles)
    layers = spec.neuron_layers(first) if len(bundles) == 1 else []
    modes = ["predicted", *(["class"] if same_classes else []), *(["neuron", "top_neurons"] if layers else [])]
    keep_valid(f"{page}.target", modes, "predicted")
    mode = st.segmented_control("Explain", modes, format_func=TARGET_LABELS.get, key=f"{page}.target", required=True)
    if not same_classes:
        st.caption("Choosing a class is off: the chosen models have different class lists.")
    if len(bundles) > 1:
        st.caption("With several models, each is explained for its own top class (its most activated output "
                   "neuron); choose a single model to explain neurons of a layer.")
    elif not layers:
        st.caption(f"{spec.label} explains classes only, not neurons of inner layers.")
    if mode == "predicted":
        return Target.predicted()
    if mode == "class":
        keep_valid(f"{page}.class", range(first.num_classes), 0)
        return Target.of_class(st.selectbox("Class", range(first.num_classes), key=f"{page}.class",
                                            format_func=lambda i: f"{first.class_names[i]} ({i})",
                                            help="Type to search. Clicking a bar of a prediction chart picks it too."))
    names = [layer.name for layer in layers]
    keep_valid(f"{page}.layer", names, _default_layer(layers))
    name = st.selectbox("Layer", names, key=f"{page}.layer", format_func=lambda n: first.layer(n).label())
    info = first.layer(name)
    if mode == "neuron":
        key = f"{page}.neuron"
        if not isinstance(st.session_state.get(key), int) or not 0 <= st.session_state[key] < info.units:
            st.session_state[key] = 0
        index = st.number_input(f"Neuron (0–{info.units - 1})", 0, info.units - 1, step=1, key=key)
        st.caption(f"Position {neuron_position(info.output_shape, index)} in the layer's "
                   f"{' × '.join(map(str, info.output_shape))} output (row, column, channel).")
        return Target.neuron(name, index)
    ks = [k for k in TOP_K_CHOICES if k <= info.units]
    keep_valid(f"{page}.k", ks, 4 if 4 in ks else ks[-1])
    k = st.segmented_control("Most activated neurons per image", ks, key=f"{page}.k", required=True,
                             format_func=lambda k: f"top {k}")
    return Target.top_neurons(name, k)


def on_prediction_click(page: str, chart_key: str) -> None:
    """Chart callback: a clicked bar makes its class the explanation target."""
    clicked = selected_class(st.session_state.get(chart_key))
    if clicked is not None:
        st.session_state[f"{page}.target"] = "class"
        st.session_state[f"{page}.class"] = clicked


@dataclass(frozen=True)
class Display:
    """How maps are drawn (never changes the maps themselves)."""

    view: str
    cmap: str
    alpha: float
    norm: str
    percentile: float
    shared: bool
    top_k: int


def display_settings(page: str, signed: bool) -> Display:
    """Sidebar controls for drawing maps: view, colour map (diverging for signed maps), alpha, normalisation."""
    with st.sidebar:
        st.markdown("**Display**")
        init_state(f"{page}.view", VIEWS[0])
        view = st.radio("Show", VIEWS, key=f"{page}.view", horizontal=False)
        cmaps = DIVERGING_CMAPS if signed else SEQUENTIAL_CMAPS
        ckey = f"{page}.cmap.{'signed' if signed else 'unsigned'}"
        keep_valid(ckey, cmaps, cmaps[0])
        cmap = st.selectbox("Colour map", cmaps, key=ckey,
                            help="Signed maps use a diverging map centred at 0; non-negative maps a sequential one.")
        init_state(f"{page}.alpha", 0.6)
        alpha = st.slider("Overlay opacity", 0.0, 1.0, step=0.05, key=f"{page}.alpha")
        init_state(f"{page}.norm", "max-abs")
        norm = st.radio("Normalise by", ["max-abs", "percentile"], key=f"{page}.norm", horizontal=True,
                        format_func={"max-abs": "max |value|", "percentile": "percentile"}.get)
        init_state(f"{page}.pct", 99.5)
        pct = st.slider("Percentile (clip above)", 90.0, 100.0, step=0.1, key=f"{page}.pct",
                        disabled=norm != "percentile")
        init_state(f"{page}.shared", False)
        shared = st.toggle("One scale for all maps of a model", key=f"{page}.shared",
                           help="Off: each map is scaled to its own maximum. On: maps of a model share one scale, "
                                "so strengths compare across images and neurons.")
        init_state(f"{page}.topk", 5)
        top_k = st.slider("Predictions shown (top-k)", 1, 10, key=f"{page}.topk")
    return Display(view, cmap, float(alpha), norm, float(pct), bool(shared), int(top_k))


def display_image(image: np.ndarray) -> np.ndarray:
    """Model-sized input → uint8 RGB, enlarged so small inputs are visible."""
    return upscale(to_display(image), 224)


# =========================================================================== data sets (Suggest, Dataset Explorer)
DATASET_DIR = Path(tempfile.gettempdir()) / "xai-lens-datasets"
DATASET_SOURCES = {"demo": "Demo data set", "zip": "Upload a zip", "folder": "Folder on the server"}


@st.cache_resource(show_spinner="Reading the data set …", max_entries=8)
def _demo_dataset(name: str, split: str) -> Dataset:
    return demo_dataset(name, split)


@st.cache_resource(show_spinner="Unpacking and checking the archive …", max_entries=4)
def _zip_dataset(digest: str, name: str, _data: bytes) -> Dataset:
    return open_zip(_data, DATASET_DIR, name=name)


@st.cache_resource(show_spinner="Scanning the folder …", max_entries=4)
def _folder_dataset(path: str) -> Dataset:
    return open_folder(path)


def dataset_picker(page: str, default: str = "digits") -> Dataset | None:
    """Choose a data set: a demo set, a zip upload or a server folder (class subfolders = labels).

    Shows what was skipped and every problem in the page; returns ``None`` until a usable set is chosen.
    """
    init_state(f"{page}.ds_source", "demo")
    source = st.segmented_control("Data set", list(DATASET_SOURCES), format_func=DATASET_SOURCES.get,
                                  key=f"{page}.ds_source", required=True)
    dataset: Dataset | None = None
    if source == "demo":
        left, right = st.columns(2)
        init_state(f"{page}.ds_demo", default)
        name = left.selectbox("Demo set", list(DEMO_DATASETS), key=f"{page}.ds_demo",
                              format_func={"digits": "digits (32×32 gray, 10 classes)",
                                           "shapes": "shapes (64×64 colour, 6 classes)"}.get)
        init_state(f"{page}.ds_split", "test")
        split = right.selectbox("Split", ["test", "train"], key=f"{page}.ds_split",
                                format_func={"test": "test (held out)", "train": "train"}.get)
        dataset = run_safely(lambda: _demo_dataset(name, split), "Loading the demo set")
    elif source == "zip":
        file = st.file_uploader("Zip of images", type=["zip"], key=f"{page}.ds_zip",
                                help="Either one folder per class (folder name = class name) or images directly "
                                     "in the archive (unlabelled). Up to 50,000 images, 2 GB unpacked.")
        if file is None:
            st.info("Upload a zip to continue, or pick a demo set.", icon=":material/info:")
            return None
        data = file.getvalue()
        dataset = run_safely(lambda: _zip_dataset(content_key(data), file.name, data), f"Opening '{file.name}'")
    else:
        left, right = st.columns([5, 1], vertical_alignment="bottom")
        path = left.text_input("Folder path on the server", key=f"{page}.ds_folder",
                               placeholder="/data/my_images  (one subfolder per class, or images directly)")
        if right.button("Rescan", help="Read the folder again (after files changed)."):
            _folder_dataset.clear()
        if not path.strip():
            st.info("Enter the path of a folder on the machine running XAI Lens.", icon=":material/info:")
            return None
        dataset = run_safely(lambda: _folder_dataset(path.strip()), f"Opening '{path.strip()}'")
    if dataset is None:
        return None
    labelled = int((dataset.labels >= 0).sum())
    st.caption(f"**{dataset.name}**: {len(dataset):,} images"
               + (f", {len(dataset.class_names)} classes, {labelled:,} labelled" if dataset.labeled else
                  ", unlabelled"))
    if dataset.skipped:
        with st.expander(f"{len(dataset.skipped)} file(s) skipped", icon=":material/warning:"):
            st.dataframe(pd.DataFrame(dataset.skipped, columns=["file", "reason"]), hide_index=True)
    return dataset


class _NotCached(Exception):
    """Raised inside a cached lookup on a miss, so the value is computed outside it (exceptions are not cached)."""


@st.cache_data(show_spinner=False, max_entries=32)
def _stats(model_key: str, dataset_key: str, layers: tuple[str, ...], fit: str,
           _value: DatasetPass | None = None) -> DatasetPass:
    if _value is None:
        raise _NotCached
    return _value


def dataset_stats(model_key: str, dataset: Dataset, layers: Sequence[str] = (),
                  fit: str = "center-crop") -> DatasetPass:
    """:func:`xai_core.analysis.dataset_pass.dataset_pass`, cached per (model, data set, layers, fit), with a progress bar while
    it runs. The pass runs outside the cached function so the bar is not recorded into the cache (Streamlit
    replays elements drawn inside a cached function, and a bar in an outside slot cannot be replayed)."""
    args = (model_key, dataset.key, tuple(layers), fit)
    try:
        return _stats(*args)
    except _NotCached:
        pass
    slot = st.empty()
    name = model_choices().get(model_key, model_key).split(" — ")[0]

    def progress(done: int, total: int) -> None:
        slot.progress(done / max(total, 1), text=f"{name} over {dataset.name}: {done:,} / {total:,} images")

    try:
        result = dataset_pass(get_model(model_key), dataset, tuple(layers), fit=fit, progress=progress)
    finally:
        slot.empty()
    return _stats(*args, _value=result)


def dataset_thumbnails(dataset: Dataset, indices: Sequence[int], side: int = 96) -> list[np.ndarray]:
    """Thumbnails of data set images (unreadable ones become grey squares)."""
    out = []
    for i in indices:
        try:
            out.append(dataset.thumbnail(int(i), side))
        except XaiLensError:
            out.append(np.full((side, side, 3), 200, np.uint8))
    return out


def image_cards(page: str, name: str, dataset: Dataset, indices: Sequence[int], captions: Sequence[str],
                send: Callable[[int], dict[str, Any]] | None = None, per_row: int = 6, limit: int = 24) -> None:
    """Thumbnails of data set images with a caption each, and an "Explain" button that opens the image in
    Visualize with ``send(index)`` as :func:`send_to_visualize` keywords (models, layer, neuron)."""
    indices = [int(i) for i in indices]
    if not indices:
        st.info("No images here.", icon=":material/info:")
        return
    if len(indices) > limit:
        st.caption(f"Showing the first {limit} of {len(indices):,} images.")
    shown, captions = indices[:limit], list(captions)[:limit]
    for start in range(0, len(shown), per_row):
        cols = st.columns(per_row, gap="small")
        for col, i, thumb, text in zip(cols, shown[start:start + per_row],
                                       dataset_thumbnails(dataset, shown[start:start + per_row], 112),
                                       captions[start:start + per_row]):
            col.image(thumb, width="stretch")
            col.caption(text)
            if send is not None and col.button("Explain", key=f"{page}.{name}.explain.{i}", type="tertiary",
                                               icon=":material/image_search:", help="Open this image in Visualize"):
                pixels = run_safely(lambda i=i: dataset.read([i])[0], f"Reading '{dataset.ids[i]}'")
                if pixels is not None:
                    pixels, _ = shrink(pixels, MAX_UPLOAD_SIDE)
                    send_to_visualize([make_record(pixels, dataset.ids[i])], switch=True, **send(i))


# =========================================================================== Compare Models
def default_params(spec: MethodSpec) -> dict[str, Any]:
    """The values :func:`param_widgets` starts with (``None`` = auto): a grid of methods at their defaults then
    shares its cached maps with Visualize."""
    out: dict[str, Any] = {}
    for p in spec.params:
        num = int if p.kind == "int" else float
        if p.kind == "layer" or p.default is None:
            out[p.name] = None
        elif p.kind == "choice":
            out[p.name] = p.default
        else:
            out[p.name] = bool(p.default) if p.kind == "bool" else num(p.default)
    return out


def loaded_models(keys: Sequence[str]) -> dict[str, ModelBundle]:
    """Model key → bundle for the keys that load; each failure is shown with st.error."""
    labels = model_choices()
    loaded = {key: run_safely(lambda k=key: get_model(k), f"Loading {labels.get(key, key)}") for key in keys}
    return {k: b for k, b in loaded.items() if b is not None}


def display_input(item: ImageItem, size: tuple[int, int], mode: str) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` of ``item`` fitted to ``size`` (the picture a compare grid draws maps over)."""
    return to_display(_fitted(fit_key(item.key, size, 3, mode), size, 3, mode, item.pixels)[0])


@dataclass
class GridCell:
    """One model × method × image of a compare grid."""

    probs: np.ndarray  # (classes,)
    expl: Explanation | None
    error: str | None


def explain_grid(columns: Sequence[tuple[str, MethodSpec, dict[str, Any]]], items: Sequence[ImageItem],
                 target: Target, fit: str) -> list[list[GridCell]]:
    """Maps of every (model key, method, params) column × image, with a progress bar over the cells.

    Each image is explained on its own through :func:`explanation_shown` with Visualize's cache keys, so maps seen
    there are reused; analyzers are built once per model and method.
    """
    bar = st.progress(0.0, text="Explaining …")
    out: list[list[GridCell]] = []
    total, done = max(1, len(columns) * len(items)), 0
    for model_key, spec, params in columns:
        bundle = get_model(model_key)
        cells = []
        for item in items:
            bar.progress(done / total, text=f"{spec.label} on {bundle.name}: '{item.name}' ({done + 1}/{total})")
            image_key, x = model_input(item, bundle, fit)
            probs = predictions(model_key, image_key, x)[0]
            expl, error = attempt(lambda b=bundle, k=model_key, ik=image_key, x=x, s=spec, p=params: explanation_shown(
                k, b, s.id, ik, target, p, x), f"{spec.label} on {bundle.name}, '{item.name}'")
            cells.append(GridCell(probs, expl, error))
            done += 1
        out.append(cells)
    bar.empty()
    return out


def pick_for_grid(page: str, dataset: Dataset, index: int) -> None:
    """Callback: add data set image ``index`` to ``page``'s grid (records kept in ``<page>.picked``)."""
    pixels = run_safely(lambda: shrink(dataset.read([index])[0], MAX_UPLOAD_SIDE)[0], f"Reading '{dataset.ids[index]}'")
    if pixels is not None:
        image_id = dataset.ids[index]
        key = image_id if dataset.key.startswith("demo:") else f"{dataset.key}/{image_id}"
        picked = [r for r in st.session_state.get(f"{page}.picked", []) if r.get("key") != key]
        st.session_state[f"{page}.picked"] = [*picked, make_record(pixels, image_id, key=key)][-MAX_IMAGES:]


# =========================================================================== quality checks (Trust, Visualize panel)
from collections import OrderedDict  # noqa: E402

from xai_core.quality import SanityResult, TrustReport, cascading_randomization, dataset_metrics, trust_report  # noqa: E402
from xai_core.quality.scale import localisation_leaderboard  # noqa: E402


def _progress_slot(text: str) -> tuple[Any, Callable[[int, int], None]]:
    """An empty slot and a ``progress(done, total)`` callback drawing a progress bar in it."""
    slot = st.empty()

    def progress(done: int, total: int) -> None:
        slot.progress(done / max(total, 1), text=f"{text}: {done:,} / {total:,}")

    return slot, progress


@st.cache_data(show_spinner="Checking the maps (deletion / insertion, axioms) …", max_entries=128)
def quality_report(model_key: str, method_id: str, image_key: str, target_key: str, params_key: str, steps: int,
                   names: tuple[str, ...], _images: np.ndarray, _maps: np.ndarray, _targets: np.ndarray,
                   _params: dict[str, Any]) -> TrustReport:
    """:func:`xai_core.quality.trust_report` of maps already computed (``image_key``/``target_key``/``params_key``
    identify the arrays)."""
    return trust_report(get_model(model_key), method_id, _images, _maps, _targets, _params, list(names), steps=steps)


@st.cache_resource(show_spinner=False)
def sanity_flags() -> dict[tuple[str, str], SanityResult]:
    """Sanity checks run in this server: ``(model key, method id)`` → latest result (Methods page, Visualize)."""
    return {}


@st.cache_resource(show_spinner=False)
def _quality_results() -> OrderedDict[tuple, Any]:
    """Long quality computations by explicit key (LRU). Not ``st.cache_data``: these draw a progress bar in a slot
    made outside the function, and cache_data's replay of that bar on a hit raises ``CacheReplayClosureError``."""
    return OrderedDict()


def _computed(key: tuple, text: str, compute: Callable[[Callable[[int, int], None]], Any], keep: int = 48) -> Any:
    """``compute(progress)`` once per ``key`` for the whole server, with a progress bar while it runs."""
    store = _quality_results()
    if key in store:
        store.move_to_end(key)
        return store[key]
    slot, progress = _progress_slot(text)
    try:
        value = compute(progress)
    finally:
        slot.empty()
    store[key] = value
    while len(store) > keep:
        store.popitem(last=False)
    return value


def sanity_check(model_key: str, method_id: str, params: dict[str, Any], image_key: str, images: np.ndarray,
                 max_steps: int | None = None) -> SanityResult:
    """Cascading randomisation of ``method_id`` on ``model_key``, cached per (model, method, parameters, images,
    steps) and recorded in :func:`sanity_flags`; a progress bar shows while it runs."""
    result = _computed(
        ("sanity", model_key, method_id, params_key(params), image_key, max_steps),
        f"{get_method(method_id).label}: randomised models",
        lambda progress: cascading_randomization(get_model(model_key), method_id, images, params,
                                                 max_steps=max_steps, progress=progress))
    sanity_flags()[(model_key, method_id)] = result
    return result


def quality_frame(model_key: str, dataset: Dataset, methods: Sequence[str], metrics: Sequence[str], n: int,
                  seed: int = 0, fit: str = "center-crop", target: str = "predicted", steps: int = 20) -> pd.DataFrame:
    """:func:`xai_core.quality.dataset_metrics`, cached per (model, data set, settings), with a progress bar."""
    key = ("dataset", model_key, dataset.key, tuple(methods), tuple(metrics), int(n), int(seed), fit, target,
           int(steps))
    return _computed(key, f"Scoring {len(methods)} method(s) on {n:,} images (maps, then metrics)",
                     lambda progress: dataset_metrics(get_model(model_key), dataset, list(methods), list(metrics), n=n,
                                                      seed=seed, fit=fit, target=target, steps=steps,
                                                      progress=progress))


def localisation_frame(model_key: str, methods: Sequence[str], n: int, seed: int = 0, margin: int = 4) -> pd.DataFrame:
    """:func:`xai_core.quality.localisation_leaderboard` on the demo shapes set, cached, with a progress bar."""
    return _computed(("localisation", model_key, tuple(methods), int(n), int(seed), int(margin)),
                     f"Explaining {n:,} shapes with {len(methods)} method(s)",
                     lambda progress: localisation_leaderboard(get_model(model_key), list(methods), n=n, seed=seed,
                                                               margin=margin, progress=progress))


# =========================================================================== Dataset Explorer
from xai_core.analysis.explore.embedding import Embedding, tsne  # noqa: E402
from xai_core.analysis.explore.metrics import Predictions  # noqa: E402


@st.cache_data(show_spinner="Computing the t-SNE map (PCA, then t-SNE) …", max_entries=16)
def tsne_embedding(model_key: str, dataset_key: str, layer: str, fit: str, perplexity: float,
                   _features: np.ndarray, _pred: Predictions) -> Embedding:
    """:func:`xai_core.analysis.explore.embedding.tsne` of a pass's layer, cached per (model, data set, layer, perplexity)."""
    return tsne(_features, _pred, perplexity=perplexity)


def explain_button(page: str, name: str, dataset: Dataset, i: int, where: Any = st, **send: Any) -> None:
    """An "Explain" button that opens data set image ``i`` in Visualize (``send``: models, layer, neuron)."""
    if where.button("Explain", key=f"{page}.{name}.explain.{i}", type="tertiary", icon=":material/image_search:",
                    help="Open this image in Visualize"):
        pixels = run_safely(lambda: dataset.read([i])[0], f"Reading '{dataset.ids[i]}'")
        if pixels is not None:
            pixels, _ = shrink(pixels, MAX_UPLOAD_SIDE)
            send_to_visualize([make_record(pixels, dataset.ids[i])], switch=True, **send)


def dataset_predictions(model_key: str, dataset: Dataset, fit: str = "center-crop") -> np.ndarray:
    """Predicted class of every image of ``dataset`` (int64 ``(N,)``, −1 where unreadable), from the cached
    :func:`dataset_stats` pass."""
    stats = dataset_stats(model_key, dataset, (), fit)
    out = np.full(len(dataset), -1, np.int64)
    out[stats.index] = stats.predicted
    return out


def picked_images(page: str) -> list[ImageItem]:
    """The images :func:`pick_for_grid` added to ``page``, with a note and a button to remove them."""
    picked, _ = from_records(st.session_state.get(f"{page}.picked"))
    if picked:
        st.caption(f"Added from the data set below: {', '.join(i.name for i in picked)}")
        st.button("Remove them", type="tertiary", on_click=lambda: st.session_state.pop(f"{page}.picked", None))
    return picked


def pick_cards(page: str, dataset: Dataset, indices: Sequence[int], captions: Sequence[str], per_row: int = 6) -> None:
    """Thumbnails of data set images, each with its caption and an "Add to the grid" button (:func:`pick_for_grid`)."""
    indices = [int(i) for i in indices]
    for start in range(0, len(indices), per_row):
        chunk = indices[start:start + per_row]
        for col, i, thumb, text in zip(st.columns(per_row), chunk, dataset_thumbnails(dataset, chunk, 112),
                                       captions[start:start + per_row]):
            col.image(thumb, width="stretch")
            col.caption(text)
            col.button("Add to the grid", key=f"{page}.pick.{i}", on_click=pick_for_grid, args=(page, dataset, i),
                       type="tertiary", icon=":material/add:")
