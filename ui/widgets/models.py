"""Picking models: the demo models, every keras.applications network, and the user's own uploads."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import streamlit as st

from ui.cache import get_model
from ui.feedback import run_safely
from ui.state import init_state
from ui.uploads import register_uploaded_file, uploads
from ui.widgets.typed import select
from xai_core.models.applications import APPLICATIONS, weights_cached
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.models.demo import DEMO_MODELS, default_demo_model_id, demo_model_labels
from xai_core.models.upload import AUTO, MODEL_SUFFIXES


def demo_model_keys() -> dict[str, str]:
    """``demo:<id>`` → display title with accuracy."""
    return demo_model_labels()


def model_details() -> dict[str, str]:
    """Model key → the long description: source, accuracy or input size, weights download, preprocessing."""
    out = {f"demo:{m.id}": f"Demo · {m.title} · {m.test_accuracy:.1%} test accuracy" for m in DEMO_MODELS.values()}
    for name, spec in APPLICATIONS.items():
        note = "" if weights_cached(name) else " · downloads its ImageNet weights once"
        out[f"app:{name}"] = f"ImageNet · keras.applications.{name} ({spec.input_size[0]}×{spec.input_size[1]}){note}"
    for key, (filename, preprocessing) in uploads().items():
        out[key] = f"Yours · {filename} · preprocessing {preprocessing}"
    return out


def model_choices() -> dict[str, str]:
    """Model key → a short, distinct label (a chip in a multiselect shows ~20 characters): demo models, every
    keras.applications network, the user's uploads. :func:`model_details` has the long form."""
    out = {f"demo:{m.id}": m.title.split(" (")[0] for m in DEMO_MODELS.values()}
    out.update({f"app:{name}": f"{name} · ImageNet" for name in APPLICATIONS})
    files = uploads()
    names = [filename for filename, _ in files.values()]
    for key, (filename, preprocessing) in files.items():
        out[key] = filename if names.count(filename) == 1 else f"{filename} · {preprocessing}"
    return out


def choices_help(keys: Sequence[str]) -> str:
    """Help text listing the long description of ``keys`` (the chosen models)."""
    details = model_details()
    return "  \n".join(details.get(k, k) for k in keys)


def loaded_models(keys: Sequence[str]) -> dict[str, ModelBundle]:
    """Model key → bundle for the keys that load; each failure is shown with st.error."""
    labels = model_choices()
    out: dict[str, ModelBundle] = {}
    for key in keys:
        bundle = run_safely(partial(get_model, key), f"Loading {labels.get(key, key)}")
        if bundle is not None:
            out[key] = bundle
    return out


def _upload_section(page: str, key: str, max_models: int) -> None:
    """The "Use your own model" expander: model file, preprocessing, class names; a loaded upload joins the
    selection stored under ``key``."""
    with st.expander("Use your own model", icon=":material/upload_file:"):
        file = st.file_uploader("Model file", type=[s.lstrip(".") for s in MODEL_SUFFIXES], key=f"{page}.model_file",
                                help="model.save('model.keras') (recommended), an .h5 file, or a zipped SavedModel.")
        labels = {AUTO: "auto (the model's own rescaling, or a recognised keras.applications network's)",
                  **{k: f"{k}: {p.description}" for k, p in PREPROCESSINGS.items()}}
        init_state(f"{page}.model_pre", AUTO)
        pre = select("Preprocessing", list(labels), labels=labels, key=f"{page}.model_pre")
        names_file = st.file_uploader("Class names (optional .txt, one per line)", type=["txt"],
                                      key=f"{page}.model_classes")
        if file is None:
            return
        names = None
        if names_file is not None:
            text = names_file.getvalue().decode("utf-8-sig", errors="replace")
            names = [line.strip() for line in text.splitlines() if line.strip()] or None
        ukey = register_uploaded_file(file, pre, names)
        bundle = run_safely(lambda: get_model(ukey), f"Loading '{file.name}'")
        if bundle is None:
            return
        report = bundle.info.get("load_report")
        st.success(f"Loaded **{bundle.name}**{f' ({report})' if report else ''}: {bundle.num_classes} classes, "
                   f"input {'×'.join(map(str, bundle.input_shape))}. Preprocessing "
                   f"{bundle.info.get('preprocessing_reason', bundle.preprocessing.name)}",
                   icon=":material/check_circle:")
        if not bundle.info.get("preprocessing_certain", True):
            st.warning("The preprocessing is a guess: if the predictions look wrong, pick the one the model was "
                       "trained with under **Preprocessing** above.", icon=":material/help:")
        added = st.session_state.setdefault(f"{page}.added_uploads", [])
        if ukey not in added:
            added.append(ukey)
            st.session_state[key] = [*st.session_state[key], ukey][-max_models:]


def model_picker(page: str, max_models: int = 4) -> list[str]:
    """Multiselect of up to ``max_models`` model keys, plus the upload of the user's own model (added to the
    selection once loaded)."""
    key = f"{page}.models"
    init_state(key, [f"demo:{default_demo_model_id()}"])
    box = st.container()
    _upload_section(page, key, max_models)
    choices = model_choices()
    st.session_state[key] = [k for k in st.session_state[key] if k in choices]
    return box.multiselect("Models", list(choices), format_func=lambda k: choices.get(k, k), key=key,
                           max_selections=max_models, placeholder="Choose one or more models",
                           help="Demo models work offline; ImageNet networks download their weights once. "
                                "Chosen:  \n" + choices_help(st.session_state[key]))


def model_select(page: str, name: str, default: str, label: str = "Model") -> str:
    """One model key from every model choice (``<page>.<name>``, ``default`` when unset or gone)."""
    choices = model_choices()
    key = f"{page}.{name}"
    if st.session_state.get(key) not in choices:
        st.session_state[key] = default if default in choices else next(iter(choices))
    return select(label, list(choices), labels=choices, key=key, help=choices_help([st.session_state[key]]))
