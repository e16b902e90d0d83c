"""Which models the page runs in progress are using (no TensorFlow here: ``streamlit_app.py`` imports it).

The memory budget must not unload a model that a running page still needs: Compare Models with two models under a
tight budget otherwise unloaded each one to load the other, over and over in one run. ``streamlit_app.py`` marks
the start and the end of every run; :func:`ui.cache.get_model` pins what it hands out; the budget spares pinned
models (it goes over rather than thrash) and unloads the rest, least recently used first.
"""

from __future__ import annotations

import threading

from streamlit.runtime.scriptrunner import get_script_run_ctx

_LOCK = threading.Lock()
_PINS: dict[str, set[str]] = {}  # session id → model keys its current run uses


def _session() -> str | None:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else None


def start_run() -> None:
    """A page run starts: it has used no model yet."""
    session = _session()
    if session is not None:
        with _LOCK:
            _PINS[session] = set()


def end_run() -> None:
    """The run ended (also when it stopped early): its models may be unloaded again."""
    session = _session()
    if session is not None:
        with _LOCK:
            _PINS.pop(session, None)


def pin(key: str) -> None:
    """The current run uses model ``key`` (only inside runs that :func:`start_run` marked)."""
    session = _session()
    if session is not None:
        with _LOCK:
            if session in _PINS:
                _PINS[session].add(key)


def pinned() -> frozenset[str]:
    """Model keys some run in progress uses, in any session."""
    with _LOCK:
        return frozenset().union(*_PINS.values()) if _PINS else frozenset()
