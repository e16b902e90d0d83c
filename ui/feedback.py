"""Errors and progress in the page: a readable message for every failure (never a traceback), one progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st

from xai_core.errors import XaiLensError
from xai_core.methods.build import Build

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
def build_steps(title: str) -> Iterator[Callable[[str], None]]:
    """A message ``title: step …`` in a fresh slot while the block runs, removed after. Yields ``show(step)``: pass
    it to :func:`xai_core.methods.steps.reporting` around a build (folding BatchNorm, the reverse graph), and call it
    for steps the block knows of itself (the first run). Not around a cached call: ``st.cache_data`` cannot replay
    an element of a slot made outside it."""
    slot = st.empty()

    def show(text: str) -> None:
        slot.info(f"{title}: {text} …", icon=":material/hourglass_top:")

    show("starting")
    try:
        yield show
    finally:
        slot.empty()


def wait_for_build(record: Build, title: str, poll_s: float = 0.25) -> None:
    """Block until a build started elsewhere (in the background, or by another session) ends, with
    ``title: step …`` in a fresh slot, updated as the build moves on; removed after."""
    where = "in the background" if record.background else "by another session"
    slot = st.empty()
    try:
        while not record.wait(poll_s):
            slot.info(f"{title}: {record.step} (started {where}) …", icon=":material/hourglass_top:")
    finally:
        slot.empty()


def prebuild_notice(records: list[Build], where: str = "Visualize") -> None:
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
