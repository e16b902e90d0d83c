"""The page header every page starts with: title, "Reset page", and a one-line caption."""

from __future__ import annotations

import streamlit as st

from ui.state import reset_page


def page_header(page: str, title: str, caption: str) -> None:
    """The page title with a "Reset page" button beside it (see :func:`ui.state.reset_page`), and a caption."""
    left, right = st.columns([5, 1], vertical_alignment="bottom")
    left.title(title)
    right.button("Reset page", icon=":material/restart_alt:", on_click=reset_page, args=(page,), width="stretch",
                 help="Restore every choice on this page to its default.")
    st.caption(caption)
