"""Session state: widget defaults, page reset, and the one declared hand-off between pages.

Widget keys are namespaced per page (``visualize.models``); a page writes only its own keys. Other pages that want
to open something in Visualize call :func:`open_in_visualize`, which leaves two hand-off keys:

- :data:`SENT_IMAGES` — the images, records ``{"key", "name", "pixels"}`` (:func:`xai_core.data.inputs.make_record`);
- :data:`VISUALIZE_REQUEST` — what to preselect there (models, layer, neuron, method).

Visualize turns the request into its own widget keys with :func:`apply_visualize_request` on its next run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st

from xai_core.data.inputs import make_record
from xai_core.methods import get_method, methods_for
from xai_core.models.bundle import ModelBundle
from xai_core.viz.exports import slug

SENT_IMAGES = "shared.images"
VISUALIZE_REQUEST = "handoff.visualize"
VISUALIZE = "visualize"
DEFAULT_METHOD = "lrp.epsilon"  # the method a page's method picker opens on


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


def method_key(page: str, family: str) -> str:
    """The widget key of ``page``'s method choice within ``family`` (one selectbox per family)."""
    return f"{page}.method.{slug(family)}"


def visualize_method(bundle: ModelBundle) -> tuple[str, dict[str, Any]] | None:
    """``(method id, parameter values)`` that Visualize will show for ``bundle``: this session's choice there, else
    the picker's default; None when that method is not offered for the model (Visualize then picks another)."""
    family = st.session_state.get(f"{VISUALIZE}.family")
    method = st.session_state.get(method_key(VISUALIZE, str(family))) if family else DEFAULT_METHOD
    if method not in methods_for(bundle):
        return None
    spec = get_method(str(method))
    params = {}
    for p in spec.params:
        value = st.session_state.get(f"{VISUALIZE}.param.{spec.id}.{p.name}", p.default)
        params[p.name] = None if p.kind == "layer" and value == "auto" else value
    return spec.id, params


# ------------------------------------------------------------------------------------------- hand-off
def open_in_visualize(images: Sequence[Any], names: Sequence[str] | None = None, *, switch: bool = False,
                      models: Sequence[str] | None = None, layer: str | None = None, neuron: int | None = None,
                      method: str | None = None) -> int:
    """Hand images to the Visualize page (replacing earlier ones); returns how many were sent.

    ``images``: uint8/float pixel arrays ``(H, W[, 1|3|4])`` in [0, 255], or records made with
    :func:`xai_core.data.inputs.make_record`. ``models`` preselects model keys; ``layer`` (with ``neuron``: that
    neuron, else the layer's top neurons) the target; ``method`` a method id. ``switch=True`` opens Visualize right
    away (not from a callback).
    """
    records = [img if isinstance(img, dict) else make_record(np.asarray(img), names[i] if names else f"image {i + 1}")
               for i, img in enumerate(images)]
    st.session_state[SENT_IMAGES] = records
    st.session_state[VISUALIZE_REQUEST] = {"models": list(models) if models else None, "layer": layer,
                                           "neuron": None if neuron is None else int(neuron), "method": method}
    if switch:
        st.switch_page("pages/visualize.py")
    return len(records)


def sent_images() -> Any:
    """The records handed over by :func:`open_in_visualize` (unchecked: :func:`~xai_core.data.inputs.from_records`
    validates them), or None."""
    return st.session_state.get(SENT_IMAGES)


def forget_sent() -> None:
    """Callback: drop the handed-over images."""
    st.session_state.pop(SENT_IMAGES, None)


def apply_visualize_request(page: str = VISUALIZE) -> None:
    """On Visualize: turn a pending :func:`open_in_visualize` request into this page's own widget keys, once."""
    request = st.session_state.pop(VISUALIZE_REQUEST, None)
    if not isinstance(request, dict):
        return
    st.session_state[f"{page}.use_sent"] = True
    if request.get("models"):
        st.session_state[f"{page}.models"] = list(request["models"])
    if request.get("layer") is not None:
        neuron = request.get("neuron")
        st.session_state[f"{page}.layer"] = request["layer"]
        st.session_state[f"{page}.target"] = "neuron" if neuron is not None else "top_neurons"
        if neuron is not None:
            st.session_state[f"{page}.neuron"] = int(neuron)
    if request.get("method"):
        family = get_method(request["method"]).family
        st.session_state[f"{page}.family"] = family
        st.session_state[method_key(page, family)] = request["method"]
