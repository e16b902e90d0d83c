"""Keep every page behind ``streamlit_app.py``'s ``st.navigation``, even on a deep link.

Streamlit (1.60, still 1.67: checked) starts each server in its legacy multipage mode when a ``pages/`` folder exists
(``PagesManager.uses_pages_directory``) and leaves it only when the main script calls ``st.navigation``. If the
first request after a (re)start is a deep link such as ``/methods``, Streamlit runs ``pages/methods.py`` on its own:
no page config, no shared sidebar, and a navigation listing every file in ``pages/``. Every page therefore calls
:func:`through_router` first; it switches the legacy mode off and reruns, so the main script runs and routes to the
same page. Test: tests/browser/test_smoke.py::test_deep_link_goes_through_router.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def through_router() -> None:
    """Rerun through the main script if Streamlit is running this page file in legacy multipage mode."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
