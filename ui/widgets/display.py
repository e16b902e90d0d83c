"""How maps are drawn: view, colour map, opacity, normalisation (sidebar controls that never recompute a map)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui.state import init_state, keep_valid
from xai_core.data.images import to_display
from xai_core.viz.render import DIVERGING_CMAPS, SEQUENTIAL_CMAPS, VIEWS, NormMode, upscale


@dataclass(frozen=True)
class Display:
    """How maps are drawn (never changes the maps themselves)."""

    view: str
    cmap: str
    alpha: float
    norm: NormMode
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
        norm: NormMode = "percentile" if st.radio(
            "Normalise by", ["max-abs", "percentile"], key=f"{page}.norm", horizontal=True,
            format_func={"max-abs": "max |value|", "percentile": "percentile"}.get) == "percentile" else "max-abs"
        init_state(f"{page}.pct", 99.5)
        pct = st.slider("Percentile (clip above)", 90.0, 100.0, step=0.1, key=f"{page}.pct",
                        disabled=norm != "percentile")
        init_state(f"{page}.shared", False)
        shared = st.toggle("One scale for all maps of a model", key=f"{page}.shared",
                           help="Off: each map is scaled to its own maximum. On: maps of a model share one scale, "
                                "so strengths compare across images and neurons.")
        init_state(f"{page}.topk", 5)
        top_k = st.slider("Predictions shown (top-k)", 1, 10, key=f"{page}.topk")
    return Display(str(view), str(cmap), float(alpha), norm, float(pct), bool(shared), int(top_k))


def display_image(image: np.ndarray) -> np.ndarray:
    """Model-sized input → uint8 RGB, enlarged so small inputs are visible."""
    return upscale(to_display(image), 224)
