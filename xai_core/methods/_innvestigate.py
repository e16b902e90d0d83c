"""Shared glue for methods implemented by iNNvestigate 2.1.2 analyzers.

Analyzers are built once per (bundle, analyzer, build parameters, layer), in ``neuron_selection_mode="index"``
so one analyzer serves every class and neuron, and kept in the bundle's cache.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import innvestigate
import numpy as np
import tensorflow as tf
from innvestigate.analyzer.base import NotAnalyzeableModelException
from innvestigate.analyzer.deeptaylor import DeepTaylor
from innvestigate.analyzer.relevance_based.relevance_analyzer import LRP

from xai_core.compat import innvestigate as innvestigate_compat
from xai_core.errors import UnsupportedMethodError
from xai_core.methods import steps
from xai_core.methods.base import Selection, mark_unsupported
from xai_core.models.bundle import ModelBundle


def initialize_new_variables(session: Any, since: int = 0, fetches: list[Any] | None = None) -> None:
    """Initialise variables an analyzer created and uses (LRP's BatchNormalization rules create some).

    Keras initialises them lazily inside ``predict_on_batch``; analyzers fed directly with ``session.run`` (see
    :func:`analyze`) need it done once after building. Only uninitialised variables among those created after
    the first ``since`` of the graph are touched (checking all of a ResNet50's 320 took 0.36 s per build), and,
    given ``fetches``, only those the fetches depend on: iNNvestigate copies every layer a rule needs without its
    activation by building a new layer (with new, randomly initialised variables) and then pointing it at the
    original weights, so those variables are never read; initialising them drew a random copy of the network's
    weights per rule (ResNet50: 25 M values, twice for αβ) for nothing.
    """
    variables = session.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)[since:]
    if fetches is not None and variables:
        needed = _ops_needed(fetches)
        variables = [v for v in variables if v.op.name in needed]
    if not variables:
        return
    missing = {name.decode() for name in session.run(tf.compat.v1.report_uninitialized_variables(variables))}
    if missing:
        session.run([v.initializer for v in variables if v.op.name in missing])


def _ops_needed(fetches: list[Any]) -> set[str]:
    """Names of every op the tensors ``fetches`` depend on (data and control inputs)."""
    seen: set[str] = set()
    stack = [t.op for t in fetches]
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return seen


def is_relevance_analyzer(name: str) -> bool:
    """True for iNNvestigate's relevance analyzers (every LRP variant, Deep Taylor): they run on the canonical
    model, whose BatchNormalization layers are folded away (see :mod:`xai_core.models.canonize`)."""
    cls = innvestigate.analyzer.analyzers.get(name)
    return cls is not None and issubclass(cls, (LRP, DeepTaylor))


def make_analyzer(bundle: ModelBundle, name: str, layer: str | None, *, sum_rule: bool = False, **kwargs: Any) -> Any:
    """Construct (not build) an iNNvestigate analyzer for the neuron model of ``layer``.

    Every analyzer gets the canonical model (BatchNormalization folded, exact at inference). Relevance analyzers
    need it because iNNvestigate's own BN rules are numerically wrong on trained networks; ``sum_rule`` also makes
    their ``Add`` layers kernel layers, so the analyzer's own rule applies to sums (see
    :func:`xai_core.models.canonize.canonize`). The others (deconvnet, guided backprop, the autodiff baseline) need
    it because of an iNNvestigate 2.1.2 bug: on a graph built with the learning phase fixed (as
    :meth:`ModelBundle.create` builds every model), the second reverse analyzer built on a model with
    BatchNormalization layers loses every node before the first merge from its execution trace and fails with a
    ``KeyError`` on the model input (guided backprop after deconvnet on digits_resnet). Their rules touch only
    ReLUs, so folding an affine BN into the layer before it changes no map beyond float rounding.
    Test: tests/methods/test_methods.py::test_every_method_on_batchnorm_residual_model. Cheap after the first
    call per layer.
    """
    with bundle.scope(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sum_rule = sum_rule and is_relevance_analyzer(name)
        if not bundle.is_cached(("canonical", layer, sum_rule)):
            steps.step(steps.CANONIZE)
        model = bundle.canonical_model(layer, sum_rule=sum_rule).model
        return innvestigate.create_analyzer(name, model, neuron_selection_mode="index", **kwargs)


def model_checks(name: str, kwargs_fn: Callable[[ModelBundle], dict[str, Any]] | None = None
                 ) -> Callable[[ModelBundle], str | None]:
    """A ``support(bundle)`` function: iNNvestigate's own model checks for analyzer ``name`` (ReLU-only activations
    for deconvnet, guided backprop and Deep Taylor; no softmax; no Lambda layers), run on the model's layers.
    Constructing an analyzer records the model and runs those checks, nothing else: no tensor, no variable and no
    canonical copy of the network is made (building them for every method before the method list drew took 1 s on
    a tiny ResNet and seconds per copy on ResNet50). The checks only look at activations and layer types, which
    canonization does not change."""

    def support(bundle: ModelBundle) -> str | None:
        kwargs = kwargs_fn(bundle) if kwargs_fn else {}
        try:
            with bundle.scope(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                innvestigate.create_analyzer(name, bundle.model, neuron_selection_mode="index", **kwargs)
        except NotAnalyzeableModelException as exc:
            return str(exc)
        return None

    return support


def analyzer_build(method_id: str, name: str, to_kwargs: Callable[..., dict[str, Any]] | None = None,
                   sum_rule: Callable[[dict[str, Any]], bool] | None = None) -> Callable[..., Any]:
    """A method's ``build(bundle, layer, **params)``: iNNvestigate analyzer ``name`` with the arguments
    ``to_kwargs(bundle, **params)`` (default: the parameters themselves), built once (:func:`built_analyzer`)."""

    def build(bundle: ModelBundle, layer: str | None, **params: Any) -> Any:
        kwargs = to_kwargs(bundle, **params) if to_kwargs else params
        return built_analyzer(bundle, method_id, name, layer, sum_rule=sum_rule(kwargs) if sum_rule else False,
                              **kwargs)

    return build


def built_analyzer(bundle: ModelBundle, method_id: str, name: str, layer: str | None, *, sum_rule: bool = False,
                   **kwargs: Any) -> Any:
    """The cached, built analyzer; a build failure marks the method unsupported for this bundle."""
    key = ("analyzer", name, layer, sum_rule, tuple(sorted((k, _hashable(v)) for k, v in kwargs.items())))

    def build() -> Any:
        try:
            known = len(bundle.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES))
            analyzer = make_analyzer(bundle, name, layer, sum_rule=sum_rule, **kwargs)
            steps.step(steps.REVERSE_GRAPH)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not innvestigate_compat.has_own_analyze(analyzer):
                    innvestigate_compat.build_analyzer_graph(analyzer, bundle.session)
                else:  # wrappers (none of ours today) build sub-analyzers through Keras
                    analyzer.create_analyzer_model()
            fetches = innvestigate_compat.analyzer_outputs(analyzer)
            initialize_new_variables(bundle.session, since=known, fetches=fetches)
            return analyzer
        except NotAnalyzeableModelException as exc:
            raise UnsupportedMethodError(str(exc)) from exc
        except Exception as exc:  # iNNvestigate has no rule for some layer, etc.
            reason = (
                f"iNNvestigate could not build '{name}' for model '{bundle.name}': "
                f"{type(exc).__name__}: {exc}"
            )
            mark_unsupported(bundle, method_id, reason)
            raise UnsupportedMethodError(reason) from exc

    return bundle.cached(key, build)


def _hashable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return (v.shape, v.tobytes())
    return v


def analyze(bundle: ModelBundle, method_id: str, name: str, x: np.ndarray, selection: Selection, *,
            sum_rule: bool = False, **kwargs: Any) -> np.ndarray:
    """Run analyzer ``name`` on model input ``x`` for one neuron per image (``sum_rule``: see make_analyzer)."""
    analyzer = built_analyzer(bundle, method_id, name, selection.layer, sum_rule=sum_rule, **kwargs)
    direct = bundle.cached(("direct", id(analyzer)), lambda: innvestigate_compat.direct_fetches(analyzer))
    first = not bundle.is_cached(("ran", id(analyzer)))
    if first:
        steps.step(steps.FIRST_RUN)
    if direct is not None:  # Session.run is thread-safe: no lock or default-graph scope needed to run
        x_in, idx_in, out_t = direct
        indices = innvestigate_compat.neuron_selection_array(analyzer, selection.indices, len(x))
        out = bundle.session.run(out_t, {x_in: x, idx_in: indices})
    else:
        with bundle.scope():  # Keras' predict path needs the bundle's graph and session as defaults
            out = analyzer.analyze(x, neuron_selection=selection.indices)
    if first:
        bundle.store(("ran", id(analyzer)), True, lock=False)
    if isinstance(out, dict | list):  # pragma: no cover - only for multi-input models
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return np.asarray(out, dtype=np.float32)
