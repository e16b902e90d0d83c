"""Our changes to iNNvestigate 2.1.2, in one place: the bugs it has that hurt us, each fixed by a replacement named
after it, with the test that shows it; and every use of its private API.

:func:`install` (called once by :func:`xai_core.runtime.install`) checks the installed version and applies the
replacements listed in :data:`_PATCHES`; nothing here runs on import. Tests can put one original back for a block
with :func:`original` to show the bug it fixes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import metadata
from typing import Any

import numpy as np
import tensorflow as tf
from innvestigate.analyzer.base import AnalyzerBase, NotAnalyzeableModelException
from innvestigate.analyzer.deeptaylor import DeepTaylor
from innvestigate.analyzer.gradient_based import DeconvnetReverseReLULayer
from innvestigate.analyzer.network_base import AnalyzerNetworkBase
from innvestigate.analyzer.relevance_based import relevance_rule as rrule
from innvestigate.analyzer.relevance_based.relevance_analyzer import LRP, BatchNormalizationReverseLayer
from innvestigate.backend import graph as igraph

from xai_core.compat import keras as keras_compat
from xai_core.models.canonize import ELEMENTWISE

#: The iNNvestigate release these changes were written for.
WRITTEN_FOR = "2.1.2"


class InnvestigateVersionError(RuntimeError):
    """The installed iNNvestigate is not the one XAI Lens's changes to it were written for."""


