"""What a method is doing while it builds, for a UI to say plainly which step it is on.

Building a method's graph takes a second to tens of seconds on an ImageNet-size network, running it milliseconds.
The builders call :func:`step` at each stage (folding BatchNorm, building the reverse graph, the first run);
a caller that wants to show it wraps the call in :func:`reporting`. The reporter is a context variable, so each
thread (each Streamlit session's script run) sees only its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_REPORTER: ContextVar[Callable[[str], None] | None] = ContextVar("xai_lens_step_reporter", default=None)

#: The step texts, one place (the UI shows them after the method's name).
CANONIZE = "folding BatchNormalization into the layers before it (once per model)"
REVERSE_GRAPH = "building the reverse graph (once per model and layer)"
GRADIENT_GRAPH = "building the gradient graph (once per model and layer, shared by the gradient methods)"
FIRST_RUN = "first run: TensorFlow prepares the new graph"


@contextmanager
def reporting(callback: Callable[[str], None]) -> Iterator[None]:
    """Send every :func:`step` of this thread to ``callback`` while the block runs."""
    token = _REPORTER.set(callback)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def current() -> Callable[[str], None] | None:
    """The callback this thread's steps go to, if any (a builder that records steps passes them on to it)."""
    return _REPORTER.get()


def step(text: str) -> None:
    """Report that the build has reached ``text`` (a no-op unless someone is :func:`reporting`)."""
    callback = _REPORTER.get()
    if callback is not None:
        callback(text)
