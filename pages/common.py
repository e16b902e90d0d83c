"""Shared page plumbing: the one place with Streamlit caching, plus error display and state namespacing.

Models live in ``st.cache_resource`` (one bundle per model for the whole server: it owns a TF graph, session
and lock, so any session's thread can use it); data lives in ``st.cache_data`` with explicit string keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from xai_core.bundle import ModelBundle
from xai_core.data.demo import DemoSet, load_demo_set
from xai_core.errors import XaiLensError
from xai_core.methods import Explanation, Target, explain
from xai_core.models.demo import DEMO_MODELS, load_demo_model


# --------------------------------------------------------------------------- models (cache_resource)
@st.cache_resource(show_spinner="Loading the demo model …", max_entries=16)
def demo_model(model_id: str) -> ModelBundle:
    return load_demo_model(model_id)


def get_model(key: str) -> ModelBundle:
    """A loaded model by key: ``demo:<id>``."""
    source, _, name = key.partition(":")
    if source == "demo":
        return demo_model(name)
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
    return explain(get_model(model_key), method_id, _images, target, _params)


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
