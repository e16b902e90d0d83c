"""Shared helpers for the AppTest page tests: ``from apptest_helpers import ok, count_elements``."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


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