def _do_model_checks_fixed(self: AnalyzerBase) -> None:
    """Replacement for ``AnalyzerBase._do_model_checks`` of iNNvestigate 2.1.2.

    Bug: the original raises ``NotImplementedError`` after *every* triggered check, including checks of
    type "warning". LRP's warning "LRP is only tested for convolutional neural networks" fires for any layer
    missing from ``innvestigate.backend.checks.CONVNET_LAYERS`` -- which omits ``keras.layers.ReLU`` and
    ``DepthwiseConv2D`` -- so every LRP variant failed on MobileNet-style networks with an empty
    ``NotImplementedError``. Here warnings are recorded (``analyzer.xai_warnings``) and only "exception"
    checks stop the analyzer, which is what the check types promise. Test: tests/methods/test_methods.py.
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


def _bn_reverse_init_fixed(self: BatchNormalizationReverseLayer, layer: Any, state: Any) -> None:
    """iNNvestigate 2.1.2 bug: ``BatchNormalizationReverseLayer`` takes ``axis`` from ``layer.get_config()``,
    which Keras 2.14 returns as a list (``[3]``); ``broadcast_shape[self._axis]`` then raises "tuple indices must
    be integers or slices, not ListWrapper", so every LRP analyzer that uses the dedicated BN rule (the generic
    ``lrp`` with a rule name) failed on any BatchNormalization model. Here a one-element axis list becomes an
    int. Test: tests/methods/test_methods.py::test_every_method_on_batchnorm_residual_model.
    """
    _original("bn_reverse_init")(self, layer, state)
    axis = self._axis
    if not isinstance(axis, int) and len(list(axis)) == 1:
        self._axis = int(next(iter(axis)))


def _deconvnet_relu_init_fixed(self: DeconvnetReverseReLULayer, layer: Any, state: Any) -> None:
    """iNNvestigate 2.1.2 bug: Deconvnet copies every ReLU-carrying layer "without activation" by setting
    ``config["activation"] = None`` and rebuilding it. A ``keras.layers.ReLU`` layer has no such argument, so
    Deconvnet failed on every network built with ReLU layers (MobileNet, MobileNetV2: "Keyword argument not
    understood: 'activation'"). A ReLU layer without its ReLU is the identity. Test: tests/methods/test_methods.py.
    """
    if isinstance(layer, tf.keras.layers.ReLU):
        self._activation = tf.keras.layers.Activation("relu")
        self._layer_wo_relu = tf.keras.layers.Activation("linear")
        return
    _original("deconvnet_relu_init")(self, layer, state)


def _relu_layer_relevance(Xs: list[Any], _Ys: list[Any], Rs: list[Any], reverse_state: dict) -> list[Any]:
    """LRP through a ``keras.layers.ReLU`` layer: relevance passes, except at units held at the layer's cap."""
    layer = reverse_state["layer"]
    if layer.max_value is None:
        return list(Rs)
    cap = float(layer.max_value)
    return [r * tf.cast(x < cap, r.dtype) for x, r in zip(Xs, Rs)]


def _pass_relevance(_Xs: list[Any], _Ys: list[Any], Rs: list[Any], _reverse_state: dict) -> list[Any]:
    return list(Rs)


def _positive_sum_relevance(Xs: list[Any], _Ys: list[Any], Rs: list[Any], _reverse_state: dict) -> list[Any]:
    """A sum's relevance split by the inputs' positive parts (the z⁺ rule with unit weights); where no input is
    positive, by their magnitudes. Non-negative relevance stays non-negative, and nothing is lost."""
    pos = [tf.nn.relu(x) for x in Xs]
    mag = [tf.abs(x) for x in Xs]
    pos_total, mag_total = tf.add_n(pos), tf.add_n(mag)
    use_pos = pos_total > 0
    denominator = tf.where(use_pos, pos_total, mag_total)
    scale = [tf.where(use_pos, p, m) / tf.where(denominator > 0, denominator, tf.ones_like(denominator))
             for p, m in zip(pos, mag)]
    (relevance,) = Rs  # one output: the sum
    return [s * relevance for s in scale]


def _is_elementwise(layer: Any) -> bool:
    return bool(getattr(layer, ELEMENTWISE, False))


def _z_or_epsilon(rule: Any) -> bool:
    if isinstance(rule, str):
        return rule in ("Z", "Epsilon")
    return isinstance(rule, type) and issubclass(rule, (rrule.ZRule, rrule.EpsilonRule))


def _positive_only(analyzer: LRP) -> bool:
    """LRP analyzers whose rule passes on positive contributions only (α1β0, z⁺): their maps are never negative.
    (The αβ analyzers keep α and β on themselves and use a proxy rule class.)"""
    if getattr(analyzer, "_alpha", None) == 1 and getattr(analyzer, "_beta", None) == 0:
        return True
    rule = analyzer._rule
    if isinstance(rule, str):
        return rule in ("Alpha1Beta0", "Alpha1Beta0IgnoreBias", "ZPlus", "ZPlusFast")
    return isinstance(rule, type) and issubclass(rule, (rrule.Alpha1Beta0Rule, rrule.Alpha1Beta0IgnoreBiasRule,
                                                        rrule.ZPlusRule, rrule.ZPlusFastRule))


def _alpha_beta_apply_conserving(self: rrule.AlphaBetaRule, Xs: list[Any], _Ys: list[Any], Rs: list[Any],
                                 _reverse_state: dict) -> list[Any]:
    """iNNvestigate 2.1.2 bug: the αβ rule gives a neuron's relevance α × R to its activating inputs and β × R to
    its inhibiting ones; where a neuron has *no* inhibiting contribution, the β part divides by zero (→ 0) and the
    neuron passes on α × R: relevance doubles there under α2β1. Through MobileNetV2's depthwise layers (nine
    inputs per neuron, so often one-sided) the maps added up to 5 × 10⁷ × the explained score. Here such a neuron
    gives R to its activators, as α − β = 1 intends; a neuron with both sides is unchanged.
    Test: tests/methods/test_methods.py::test_alpha_beta_conserves_where_a_neuron_has_no_inhibitors.
    """
    from innvestigate import backend as ibackend

    xs_pos = [tf.nn.relu(x) for x in Xs]  # x · [x > 0], as iNNvestigate: one op instead of three
    xs_neg = [tf.minimum(x, 0.0) for x in Xs]

    def apply(layer: Any, xs: list[Any]) -> list[Any]:
        # The layer's own computation, not Keras' __call__: called on plain TensorFlow tensors, __call__ first
        # wraps every op behind them into Keras op-layers (8 of the 33 s of an α2β1 build on ResNet50).
        out = layer.call(xs[0] if len(xs) == 1 else xs)
        return list(out) if isinstance(out, list | tuple) else [out]

    def parts(layer1: Any, layer2: Any) -> tuple[list[Any], list[Any], list[Any]]:
        z1 = apply(layer1, xs_pos)
        z2 = apply(layer2, xs_neg)
        return z1, z2, [a + b for a, b in zip(z1, z2)]

    def spread(terms: list[tuple[tuple[list[Any], list[Any], list[Any]], list[Any], float]]) -> list[Any]:
        """Σ sign × (x⁺ ∂z1ᵀ(R/z) + x⁻ ∂z2ᵀ(R/z)) over ``(parts, R, sign)``: one ``tf.gradients`` for all the terms
        (each term's z1 depends on x⁺ only and z2 on x⁻ only, so each gradient is the sum it should be). Four
        calls per layer before, for α2β1: on ResNet50, 216 calls and about a second of the build."""
        ys, grad_ys = [], []
        for (z1, z2, zs), rel, sign in terms:
            tmp = [ibackend.safe_divide(r, z) for r, z in zip(rel, zs)]
            tmp = tmp if sign > 0 else [-t for t in tmp]
            ys += [*z1, *z2]
            grad_ys += [*tmp, *tmp]
        grads = tf.gradients(ys, xs_pos + xs_neg, grad_ys=grad_ys, stop_gradients=xs_pos + xs_neg)
        g_pos, g_neg = grads[:len(xs_pos)], grads[len(xs_pos):]
        return [a * (b if b is not None else 0.0) + c * (d if d is not None else 0.0)
                for a, b, c, d in zip(xs_pos, g_pos, xs_neg, g_neg)]

    act = parts(self._layer_wo_act_positive, self._layer_wo_act_negative)
    if not self._beta:
        return spread([(act, list(Rs), 1.0)])
    inh = parts(self._layer_wo_act_negative, self._layer_wo_act_positive)
    has_inhibitors = [tf.cast(tf.not_equal(z, 0), r.dtype) for z, r in zip(inh[2], Rs)]
    alpha = [r * (1.0 + (self._alpha - 1.0) * m) for r, m in zip(Rs, has_inhibitors)]
    beta = [r * self._beta * m for r, m in zip(Rs, has_inhibitors)]
    return spread([(act, alpha, 1.0), (inh, beta, -1.0)])


def _lrp_create_analysis_fixed(self: LRP, *args: Any, **kwargs: Any) -> Any:
    """Two mappings iNNvestigate 2.1.2 gets wrong for the networks people bring.

    * ReLU *layers*: LRP passes relevance straight through an ``Activation("relu")`` layer (and a ReLU inside a
      convolution is ignored by every rule), but sends a ``keras.layers.ReLU`` layer through its gradient, which
      zeroes the relevance of every inactive unit. For the z and ε rules that changes nothing (an inactive unit
      has no relevance), but rules that do not look at activations (w², flat) lose relevance at each such layer:
      on an uploaded MobileNetV2 (17 blocks of ReLU6 layers) LRP-w² and LRP-flat kept 0.0 % of the score. A ReLU
      layer now passes relevance like an Activation layer; a capped ReLU (ReLU6) still drops it at the units held
      at the cap (they carry no gradient, so LRP-0 stays equal to gradient × input).
    * The element-wise affine layers canonization puts where a BatchNormalization could not be folded (DenseNet's
      pre-activation BN): the z and ε rules apply to them as to any layer (LRP-0 stays gradient × input), but a
      rule that splits by positive and negative contributions sees a single input there, and αβ would pass on
      α× or −β× the relevance at each one (453× the logit on DenseNet121 with α2β1 ignoring biases). Other rules
      pass relevance through them, as through a BatchNormalization they are.

    * ``Add`` under the positive-only rules (α1β0, z⁺): iNNvestigate splits a sum by x_i / Σx, so a negative input
      (a residual branch after BatchNorm) receives negative relevance and α1β0 gave maps as negative as they were
      positive on shapes_resnet. A sum is a unit-weight layer, and the rule's own z⁺ split of it is by the inputs'
      positive parts: the maps stay non-negative and conserve what reaches the sum.

    Tests: tests/models/test_canonize.py, tests/models/test_zoo.py, tests/methods/test_methods.py.
    """
    self._add_conditional_reverse_mapping(lambda layer: isinstance(layer, tf.keras.layers.ReLU),
                                          _relu_layer_relevance, priority=10, name="xai_lens_relu_layer")
    if _positive_only(self):
        self._add_conditional_reverse_mapping(lambda layer: isinstance(layer, tf.keras.layers.Add),
                                              _positive_sum_relevance, priority=10, name="xai_lens_add_z_plus")
    if not _z_or_epsilon(self._rule):
        self._add_conditional_reverse_mapping(_is_elementwise, _pass_relevance, priority=10,
                                              name="xai_lens_elementwise")
    return _original("lrp_create_analysis")(self, *args, **kwargs)


def _deep_taylor_create_analysis_fixed(self: DeepTaylor, *args: Any, **kwargs: Any) -> Any:
    """iNNvestigate 2.1.2 bug: Deep Taylor maps an ``Add`` layer with the plain gradient ("ignore scaling with
    0.5"), which hands *each* input the whole relevance of the sum: relevance doubles at every residual block
    (235× the logit on an uploaded MobileNetV2, 4.6× on shapes_resnet). Here a sum is split by its inputs'
    positive parts (the z⁺ rule Deep Taylor uses everywhere else), so the maps stay non-negative and conserve
    relevance; the element-wise affine layers of canonization pass it through. Test: tests/models/test_canonize.py.
    """
    self._add_conditional_reverse_mapping(lambda layer: isinstance(layer, tf.keras.layers.Add),
                                          _positive_sum_relevance, priority=10, name="xai_lens_add_z_plus")
    self._add_conditional_reverse_mapping(_is_elementwise, _pass_relevance, priority=10, name="xai_lens_elementwise")
    return _original("deep_taylor_create_analysis")(self, *args, **kwargs)


def _layer_from_config_sharing_weights(old_layer: Any, new_config: dict[str, Any], weights: Any = None,
                                       reuse_symbolic_tensors: bool = True) -> Any:
    """iNNvestigate's ``get_layer_from_config``, inside :func:`building_analyzer`, for the copies its rules make of a
    layer (without activation, or with positive / negative weights) that use the original weights or tensors derived
    from them: it builds the copy, which creates new variables with the layer's initializers, and then replaces them
    by those tensors. Here the copy is built with stand-ins (an unfed placeholder per weight, see
    :func:`xai_core.compat.keras.stand_in_weights`) that are replaced the same way: no variables (20 ms each, 216 for
    α2β1 on ResNet50) and nothing to initialise. Elsewhere (another thread, or outside a build) it is the original.
    """
    build = _original("get_layer_from_config")
    symbolic = (weights is None and reuse_symbolic_tensors) or (
        weights is not None and len(weights) > 0 and not any(isinstance(w, np.ndarray) for w in weights))
    if not _BUILDING_ANALYZER.get() or not symbolic:
        return build(old_layer, new_config, weights, reuse_symbolic_tensors)
    with keras_compat.stand_in_weights():
        return build(old_layer, new_config, weights, reuse_symbolic_tensors)


#: ``name → (owner, attribute, replacement)``: what :func:`install` changes.
_PATCHES: dict[str, tuple[Any, str, Callable[..., Any]]] = {
    "model_checks": (AnalyzerBase, "_do_model_checks", _do_model_checks_fixed),
    "bn_reverse_init": (BatchNormalizationReverseLayer, "__init__", _bn_reverse_init_fixed),
    "deconvnet_relu_init": (DeconvnetReverseReLULayer, "__init__", _deconvnet_relu_init_fixed),
    "alpha_beta_apply": (rrule.AlphaBetaRule, "apply", _alpha_beta_apply_conserving),
    "lrp_create_analysis": (LRP, "_create_analysis", _lrp_create_analysis_fixed),
    "deep_taylor_create_analysis": (DeepTaylor, "_create_analysis", _deep_taylor_create_analysis_fixed),
    "get_layer_from_config": (igraph, "get_layer_from_config", _layer_from_config_sharing_weights),
}
_ORIGINALS: dict[str, Callable[..., Any]] = {}
_BUILDING_ANALYZER: ContextVar[bool] = ContextVar("xai_lens_building_analyzer", default=False)


def check_version() -> str:
    """The installed iNNvestigate version; :class:`InnvestigateVersionError` unless it is :data:`WRITTEN_FOR`."""
    version = metadata.version("innvestigate")
    if version != WRITTEN_FOR:
        raise InnvestigateVersionError(
            f"XAI Lens's changes to iNNvestigate (xai_core/compat/innvestigate.py) are written for {WRITTEN_FOR}; "
            f"{version} is installed. Install the locked environment (make run), or review that module.")
    return version


def install() -> None:
    """Check the version and apply every replacement in :data:`_PATCHES` (once per process)."""
    check_version()
    for name, (owner, attribute, replacement) in _PATCHES.items():
        current = getattr(owner, attribute)
        if current is replacement:
            continue
        _ORIGINALS[name] = current
        setattr(owner, attribute, replacement)


def installed() -> bool:
    return all(getattr(owner, attribute) is replacement for owner, attribute, replacement in _PATCHES.values())


def _original(name: str) -> Callable[..., Any]:
    return _ORIGINALS[name]


@contextmanager
def original(name: str) -> Iterator[None]:
    """iNNvestigate's own ``name`` (a key of :data:`_PATCHES`) for the block, for tests that show a bug."""
    owner, attribute, replacement = _PATCHES[name]
    setattr(owner, attribute, _ORIGINALS[name])
    try:
        yield
    finally:
        setattr(owner, attribute, replacement)


@contextmanager
def building_analyzer() -> Iterator[None]:
    """In this thread, while an analyzer graph is built: no Keras op-layers around plain TF ops, and rules' layer
    copies share the layer's weights (:func:`_layer_from_config_sharing_weights`).

    Keras (v1 graph mode) wraps every plain TensorFlow op that feeds a Keras layer into an op-layer, walking back to
    the nearest Keras tensor, each time a layer is called on such a tensor. iNNvestigate calls Keras layers on its
    reversed tensors (``tf.gradients`` outputs) at every layer, so an LRP build spent about a quarter of its time
    there (9 of 34 s for α2β1 on ResNet50), only to make the analyzer a Keras model. We never use it as one."""
    token = _BUILDING_ANALYZER.set(True)
    try:
        with keras_compat.no_op_layers():
            yield
    finally:
        _BUILDING_ANALYZER.reset(token)


# ---------------------------------------------------------------------------------------------- private API in use
class _AnalyzerGraph:
    """An analyzer's input and output tensors, standing in for the Keras model iNNvestigate wraps them in.

    ``predict_on_batch`` feeds them with ``session.run`` (what :func:`direct_fetches` allows directly), so
    iNNvestigate's own ``analyze`` keeps working on it."""

    def __init__(self, inputs: list[Any], outputs: list[Any], session: Any) -> None:
        self.inputs, self.outputs, self._session = inputs, outputs, session

    def predict_on_batch(self, xs: Any) -> Any:
        xs = xs if isinstance(xs, list) else [xs]
        out = self._session.run(self.outputs, dict(zip(self.inputs, xs)))
        return out[0] if len(out) == 1 else out


def build_analyzer_graph(analyzer: AnalyzerNetworkBase, session: Any) -> None:
    """``analyzer.create_analyzer_model()`` of iNNvestigate 2.1.2 without its last step, the Keras model around
    the analysis tensors (and so without Keras op-layers, see :func:`building_analyzer`)."""
    with building_analyzer():
        model_inputs = list(analyzer._model.inputs)
        model, analysis_inputs, stop_at = analyzer._prepare_model(analyzer._model)
        analyzer._analysis_inputs = analysis_inputs
        analyzer._prepared_model = model
        out = analyzer._create_analysis(model, stop_analysis_at_tensors=stop_at)
    if isinstance(out, tuple):
        outputs, debug, constants = [*out, [], []][:3]
    else:
        outputs, debug, constants = out, [], []
    from innvestigate import backend as ibackend

    outputs, debug, constants = (ibackend.to_list(t) for t in (outputs, debug, constants))
    analyzer._n_data_input = len(model_inputs)
    analyzer._n_constant_input = len(constants)
    analyzer._n_data_output = len(outputs)
    analyzer._n_debug_output = len(debug)
    analyzer._analyzer_model = _AnalyzerGraph(model_inputs + analysis_inputs + constants, outputs + debug, session)
    analyzer._analyzer_model_done = True


def analyzer_outputs(analyzer: Any) -> list[Any] | None:
    """The output tensors of a built analyzer (None before it is built)."""
    model = getattr(analyzer, "_analyzer_model", None)
    return list(model.outputs) if model is not None and model.outputs else None


def has_own_analyze(analyzer: Any) -> bool:
    """True for wrappers (Integrated Gradients, SmoothGrad) that build sub-analyzers through Keras themselves."""
    return type(analyzer).analyze is not AnalyzerNetworkBase.analyze


def direct_fetches(analyzer: Any) -> tuple[Any, Any, Any] | None:
    """``(x_input, index_input, output)`` tensors of a built analyzer that can be fed directly, else None.

    ``AnalyzerNetworkBase.analyze`` only wraps ``predict_on_batch([X, indices])``, whose per-call Keras overhead
    is several milliseconds; feeding the same graph with ``session.run`` gives identical maps without it.
    Wrappers (integrated gradients, SmoothGrad) override ``analyze`` and keep using it.
    """
    if has_own_analyze(analyzer) or analyzer._n_debug_output:
        return None
    model = analyzer._analyzer_model
    if len(model.inputs) != 2 or len(model.outputs) != 1:
        return None
    return model.inputs[0], model.inputs[1], model.outputs[0]


def neuron_selection_array(analyzer: Any, indices: np.ndarray, n: int) -> np.ndarray:
    """The index input iNNvestigate feeds for one neuron per image (``[[image, neuron], ...]``)."""
    return np.asarray(analyzer._get_neuron_selection_array(indices, n))

