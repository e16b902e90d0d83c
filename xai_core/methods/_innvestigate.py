"""Shared glue for methods implemented by iNNvestigate 2.1.2 analyzers.

Analyzers are built once per (bundle, analyzer, build parameters, layer), in ``neuron_selection_mode="index"``
so one analyzer serves every class and neuron, and kept in the bundle's cache.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import innvestigate  # noqa: E402
import numpy as np
import tensorflow as tf  # noqa: E402
from innvestigate.analyzer.base import AnalyzerBase, NotAnalyzeableModelException  # noqa: E402
from innvestigate.analyzer.deeptaylor import DeepTaylor  # noqa: E402
from innvestigate.analyzer.network_base import AnalyzerNetworkBase  # noqa: E402
from innvestigate.analyzer.relevance_based.relevance_analyzer import LRP, BatchNormalizationReverseLayer  # noqa: E402
from innvestigate.backend import graph as igraph  # noqa: E402

from xai_core import runtime  # noqa: F401
from xai_core.bundle import ModelBundle
from xai_core.errors import UnsupportedMethodError
from xai_core.methods.base import Selection, mark_unsupported


def _do_model_checks_fixed(self: AnalyzerBase) -> None:
    """Replacement for ``AnalyzerBase._do_model_checks`` of iNNvestigate 2.1.2.

    Bug: the original raises ``NotImplementedError`` after *every* triggered check, including checks of
    type "warning". LRP's warning "LRP is only tested for convolutional neural networks" fires for any layer
    missing from ``innvestigate.backend.checks.CONVNET_LAYERS`` -- which omits ``keras.layers.ReLU`` and
    ``DepthwiseConv2D`` -- so every LRP variant failed on MobileNet-style networks with an empty
    ``NotImplementedError``. Here warnings are recorded (``analyzer.xai_warnings``) and only "exception"
    checks stop the analyzer, which is what the check types promise. Test: tests/test_methods.py.
    """
    self.xai_warnings = []
    if not self._disable_model_checks and len(self._model_checks) > 0:
        checked = igraph.model_contains(self._model, [c["check"] for c in self._model_checks])
        for layers, check in zip(checked, self._model_checks):
            if not layers:
                continue
            names = ", ".join(sorted({getattr(layer, "name", str(layer)) for layer in layers})[:8])
            message = f"{check['message']} (layers: {names})"
            if check["check_type"] == "exception":
                raise NotAnalyzeableModelException(message)
            self.xai_warnings.append(message)
    self._model_check_done = True


_ORIGINAL_DO_MODEL_CHECKS = AnalyzerBase._do_model_checks  # kept for the test that shows the bug
AnalyzerBase._do_model_checks = _do_model_checks_fixed

_ORIGINAL_BN_INIT = BatchNormalizationReverseLayer.__init__


def _bn_reverse_init_fixed(self: BatchNormalizationReverseLayer, layer: Any, state: Any) -> None:
    """iNNvestigate 2.1.2 bug: ``BatchNormalizationReverseLayer`` takes ``axis`` from ``layer.get_config()``,
    which Keras 2.14 returns as a list (``[3]``); ``broadcast_shape[self._axis]`` then raises "tuple indices must
    be integers or slices, not ListWrapper", so every LRP analyzer that uses the dedicated BN rule (the generic
    ``lrp`` with a rule name) failed on any BatchNormalization model. Here a one-element axis list becomes an
    int. Test: tests/test_methods.py::test_every_method_on_batchnorm_residual_model.
    """
    _ORIGINAL_BN_INIT(self, layer, state)
    axis = self._axis
    if not isinstance(axis, int) and len(list(axis)) == 1:
        self._axis = int(list(axis)[0])


BatchNormalizationReverseLayer.__init__ = _bn_reverse_init_fixed


def initialize_new_variables(session: Any) -> None:
    """Initialise variables an analyzer created (LRP's BatchNormalization rules create some).

    Keras initialises them lazily inside ``predict_on_batch``; analyzers fed directly with ``session.run`` (see
    :func:`analyze`) need it done once after building. Only uninitialised variables are touched.
    """
    variables = session.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
    if not variables:
        return
    missing = {name.decode() for name in session.run(tf.compat.v1.report_uninitialized_variables(variables))}
    if missing:
        session.run([v.initializer for v in variables if v.op.name in missing])


def is_relevance_analyzer(name: str) -> bool:
    """True for iNNvestigate's relevance analyzers (every LRP variant, Deep Taylor): they run on the canonical
    model, whose BatchNormalization layers are folded away (see :mod:`xai_core.models.canonize`)."""
    cls = innvestigate.analyzer.analyzers.get(name)
    return cls is not None and issubclass(cls, (LRP, DeepTaylor))


def make_analyzer(bundle: ModelBundle, name: str, layer: str | None, **kwargs: Any) -> Any:
    """Construct (not build) an iNNvestigate analyzer for the neuron model of ``layer``.

    Relevance analyzers get the canonical model (BatchNormalization folded, exact at inference): iNNvestigate's
    own BN rules are numerically wrong on trained networks. Cheap after the first call per layer.
    """
    with bundle.scope(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if is_relevance_analyzer(name):
            model = bundle.canonical_model(layer, sum_rule=issubclass(innvestigate.analyzer.analyzers[name],
                                                                      DeepTaylor)).model
        else:
            model = bundle.neuron_model(layer)
        return innvestigate.create_analyzer(name, model, neuron_selection_mode="index", **kwargs)


def support_probe(name: str, kwargs_fn: Callable[[ModelBundle], dict[str, Any]] | None = None):
    """A ``support(bundle)`` function: constructing the analyzer runs iNNvestigate's model checks."""

    def support(bundle: ModelBundle) -> str | None:
        try:
            make_analyzer(bundle, name, None, **(kwargs_fn(bundle) if kwargs_fn else {}))
        except NotAnalyzeableModelException as exc:
            return str(exc)
        return None

    return support


def built_analyzer(bundle: ModelBundle, method_id: str, name: str, layer: str | None, **kwargs: Any) -> Any:
    """The cached, built analyzer; a build failure marks the method unsupported for this bundle."""
    key = ("analyzer", name, layer, tuple(sorted((k, _hashable(v)) for k, v in kwargs.items())))

    def build() -> Any:
        try:
            analyzer = make_analyzer(bundle, name, layer, **kwargs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                analyzer.create_analyzer_model()
            initialize_new_variables(bundle.session)
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


def _direct_fetches(analyzer: Any) -> tuple[Any, Any, Any] | None:
    """``(x_input, index_input, output)`` tensors of a built analyzer that can be fed directly, else None.

    ``AnalyzerNetworkBase.analyze`` only wraps ``predict_on_batch([X, indices])``, whose per-call Keras overhead
    is several milliseconds; feeding the same graph with ``session.run`` gives identical maps without it.
    Wrappers (integrated gradients, SmoothGrad) override ``analyze`` and keep using it.
    """
    if type(analyzer).analyze is not AnalyzerNetworkBase.analyze or analyzer._n_debug_output:
        return None
    model = analyzer._analyzer_model
    if len(model.inputs) != 2 or len(model.outputs) != 1:
        return None
    return model.inputs[0], model.inputs[1], model.outputs[0]


def analyze(bundle: ModelBundle, method_id: str, name: str, x: np.ndarray, selection: Selection,
            **kwargs: Any) -> np.ndarray:
    """Run analyzer ``name`` on model input ``x`` for one neuron per image."""
    analyzer = built_analyzer(bundle, method_id, name, selection.layer, **kwargs)
    direct = bundle.cached(("direct", id(analyzer)), lambda: _direct_fetches(analyzer))
    if direct is not None:  # Session.run is thread-safe: no lock or default-graph scope needed to run
        x_in, idx_in, out_t = direct
        indices = analyzer._get_neuron_selection_array(selection.indices, len(x))
        out = bundle.session.run(out_t, {x_in: x, idx_in: indices})
    else:
        with bundle.scope():  # Keras' predict path needs the bundle's graph and session as defaults
            out = analyzer.analyze(x, neuron_selection=selection.indices)
    if isinstance(out, dict | list):  # pragma: no cover - only for multi-input models
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return np.asarray(out, dtype=np.float32)
