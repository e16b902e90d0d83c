"""Shared helpers for the AppTest page tests: ``from apptest_helpers import app, ok, count_elements``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def app(script: str, **kwargs: Any) -> AppTest:
    """``AppTest.from_file`` of a script given relative to the repository root (Streamlit ≥ 1.62 resolves relative
    paths against the calling test file)."""
    return AppTest.from_file(str(ROOT / script), **kwargs)


def ok(at: AppTest) -> AppTest:
    """``at`` after asserting that the run shows neither an exception nor an ``st.error``."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def count_elements(at: AppTest, kind: str, partial: bool = False) -> int:
    """Number of elements of proto type ``kind`` (``image``, ``download_button`` …; with ``partial``, types that
    contain it, e.g. ``vega`` for every chart) in the page tree. AppTest has no accessor for images or charts."""

    def count(node) -> int:
        t = getattr(node, "type", None) or ""
        return (kind in t if partial else t == kind) + sum(count(c) for c in getattr(node, "children", {}).values())

    return count(at._tree)


def chart_frames(at: AppTest) -> list:
    """The data of every Altair chart in the page, as pandas DataFrames (one per chart, in page order)."""
    import pyarrow as pa

    frames = []

    def walk(node) -> None:
        if "vega" in (getattr(node, "type", None) or ""):
            for dataset in node.proto.datasets:
                frames.append(pa.ipc.open_stream(dataset.data.data).read_pandas())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return frames
