"""LRP-ε and LRP-0 as one reverse pass over the forward pass's own tensors.

iNNvestigate builds LRP's reverse graph from *copies* of every layer, applied again to the stored inputs
(``EpsilonRule.apply``: ``Zs = apply(layer_wo_act, Xs)``), so a map runs the network forward twice and the build
creates a copy of every layer (ResNet50: about half of LRP-ε's 2.4 s build, and a third of each map). The ε rule
needs nothing those copies add: for a layer ``z = W x + b`` it is ``R_x = x ⊙ ∂z/∂x^T (R_z / (z + ε·sign z))``,
and ``z`` is already in the graph. Here each layer's relevance is one ``tf.gradients`` of its own output with
respect to its own inputs, in reverse topological order, with iNNvestigate's mappings (and ours from
:mod:`xai_core.compat.innvestigate`) for every other kind of layer:

========================================  ===============================================================
kernel layers (``contains_kernel``)       ε rule on the pre-activation output (a fused ReLU is passed)
``Add``                                   z rule: ``R_i = x_i · R / Σx`` (iNNvestigate's ``AddReverseLayer``)
average pooling (also global)             z rule through the pooling's gradient (``AveragePoolingReverseLayer``)
``Activation`` layers                     relevance passes unchanged
``ReLU`` layers                           passes, except at units held at a cap (ReLU6; our compat rule)
anything else (max pooling, reshapes …)   the gradient of the layer, as iNNvestigate's default mapping
========================================  ===============================================================

Where the relevance reaching a layer's output is known to be zero wherever that output is ≤ 0 (every consumer
multiplies by it, or routes it, and it is a ReLU's output), the division needs no stabiliser there:
``divide_no_nan(R, z + ε)`` gives the analyzer's numbers with two element-wise ops instead of five (a third of
the pass's element-wise work on the strategies' CNN). :func:`_zero_at_or_below` says where that holds.

A model with a layer outside this table (a fused activation other than ReLU, several outputs) raises
:class:`UnsupportedReverse`, and the method falls back to iNNvestigate's analyzer. Maps equal iNNvestigate's to
float rounding (tests/methods/test_lrp_reverse.py, on the demo nets and the zoo's ResNet50, MobileNetV2 and
DenseNet121).

Ref. Bach et al. 2015, PLoS ONE 10(7):e0130140; Montavon et al. 2019, LRP: An Overview (the ε rule as a gradient
times input); Anders et al. 2021, Zennit (LRP as a modified gradient).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from innvestigate.backend import checks as ichecks

from xai_core.methods import steps
from xai_core.models.bundle import ModelBundle
from xai_core.models.graph import nodes_in_order


class UnsupportedReverse(Exception):
    """The model has a layer this reverse pass does not map like iNNvestigate: use the analyzer instead."""


def _stabilised(z: Any, epsilon: float) -> Any:
    """``z + ε · sign(z)`` with sign(0) = +1, as iNNvestigate's ``EpsilonRule``."""
    return tf.where(z >= 0, z + epsilon, z - epsilon)  # the same numbers as z + (2·[z ≥ 0] − 1)·ε, in fewer ops


def _safe(z: Any) -> Any:
    """iNNvestigate's ``safe_divide`` denominator: zeros replaced by 1e-7."""
    return tf.where(tf.equal(z, 0), tf.fill(tf.shape(z), tf.constant(1e-7, z.dtype)), z)


def _pre_activation(layer: Any, y: Any) -> Any:
    """The kernel layer's output before its activation: ``y`` itself, or the input of its ReLU op."""
    name = getattr(layer.activation, "__name__", "")
    if name == "linear":
        return y
    if name == "relu" and y.op.type == "Relu":
        return y.op.inputs[0]
    raise UnsupportedReverse(f"layer '{layer.name}' has activation '{name}' inside")


def _grads(ys: Any, xs: list[Any], grad_ys: Any) -> list[Any]:
    out = tf.gradients(ys, xs, grad_ys=grad_ys, stop_gradients=xs)  # each input on its own (DenseNet: concat(a, f(a)))
    return [tf.zeros_like(x) if g is None else g for x, g in zip(xs, out)]


