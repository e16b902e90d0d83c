"""The demo data sets, cached per server (no TensorFlow here: Home lists them before the engine starts)."""

from __future__ import annotations

import streamlit as st

from xai_core.data.demo import DemoSet, load_demo_set


@st.cache_data(show_spinner="Preparing the demo images …", max_entries=8)
def demo_set(name: str, split: str = "test") -> DemoSet:
    return load_demo_set(name, split)
