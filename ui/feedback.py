"""Errors and progress in the page: a readable message for every failure (never a traceback), one progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

from xai_core.errors import XaiLensError
from xai_core.methods import steps
from xai_core.methods.prebuild import Prebuild

T = TypeVar("T")
Progress = Callable[[int, int], None]


def failure_text(exc: BaseException, what: str) -> str:
    """The message shown for ``exc`` raised while doing ``what``."""
    if isinstance(exc, XaiLensError):
        return f"**{what}:** {exc}"
    return f"**{what}** failed unexpectedly: {type(exc).__name__}: {exc}"


def attempt(fn: Callable[[], T], what: str) -> tuple[T | None, str | None]:
    """``(result, None)`` or ``(None, readable message)``: for errors shown later, beside the result they replace."""
    try:
        return fn(), None
    except Exception as exc:  # last line of defence: never a traceback in the page
        return None, failure_text(exc, what)


def run_safely(fn: Callable[[], T], what: str) -> T | None:
    """Run ``fn``; show any error as ``st.error`` and return None."""
    result, error = attempt(fn, what)
    if error is not None:
        st.error(error, icon=":material/error:")
    return result


@contextmanager
def progress(text: str, where: Any = None) -> Iterator[Progress]:
    """A progress bar in a fresh slot (of ``where``, default the page) while the block runs; yields the
    ``progress(done, total)`` callback that :mod:`xai_core`'s long computations take. The bar is removed after."""
    slot = (where or st).empty()

    def update(done: int, total: int) -> None:
        slot.progress(min(1.0, done / max(total, 1)), text=f"{text}: {done:,} / {total:,}")

    try:
        yield update
    finally:
        slot.empty()


@contextmanager
def build_steps(title: str) -> Iterator[None]:
    """A message ``title: step …`` in a fresh slot while the block runs, updated at every step the build reports
    (:mod:`xai_core.methods.steps`: folding BatchNorm, the reverse graph, the first run), removed after."""
    slot = st.empty()

    def show(text: str) -> None:
        slot.info(f"{title}: {text} …", icon=":material/hourglass_top:")

    show("starting")
    try:
        with steps.reporting(show):
            yield
    finally:
        slot.empty()


def wait_for_prebuild(record: Prebuild, title: str, poll_s: float = 0.25) -> None:
    """Block until a background build (:func:`ui.prebuild.prebuild`) ends, with ``title: step …`` in a fresh slot,
    updated as the build moves on; removed after."""
    slot = st.empty()
    try:
        while not record.wait(poll_s):
            slot.info(f"{title}: {record.step} (started in the background) …", icon=":material/hourglass_top:")
    finally:
        slot.empty()


def prebuild_notice(records: list[Prebuild], where: str = "Visualize") -> None:
    """One caption about the background builds of ``records``: which are being prepared for ``where`` (with the
    step each is on when the page ran) and which are ready."""
    if not records:
        return
    ready = [r.label for r in records if r.ready]
    busy = [f"{r.label} ({r.step})" for r in records if not r.done]
    parts = []
    if busy:
        parts.append(f":material/hourglass_top: Preparing {', '.join(busy)} in the background")
    if ready:
        parts.append(f":material/check_circle: {', '.join(ready)} ready")
    if parts:
        st.caption(f"{'; '.join(parts)}: **Explain** opens {where} without waiting for the build.")