def _divide(r: Any, z: Any, epsilon: float | None, zero_at_or_below: bool) -> Any:
    """``r / (z + ε·sign z)`` (``epsilon=None``: ``r / z``), zeros of ``z`` made safe as iNNvestigate does. When
    ``r`` is zero wherever ``z ≤ 0``, only ``z > 0`` counts: there both are ``r / (z + ε)`` (resp. ``r / z``), and
    ``divide_no_nan`` keeps the zeros (also at ``z = -ε``) without the sign and the selection."""
    if zero_at_or_below:
        return tf.math.divide_no_nan(r, z if epsilon is None else z + epsilon)
    return r / (_safe(z) if epsilon is None else _stabilised(z, epsilon))


#: Layers whose gradient only routes values (each input value is an output value, or dropped): the relevance of an
#: input value ≤ 0 comes from output values ≤ 0 only (max pooling: from the windows whose maximum it is).
_ROUTING = (tf.keras.layers.MaxPooling1D, tf.keras.layers.MaxPooling2D, tf.keras.layers.MaxPooling3D,
            tf.keras.layers.GlobalMaxPooling1D, tf.keras.layers.GlobalMaxPooling2D, tf.keras.layers.Flatten,
            tf.keras.layers.Reshape, tf.keras.layers.Dropout, tf.keras.layers.ZeroPadding2D,
            tf.keras.layers.Cropping2D, tf.keras.layers.Concatenate)


def _is_relu(layer: Any) -> bool:
    """A layer whose output is ``max(x, 0)`` of its input, or its input capped above (ReLU6)."""
    if isinstance(layer, tf.keras.layers.ReLU):
        return not float(layer.negative_slope or 0) and not float(layer.threshold or 0)
    return isinstance(layer, tf.keras.layers.Activation) and getattr(layer.activation, "__name__", "") == "relu"


def _non_negative(layer: Any, y: Any, inputs_non_negative: bool) -> bool:
    """Whether ``layer``'s output ``y`` is ≥ 0 by construction."""
    if _is_relu(layer) or (ichecks.contains_kernel(layer) and y.op.type in ("Relu", "Relu6")):
        return True
    return isinstance(layer, _ROUTING) and inputs_non_negative


def _zero_at_or_below(layer: Any, x_non_negative: bool, y_zero_at_or_below: bool) -> bool:
    """Whether the relevance ``layer``'s mapping sends to an input ``x`` is zero wherever ``x ≤ 0``: products
    ``x · c`` (kernel layers, sums, average pooling) when ``x ≥ 0``; passes and routes when the output's own
    relevance is zero wherever the output is ≤ 0."""
    if ichecks.contains_kernel(layer) or isinstance(layer, tf.keras.layers.Add) or ichecks.is_average_pooling(layer):
        return x_non_negative
    if _is_relu(layer) or isinstance(layer, _ROUTING):
        return y_zero_at_or_below
    if isinstance(layer, tf.keras.layers.Activation) and getattr(layer.activation, "__name__", "") == "linear":
        return y_zero_at_or_below
    return False


def _input_relevance(layer: Any, xs: list[Any], y: Any, r: Any, epsilon: float | None,
                     zero_at_or_below: bool = False) -> list[Any]:
    """The relevance ``layer`` sends to each of its inputs ``xs`` from ``r`` at its output ``y`` (which is zero
    wherever ``y ≤ 0`` when ``zero_at_or_below``)."""
    if ichecks.contains_kernel(layer):
        z = _pre_activation(layer, y)  # y ≤ 0 where z ≤ 0 for a fused ReLU, y = z otherwise
        return [x * g for x, g in zip(xs, _grads(z, xs, _divide(r, z, epsilon, zero_at_or_below)))]
    if isinstance(layer, tf.keras.layers.Add):
        share = _divide(r, y, None, zero_at_or_below)
        return [x * share for x in xs]
    if ichecks.is_average_pooling(layer):
        return [x * g for x, g in zip(xs, _grads(y, xs, _divide(r, y, None, zero_at_or_below)))]
    if isinstance(layer, tf.keras.layers.Activation) and all(x.shape == y.shape for x in xs):
        return [r for _ in xs]
    if isinstance(layer, tf.keras.layers.ReLU):
        if layer.max_value is None:
            return [r for _ in xs]
        return [r * tf.cast(x < float(layer.max_value), r.dtype) for x in xs]
    return _grads(y, xs, r)


