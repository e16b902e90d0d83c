"""Building a method ahead of the click that asks for its map, in a background thread.

A method's first map on a model costs its build (seconds on an ImageNet-size network, docs/benchmarks.md), every
later map milliseconds. A page that knows which method a user will most likely ask for next (the Dataset Explorer
and Suggest pages hand images to Visualize, which opens on its chosen method) can start that build the moment the
model is chosen: :func:`start_prebuild` queues the method for one daemon thread that runs it once on a mid-gray
image, under the model's lock like every other TensorFlow call (one build at a time: two would share the two
cores of a Community Cloud machine with the pages' own work), and records which step the build is on
(:mod:`xai_core.methods.steps`), so a page can show it and a page that needs the map can wait for it
(:meth:`Prebuild.wait`) instead of building a second time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xai_core.methods import steps
from xai_core.methods.base import get_method
from xai_core.methods.explain import Target, explain
from xai_core.methods.prepared import build_key, is_prepared, mark_prepared
from xai_core.models.bundle import ModelBundle

_STARTING = threading.Lock()  # one record per build key, even when two sessions start it at once
_QUEUE: queue.Queue[Callable[[], None]] = queue.Queue()
_WORKER: list[threading.Thread] = []  # the one worker thread, started on first use


@dataclass
class Prebuild:
    """One background build: what it builds, the step it is on, and how it ended.

    Attributes
    ----------
    label : e.g. ``"LRP-ε for ResNet50"``.
    step : the latest step text (:mod:`xai_core.methods.steps`), ``"waiting to start"`` before the first.
    history : every step reported, in order.
    error : why the build failed (the page that needs the map builds again and shows the error), else None.
    """

    label: str
    step: str = "waiting to start"
    history: list[str] = field(default_factory=list)
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    @property
    def ready(self) -> bool:
        """Built without error: the next map of this method on this model needs no build."""
        return self.done and self.error is None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the build ends or ``timeout`` seconds pass; True when it ended."""
        return self.finished.wait(timeout)

    def _set_step(self, text: str) -> None:
        self.history.append(text)
        self.step = text


def _key(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None, layer: str | None) -> tuple:
    return ("prebuild", build_key(bundle, method_id, params, layer))


def running_prebuild(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None,
                     layer: str | None = None) -> Prebuild | None:
    """The background build of this (method, build parameters, target layer) on ``bundle``, if one was started."""
    try:
        record = bundle.peek(_key(bundle, method_id, params, layer))
    except Exception:  # an invalid parameter or layer: nothing was started for it
        return None
    return record if isinstance(record, Prebuild) else None


def start_prebuild(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None = None,
                   layer: str | None = None, on_done: Callable[[Prebuild], None] | None = None) -> Prebuild | None:
    """Queue a build of ``method_id`` on ``bundle`` for the class logits (``layer=None``) or neurons of ``layer``
    for the background thread; returns its :class:`Prebuild` (the queued or running one when it was started
    before), or None when the method is already built. ``on_done(record)`` is called in that thread when the
    build ends. Invalid parameters or layer start nothing (None): the page that runs the method says why."""
    if is_prepared(bundle, method_id, params, layer):
        return None
    try:
        key = _key(bundle, method_id, params, layer)
    except Exception:  # InvalidParameterError, an unknown layer
        return None
    with _STARTING:
        record = bundle.peek(key)
        if isinstance(record, Prebuild) and not (record.done and record.error):
            return record
        record = Prebuild(f"{get_method(method_id).label} for {bundle.name}")
        bundle.store(key, record, lock=False)  # not under the model's lock: a build may hold it for seconds
    probe = np.full((1, *bundle.input_shape), 127.5, np.float32)  # any image: builds do not depend on it
    target = Target.predicted() if layer is None else Target.neuron(layer, 0)

    def build() -> None:
        try:
            with steps.reporting(record._set_step):
                explain(bundle, method_id, probe, target, params)
            mark_prepared(bundle, method_id, params, layer)
        except Exception as exc:  # kept for the page; the run that needs the map raises it again
            record.error = f"{type(exc).__name__}: {exc}"
        finally:
            record.finished.set()
            if on_done is not None:
                on_done(record)

    _QUEUE.put(build)
    with _STARTING:
        if not _WORKER or not _WORKER[0].is_alive():
            _WORKER[:] = [threading.Thread(target=_work, name="xai-lens-prebuild", daemon=True)]
            _WORKER[0].start()
    return record


def _work() -> None:
    while True:
        _QUEUE.get()()  # each build catches its own errors
