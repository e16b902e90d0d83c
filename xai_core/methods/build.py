"""Where a method gets built: one declared key, one record, one function (:func:`ensure_built`), in the foreground
or in the background.

A method's map costs its **build** — tensors added to the model's graph once: an iNNvestigate analyzer's reverse
graph, the gradient of the selected score, Grad-CAM's feature-layer gradient, DeepLIFT's rescaled gradient,
PatternNet's backward graph — seconds on an ImageNet-size network, and its **run**, milliseconds. A build depends on
the model, the method, the parameters marked ``builds`` and the target layer (``None`` = the class logits), never on
the images or the class (analyzers select the neuron by an index fed at run time). Each method declares its build
(:attr:`MethodSpec.build`, ``build(bundle, layer, **params)``); :func:`ensure_built` runs it once per
:func:`build_key`, keeps a :class:`Build` record of it in the bundle's cache — the step it is on while it runs, how
it ended, how much memory it took — and withdraws the method from the model, with the reason, when it fails. That
record is the only answer to "is it built?" (:func:`is_built`), for the engine and for every page.

:func:`build_in_background` queues a build for one daemon thread (one build at a time: two would share the two
cores of a Community Cloud machine with the pages' own work), so a page can prepare the method the next page will be
asked for; a page that needs it meanwhile waits for the same record (:meth:`Build.wait`) instead of building twice.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from xai_core.errors import InvalidParameterError, UnsupportedMethodError
from xai_core.methods import steps
from xai_core.methods.base import get_method, mark_unsupported, require_supported
from xai_core.models.bundle import ModelBundle
from xai_core.models.memory import rss_bytes

_CLAIM = threading.Lock()  # one record per build key, even when two sessions ask at once
_QUEUE: queue.Queue[Callable[[], None]] = queue.Queue()
_WORKER: list[threading.Thread] = []  # the background thread, started on first use


@dataclass
class Build:
    """One build of a method on a model: what it builds, the step it is on, and how it ended.

    Attributes
    ----------
    label : e.g. ``"LRP-ε for ResNet50"``.
    step : the latest step (:mod:`xai_core.methods.steps`); ``"waiting to start"`` before the first.
    history : every step reported, in order.
    error : why the build failed (the method is then withdrawn from the model), else None.
    rss_growth : bytes the process's resident memory grew by while it built (for the memory budget: see
        :meth:`take_rss_growth`).
    background : True when it was started by :func:`build_in_background`.
    """

    label: str
    step: str = "waiting to start"
    history: list[str] = field(default_factory=list)
    error: str | None = None
    rss_growth: int = 0
    background: bool = False
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    @property
    def ready(self) -> bool:
        """Built without error: the method's next map on this model needs no build."""
        return self.done and self.error is None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the build ends or ``timeout`` seconds pass; True when it ended."""
        return self.finished.wait(timeout)

    def report(self, text: str) -> None:
        self.history.append(text)
        self.step = text

    def take_rss_growth(self) -> int:
        """The memory this build added, once: the first caller after it ended gets it (to charge a memory budget),
        every later one 0."""
        with _CLAIM:
            if not self.done:
                return 0
            growth, self.rss_growth = self.rss_growth, 0
            return growth


def build_key(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None, layer: str | None) -> Hashable:
    """``("build", method, target layer, build parameters)``: what a build depends on. The output layer counts as
    ``None`` (the class logits). Raises :class:`InvalidParameterError` for invalid parameters."""
    spec = get_method(method_id)
    resolved = spec.resolve_params(params)
    layer = None if layer is None or bundle.is_output_layer(layer) else layer
    return ("build", method_id, layer, tuple((p.name, repr(resolved[p.name])) for p in spec.params if p.builds))


def record(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None, layer: str | None) -> Build | None:
    """The build record of this (method, build parameters, target layer) on ``bundle``: queued, running or ended;
    None when no build was ever started (or the parameters are invalid)."""
    try:
        found = bundle.peek(build_key(bundle, method_id, params, layer))
    except Exception:  # an invalid parameter or layer: nothing was built for it
        return None
    return found if isinstance(found, Build) else None


def is_built(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None, layer: str | None) -> bool:
    """True when the method's next map on ``bundle`` needs no build (built already, or nothing to build)."""
    if get_method(method_id).build is None:
        return True
    found = record(bundle, method_id, params, layer)
    return found is not None and found.ready