def epsilon_relevance(model: Any, indices: Any, epsilon: float | None) -> Any:
    """The input relevance of LRP-ε (``epsilon=None``: LRP-0, iNNvestigate's z rule) for output neuron
    ``indices`` (int tensor ``(N,)``) of ``model``, whose BatchNormalization layers are already folded
    (:mod:`xai_core.models.canonize`).

    Raises
    ------
    UnsupportedReverse
        For a model with a layer this pass does not map as iNNvestigate does.
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise UnsupportedReverse("one input and one output of class scores only")
    out = model.outputs[0]
    nodes = nodes_in_order(model)
    non_negative: dict[int, bool] = {}  # by tensor id: ≥ 0 by construction
    for node in nodes:
        if not node.is_input:
            xs = tf.nest.flatten(node.input_tensors)
            inputs_ok = all(non_negative.get(id(x), False) for x in xs)
            for y in tf.nest.flatten(node.outputs):
                non_negative[id(y)] = _non_negative(node.layer, y, inputs_ok)
    relevance: dict[int, Any] = {id(out): out * tf.one_hot(indices, int(out.shape[-1]), dtype=out.dtype)}
    zero_at_or_below: dict[int, bool] = {id(out): False}  # by tensor id: its relevance is 0 wherever it is ≤ 0
    keep: dict[int, Any] = {id(out): out}  # ids stay valid while the tensors live
    for node in reversed(nodes):
        if node.is_input:
            continue
        ys = tf.nest.flatten(node.outputs)
        if len(ys) != 1:
            raise UnsupportedReverse(f"layer '{node.layer.name}' has several outputs")
        r = relevance.pop(id(ys[0]), None)
        if r is None:  # nothing reaches this layer (e.g. a branch the explained neuron does not depend on)
            continue
        y_zero = zero_at_or_below.pop(id(ys[0]), False)
        xs = tf.nest.flatten(node.input_tensors)
        for x, rx in zip(xs, _input_relevance(node.layer, xs, ys[0], r, epsilon, y_zero)):
            keep[id(x)] = x
            zero = _zero_at_or_below(node.layer, non_negative.get(id(x), False), y_zero)
            zero_at_or_below[id(x)] = zero and zero_at_or_below.get(id(x), True)
            relevance[id(x)] = rx if id(x) not in relevance else relevance[id(x)] + rx
    x_in = model.inputs[0]
    if id(x_in) not in relevance:
        raise UnsupportedReverse("no relevance reached the input")
    return relevance[id(x_in)]


def reverse_graph(bundle: ModelBundle, layer: str | None, epsilon: float | None) -> ReverseGraph | None:
    """The reverse pass of LRP-ε / LRP-0 on ``bundle``'s canonical model for ``layer``, built once per
    (layer, ε); ``None`` when the model has a layer it does not map (use iNNvestigate's analyzer then)."""

    def build() -> ReverseGraph | None:
        with bundle.scope():
            if not bundle.is_cached(("canonical", layer, False)):
                steps.step(steps.CANONIZE)
            model = bundle.canonical_model(layer).model
            steps.step(steps.REVERSE_GRAPH)
            indices = tf.compat.v1.placeholder(tf.int32, (None,), name="xai_lens_lrp_neuron")
            try:
                return ReverseGraph(model.inputs[0], indices, epsilon_relevance(model, indices, epsilon))
            except UnsupportedReverse:
                return None

    return bundle.cached(("lrp_reverse", layer, epsilon), build)


@dataclass(frozen=True)
class ReverseGraph:
    """What a map feeds and fetches: the model input, the explained neuron per image, the input relevance."""

    x: Any
    indices: Any
    relevance: Any

    def run(self, bundle: ModelBundle, x: np.ndarray, indices: np.ndarray) -> np.ndarray:
        out = bundle.session.run(self.relevance, {self.x: x, self.indices: np.asarray(indices, dtype=np.int32)})
        return np.asarray(out, dtype=np.float32)