def _claim(bundle: ModelBundle, key: Hashable, label: str, background: bool) -> tuple[Build, bool]:
    """The record under ``key`` and whether the caller owns it (must build): a new record replaces a failed one."""
    with _CLAIM:
        found = bundle.peek(key)
        if isinstance(found, Build) and not (found.done and found.error):
            return found, False
        fresh = Build(label, background=background)
        bundle.store(key, fresh, lock=False)  # not under the model's lock: a running build holds it for seconds
        return fresh, True


def _build(bundle: ModelBundle, method_id: str, params: dict[str, Any], layer: str | None, key: Hashable,
           rec: Build) -> None:
    """Run the method's build into ``rec``; on failure the method is withdrawn from the model with the reason."""
    spec = get_method(method_id)
    outer = steps.current()

    def report(text: str) -> None:
        rec.report(text)
        if outer is not None:
            outer(text)

    before = rss_bytes()
    try:
        with steps.reporting(report), bundle.scope():
            assert spec.build is not None
            spec.build(bundle, layer, **params)
    except (InvalidParameterError, UnsupportedMethodError) as exc:
        rec.error = str(exc)
        raise
    except Exception as exc:  # e.g. iNNvestigate has no rule for some layer
        reason = f"{spec.label} could not be built for model '{bundle.name}': {type(exc).__name__}: {exc}"
        mark_unsupported(bundle, method_id, reason)
        rec.error = reason
        raise UnsupportedMethodError(reason) from exc
    except BaseException:  # interrupted (a Streamlit rerun stops the script): forget it, the next request builds
        with _CLAIM:
            if bundle.peek(key) is rec:
                bundle.forget(key)
        rec.error = "interrupted"
        raise
    finally:
        rec.rss_growth = max(0, rss_bytes() - before)
        rec.finished.set()


def ensure_built(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None = None,
                 layer: str | None = None) -> Build | None:
    """Build ``method_id`` on ``bundle`` for the class logits (``layer=None``) or neurons of ``layer``, once.

    Returns the record (None for methods with nothing to build). A build already running (another session's, or in
    the background) is waited for, not repeated. Steps are reported to whoever is listening
    (:func:`xai_core.methods.steps.reporting`) and kept in the record.

    Raises
    ------
    UnsupportedMethodError
        The method cannot run on this model (it is withdrawn from it, with the reason).
    InvalidParameterError
        Invalid parameters.
    """
    spec = get_method(method_id)
    require_supported(bundle, spec)
    if spec.build is None:
        return None
    resolved = spec.resolve_params(params)
    key = build_key(bundle, method_id, resolved, layer)
    layer = key[2]  # type: ignore[index]
    rec, owner = _claim(bundle, key, f"{spec.label} for {bundle.name}", background=False)
    if owner:
        _build(bundle, method_id, resolved, layer, key, rec)
        return rec
    rec.wait()
    if rec.error:
        raise UnsupportedMethodError(rec.error)
    return rec


def build_in_background(bundle: ModelBundle, method_id: str, params: dict[str, Any] | None = None,
                        layer: str | None = None) -> Build | None:
    """Queue a build of ``method_id`` on ``bundle`` for the background thread; returns its record (the queued,
    running or finished one when it was started before), or None when there is nothing to build, the method is not
    offered for the model, or the parameters are invalid (the page that runs the method says why)."""
    try:
        spec = get_method(method_id)
        require_supported(bundle, spec)
        resolved = spec.resolve_params(params)
        key = build_key(bundle, method_id, resolved, layer)
    except Exception:  # InvalidParameterError, UnsupportedMethodError, an unknown layer
        return None
    if spec.build is None:
        return None
    rec, owner = _claim(bundle, key, f"{spec.label} for {bundle.name}", background=True)
    if not owner:
        return rec
    target_layer = key[2]  # type: ignore[index]

    def job() -> None:
        with contextlib.suppress(Exception):  # kept in the record; the page that needs the map shows it
            _build(bundle, method_id, resolved, target_layer, key, rec)

    _QUEUE.put(job)
    with _CLAIM:
        if not _WORKER or not _WORKER[0].is_alive():
            _WORKER[:] = [threading.Thread(target=_work, name="xai-lens-build", daemon=True)]
            _WORKER[0].start()
    return rec


def _work() -> None:
    while True:
        _QUEUE.get()()  # each job catches its own errors
