"""Canonization: an equivalent model without BatchNormalization, for the relevance methods (LRP, Deep Taylor).

Relevance rules are defined for linear layers followed by ReLU. iNNvestigate 2.1.2 propagates through a
BatchNormalization layer with the weight ``(y − β) / (x − μ)`` (``BatchNormalizationReverseLayer.apply``), a
ratio of two small differences that cancels catastrophically wherever ``x ≈ μ``: on the trained demo ResNets
LRP-0 maps had a Pearson r of 0.03 with gradient × input (they must be equal) and relevance reached 8,900 for
a logit of 5. Deep Taylor's BN mapping (``apply_mapping_to_fused_bn_layer``) uses ``sqrt(var² + ε)`` and drops
γ from the bias, so it is wrong as well. Untrained networks (mean 0, variance 1) hide both bugs.

The standard cure (Zennit's ``SequentialMergeBatchNorm``; Hui & Binder 2019) is applied here. At inference
``BN(z) = s · (z − μ) + β`` with ``s = γ / √(var + ε)``, so:

* a BatchNormalization that directly follows a Conv1D/2D/3D, DepthwiseConv2D, SeparableConv2D or Dense layer
  without activation (its only consumer) is **folded** into that layer: ``W' = W · s`` (per output channel),
  ``b' = (b − μ) · s + β``. A plain ``relu`` activation right after it (its only consumer) moves into the folded
  layer too, so Deep Taylor sees "kernel + ReLU" and applies its z⁺ rule rather than the input-independent w²
  rule it uses for kernels without activation;
* any other BatchNormalization (pre-activation BN as in DenseNet, BN after Add/Concatenate or the input)
  becomes an element-wise **affine** layer ``s · x + (β − μ · s)``: a 1×1 DepthwiseConv2D with that kernel and
  bias (wrapped in Reshape for non-image tensors), so each method applies its own rule to it, with ``s``
  computed directly.

* a ``Rescaling`` or ``Normalization`` (``s · x + t`` per channel; models saved with Keras 3 carry them inside,
  e.g. ``Rescaling(1/127.5, offset=-1)`` before a transfer-learning base) becomes the same element-wise affine
  layer. iNNvestigate sends relevance through them by their gradient, which ignores the offset: LRP-0 in pixel
  space then lost its identity with gradient × input (r = −0.78 on a small net, 0.4-0.7 on the Keras 3 zoo's
  transfer model; ≥ 0.99 as affine layers).

All are exact at inference up to float rounding (tests: logits within 1e-4 relative). The user's model is
never changed: the canonical model is a new functional model over the same input tensor that reuses every
other layer (weights shared), built once per (bundle, target layer) and cached in the bundle.

Ref. Hui & Binder 2019, BatchNorm Decomposition for Deep Neural Network Interpretation, IWANN;
Anders et al. 2021, Software for Dataset-wide XAI: From Local Explanations to Global Insights with Zennit,
CoRelAy, and ViRelAy, arXiv:2106.13200.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from xai_core.compat import keras as keras_compat
from xai_core.models.graph import nodes_in_order

#: What canonization does, for the Methods page and the README (one text, two places).
CANONIZATION_NOTE = (
    "LRP, Deep Taylor, DeconvNet and Guided Backprop run on a *canonical* copy of the model: every "
    "BatchNormalization that directly follows "
    "a convolution or dense layer is folded into that layer's weights and bias, and any other BatchNormalization "
    "(pre-activation BN as in DenseNet, BN after an Add or right after the input) becomes an element-wise affine "
    "layer with its scale γ/√(var + ε) computed directly. Both are exact at inference (logits agree to 1e-4). "
    "iNNvestigate's own BatchNorm rule divides two small differences, (y − β)/(x − μ), and on trained networks "
    "its LRP-0 maps had almost nothing in common with gradient × input (r ≈ 0.03), which they must equal; after "
    "canonization they agree to r ≥ 0.999. Rescaling and Normalization layers inside a model become the same "
    "element-wise affine layers (iNNvestigate ignored their offset). Deep Taylor also gets the z⁺ rule at residual "
    "sums (iNNvestigate passes the whole relevance to both inputs there). Your model itself is never changed; the "
    "plain-gradient methods, CAM and occlusion use it as it is."
)

#: Attribute set on the element-wise affine layers that replace unfoldable BatchNormalization layers: rules that
#: split relevance by contributions have nothing to split in a one-input layer (see methods/_innvestigate.py).
ELEMENTWISE = "_xai_lens_elementwise"

_FOLDABLE = (
    tf.keras.layers.Conv1D, tf.keras.layers.Conv2D, tf.keras.layers.Conv3D, tf.keras.layers.DepthwiseConv2D,
    tf.keras.layers.SeparableConv2D, tf.keras.layers.Dense,
)
_TRANSPOSED = (tf.keras.layers.Conv1DTranspose, tf.keras.layers.Conv2DTranspose, tf.keras.layers.Conv3DTranspose)


@dataclass
class Canonization:
    """What :func:`canonize` did.

    Attributes
    ----------
    model : the canonical Keras model (same input tensor, same output values).
    folded : ``(linear layer, BN layer)`` names folded together.
    affine : names of BN layers replaced by an element-wise affine layer.
    fused_relu : names of ReLU activation layers moved into a folded layer.
    sums : names of Add layers turned into unit-weight kernel layers (``sum_rule``).
    scalings : names of Rescaling / Normalization layers replaced by an element-wise affine layer.
    """

    model: Any
    folded: list[tuple[str, str]] = field(default_factory=list)
    affine: list[str] = field(default_factory=list)
    fused_relu: list[str] = field(default_factory=list)
    sums: list[str] = field(default_factory=list)
    scalings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.folded or self.affine or self.sums or self.scalings)

    def added_kernel_layers(self) -> set[str]:
        """Names of the layers with weights that the canonical model has and the user's model has not."""
        return ({f"{name}_affine" for name in self.affine + self.scalings}
                | {f"{name}_sum" for name in self.sums})

    def summary(self) -> str:
        """One sentence for the UI: what was folded, what became affine."""
        if not self.changed:
            return "No BatchNormalization or Add layers: relevance methods run on the model as it is."
        parts = []
        if self.folded:
            parts.append(f"{len(self.folded)} BatchNormalization layer(s) folded into the preceding "
                         "convolution/dense layer")
        if self.affine:
            parts.append(f"{len(self.affine)} treated as element-wise affine layers "
                         f"({', '.join(self.affine[:3])}{', …' if len(self.affine) > 3 else ''})")
        if self.sums:
            parts.append(f"{len(self.sums)} Add layer(s) given the method's own rule")
        if self.scalings:
            parts.append(f"{len(self.scalings)} Rescaling/Normalization layer(s) treated as element-wise affine "
                         "layers")
        return "; ".join(parts) + " (exact at inference)."


def _kind(variable: Any) -> str:
    """``gamma`` / ``beta`` / ``moving_mean`` / ``kernel`` … of a variable named ``<layer>/<kind>:0``."""
    return variable.name.split("/")[-1].split(":")[0]


def bn_scale_shift(bn: Any, values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(s, t)`` with ``BN(x) = s · x + t`` at inference, in float64, per channel.

    ``values`` maps the BN layer's variable kinds (``gamma``, ``beta``, ``moving_mean``, ``moving_variance``)
    to their values; a missing γ (``scale=False``) is 1, a missing β (``center=False``) is 0.
    """
    mean = values["moving_mean"].astype(np.float64)
    var = values["moving_variance"].astype(np.float64)
    gamma = values.get("gamma", np.ones_like(mean)).astype(np.float64)
    beta = values.get("beta", np.zeros_like(mean)).astype(np.float64)
    s = gamma / np.sqrt(var + float(bn.epsilon))
    return s, beta - mean * s


def scaling_scale_shift(layer: Any, channels: int, statistics: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(s, t)`` per channel with ``layer(x) = s · x + t``, in float64: a ``Rescaling`` (``x · scale + offset``)
    or a ``Normalization`` (``(x − mean) / max(√variance, ε)``, ``statistics`` its mean and variance)."""
    if isinstance(layer, tf.keras.layers.Normalization):
        mean, variance = (np.broadcast_to(np.asarray(v, np.float64).ravel(), (channels,)) for v in statistics)
        s = 1.0 / np.maximum(np.sqrt(variance), tf.keras.backend.epsilon())
        return s, -mean * s
    scale, offset = (np.broadcast_to(np.asarray(v, np.float64).ravel(), (channels,))
                     for v in (layer.scale, layer.offset))
    return scale.copy(), offset.copy()


def _is_scaling(layer: Any, n: Any) -> bool:
    """A ``Rescaling`` or ``Normalization`` (over the last axis, not inverted) of one channels-last tensor, with one
    scale and offset per channel or for all: an element-wise affine layer."""
    if len(n.flat_input_ids) != 1 or not hasattr(n.outputs, "shape"):
        return False
    rank, channels = len(n.outputs.shape), n.outputs.shape[-1]
    if isinstance(layer, tf.keras.layers.Rescaling):
        return all(np.size(v) in (1, channels) for v in (layer.scale, layer.offset))
    if isinstance(layer, tf.keras.layers.Normalization):
        axis = [int(a) % rank for a in (layer.axis if isinstance(layer.axis, list | tuple) else [layer.axis])]
        return not getattr(layer, "invert", False) and axis == [rank - 1]
    return False


def _channel_axis_last(bn: Any, rank: int) -> bool:
    axis = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    axis = [int(a) % rank for a in axis]
    return axis == [rank - 1]


def _is_plain_relu(layer: Any) -> bool:
    if isinstance(layer, tf.keras.layers.Activation):
        return getattr(layer.activation, "__name__", "") == "relu"
    if isinstance(layer, tf.keras.layers.ReLU):
        return (layer.max_value is None and float(layer.negative_slope) == 0.0
                and float(layer.threshold) == 0.0)
    return False


def _linear(layer: Any) -> bool:
    return getattr(getattr(layer, "activation", None), "__name__", "linear") == "linear"


def _folded_weights(layer: Any, weights: list[np.ndarray], s: np.ndarray, t: np.ndarray) -> list[np.ndarray]:
    """Weights of ``layer`` (values ``weights``) followed by ``BN = s·x + t``, as one layer with a bias."""
    weights = [w.astype(np.float64) for w in weights]
    bias = weights.pop() if layer.use_bias else np.zeros_like(s)
    if isinstance(layer, tf.keras.layers.SeparableConv2D):
        depthwise, pointwise = weights
        kernels = [depthwise, pointwise * s]
    elif isinstance(layer, tf.keras.layers.DepthwiseConv2D):
        (kernel,) = weights
        c, m = kernel.shape[2], kernel.shape[3]
        kernels = [kernel * s.reshape(c, m)]
    else:
        (kernel,) = weights
        kernels = [kernel * s]
    return [k.astype(np.float32) for k in kernels] + [(bias * s + t).astype(np.float32)]


_INITIALIZERS = ("kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer")


class _Weights:
    """New layers whose weights derive from existing ones: every source value is read in one ``session.run``
    and every new value written in one more (a run per layer re-extends the session each time: 115 s instead of
    ~2 s on ResNet50)."""

    def __init__(self) -> None:
        # (new layer, variables its values derive from, values(source values) -> the new layer's weights)
        self.pending: list[tuple[Any, list[Any], Any]] = []

    def fold(self, layer: Any, bn: Any, relu: bool, x: Any) -> Any:
        config = layer.get_config()
        config.update(name=f"{layer.name}__{bn.name}", use_bias=True, activation="relu" if relu else "linear")
        for key in _INITIALIZERS:  # overwritten by assign(): a random initializer only costs graph ops
            if key in config:
                config[key] = "zeros"
        new = type(layer).from_config(config)
        out = new(x)

        def values(v: dict[int, np.ndarray]) -> list[np.ndarray]:
            s, t = bn_scale_shift(bn, {_kind(w): v[id(w)] for w in bn.weights})
            return _folded_weights(layer, [v[id(w)] for w in layer.weights], s, t)

        self.pending.append((new, [*layer.weights, *bn.weights], values))
        return out

    def affine(self, bn: Any, x: Any) -> Any:
        """``s · x + t`` per channel as a 1×1 DepthwiseConv2D."""
        return self._elementwise(bn.name, x, list(bn.weights),
                                 lambda v, _c: bn_scale_shift(bn, {_kind(w): v[id(w)] for w in bn.weights}))

    def scaling(self, layer: Any, x: Any) -> Any:
        """A ``Rescaling`` / ``Normalization`` layer (``s · x + t`` per channel) as a 1×1 DepthwiseConv2D."""
        sources = [layer.mean, layer.variance] if isinstance(layer, tf.keras.layers.Normalization) else []
        return self._elementwise(layer.name, x, sources,
                                 lambda v, c: scaling_scale_shift(layer, c, [v[id(w)] for w in sources]))

    def _elementwise(self, name: str, x: Any, sources: list[Any],
                     scale_shift: Callable[[dict[int, np.ndarray], int], tuple[np.ndarray, np.ndarray]]) -> Any:
        """``s · x + t`` per channel (``scale_shift(source values, channels)``) as a 1×1 DepthwiseConv2D marked
        element-wise, its weights written with the others in :meth:`assign`."""
        h, shape = _to_4d(x, f"{name}_to4d")
        conv = tf.keras.layers.DepthwiseConv2D(1, use_bias=True, depthwise_initializer="zeros", name=f"{name}_affine")
        setattr(conv, ELEMENTWISE, True)
        h = conv(h)

        def values(v: dict[int, np.ndarray]) -> list[np.ndarray]:
            s, t = scale_shift(v, shape[-1])
            return [s.reshape(1, 1, -1, 1).astype(np.float32), t.astype(np.float32)]

        self.pending.append((conv, sources, values))
        return _from_4d(h, shape, f"{name}_from4d")

    def add(self, layer: Any, xs: list[Any], relu: bool) -> Any:
        """``Σ xs`` as a DepthwiseConv2D with unit weights: each input reshaped to ``(H·W, 1, C)``, side by side
        ``(H·W, n, C)``, summed by a ``1 × n`` kernel (see :func:`canonize`)."""
        n = len(xs)
        shape = tuple(int(d) for d in xs[0].shape[1:])
        positions, c = int(np.prod(shape[:-1] or (1,))), shape[-1]
        parts = [tf.keras.layers.Reshape((positions, 1, c), name=f"{layer.name}_in{i}")(x) for i, x in enumerate(xs)]
        side_by_side = tf.keras.layers.Concatenate(axis=2, name=f"{layer.name}_stack")(parts)
        conv = tf.keras.layers.DepthwiseConv2D((1, n), use_bias=False, activation="relu" if relu else "linear",
                                               depthwise_initializer="zeros", name=f"{layer.name}_sum")
        out = conv(side_by_side)
        self.pending.append((conv, [], lambda v: [np.ones((1, n, c, 1), np.float32)]))
        return tf.keras.layers.Reshape(shape, name=f"{layer.name}_out")(out)

    def assign(self) -> None:
        """Read every source value in one ``session.run`` and write every new value in one more, in the default
        (the bundle's) session. Not Keras' ``batch_get_value`` / ``batch_set_value``: each first runs Keras'
        variable check over every variable of the graph and the random initializers of the new ones, about
        0.5 s of a 2.3 s canonization of ResNet50, for values written over at once."""
        if not self.pending:
            return
        session = tf.compat.v1.get_default_session()
        sources = list({id(w): w for _, ws, _ in self.pending for w in ws}.values())
        read = session.run(sources) if sources else []
        values = dict(zip((id(w) for w in sources), read))
        keras_compat.write_variables(session, [pair for new, _, make in self.pending
                                               for pair in zip(new.weights, make(values))])


def _to_4d(x: Any, name: str) -> tuple[Any, tuple[int, ...]]:
    """``x`` as ``(N, H, W, C)`` (rank-4 as is, else ``(N, 1, P, C)``) and its original shape."""
    shape = tuple(int(d) for d in x.shape[1:])
    if len(shape) == 3:
        return x, shape
    return tf.keras.layers.Reshape((1, int(np.prod(shape[:-1] or (1,))), shape[-1]), name=name)(x), shape


def _from_4d(x: Any, shape: tuple[int, ...], name: str) -> Any:
    return x if len(shape) == 3 else tf.keras.layers.Reshape(shape, name=name)(x)


def _relu_after(n: Any, sole_consumer: dict[str, Any]) -> Any:
    """The plain ReLU node that is the only reader of node ``n``'s single output, or None."""
    if len(n.flat_output_ids) != 1:
        return None
    nxt = sole_consumer.get(n.flat_output_ids[0])
    return nxt if nxt is not None and _is_plain_relu(nxt.layer) and len(nxt.flat_input_ids) == 1 else None


def canonize(model: Any, sum_rule: bool = False) -> Canonization:
    """An equivalent functional model without BatchNormalization layers (see the module docstring).

    ``sum_rule``: also turn every ``Add`` into a kernel layer (unit weights, with a plain ReLU after it fused in),
    so the method's kernel rule applies to sums. Deep Taylor needs it: iNNvestigate passes an ``Add`` with the
    plain gradient there, which hands each input the *whole* relevance (×2 per residual block: total relevance
    4.6× the logit on shapes_resnet; 0.6× with the z⁺ rule at the sums). LRP keeps iNNvestigate's z-rule for
    ``Add`` (as Zennit does with its ``Norm`` rule for sums): under αβ a kernel-style sum doubles relevance
    wherever one side has no negative inputs.

    Must run inside the model's bundle scope (graph and session). A model without anything to change is
    returned unchanged.
    """
    bn, add = tf.keras.layers.BatchNormalization, tf.keras.layers.Add
    kinds = (bn, add) if sum_rule else (bn,)
    nodes = [n for n in nodes_in_order(model) if not n.is_input]
    if not any(isinstance(n.layer, kinds) or _is_scaling(n.layer, n) for n in nodes):
        return Canonization(model)
    consumers = Counter(t_id for n in nodes for t_id in n.flat_input_ids)
    for t in model.outputs:
        consumers[str(id(t))] += 1  # a model output is never folded away
    producer = {t_id: n for n in nodes for t_id in n.flat_output_ids}
    sole_consumer = {t_id: n for n in nodes for t_id in n.flat_input_ids if consumers[t_id] == 1}

    fold: dict[int, Any] = {}  # id(BN node) → the linear layer's node it folds into
    relu_of: dict[int, Any] = {}  # id(BN or Add node) → the ReLU node fused into its replacement
    for n in nodes:
        layer = n.layer
        if sum_rule and isinstance(layer, tf.keras.layers.Add) and len(n.flat_input_ids) > 1:
            relu = _relu_after(n, sole_consumer)
            if relu is not None:
                relu_of[id(n)] = relu
            continue
        if not isinstance(layer, tf.keras.layers.BatchNormalization) or len(n.flat_input_ids) != 1:
            continue
        (in_id,) = n.flat_input_ids
        src = producer.get(in_id)
        rank = len(n.outputs.shape) if hasattr(n.outputs, "shape") else 0
        if (src is None or consumers[in_id] != 1 or not isinstance(src.layer, _FOLDABLE)
                or isinstance(src.layer, _TRANSPOSED) or not _linear(src.layer)
                or len(src.flat_output_ids) != 1 or not _channel_axis_last(layer, rank)):
            continue
        fold[id(n)] = src
        relu = _relu_after(n, sole_consumer)
        if relu is not None:
            relu_of[id(n)] = relu
    skip = {id(src) for src in fold.values()} | {id(relu) for relu in relu_of.values()}

    result = Canonization(model)
    weights = _Weights()
    tensors: dict[str, Any] = {str(id(t)): t for t in model.inputs}
    changed: set[str] = set()
    for n in nodes:
        if id(n) in skip:
            continue
        layer = n.layer
        relu = relu_of.get(id(n))
        if id(n) in fold:
            src = fold[id(n)]
            out = weights.fold(src.layer, layer, relu is not None, tensors[src.flat_input_ids[0]])
            result.folded.append((src.layer.name, layer.name))
        elif isinstance(layer, tf.keras.layers.BatchNormalization) and len(n.flat_input_ids) == 1:
            out = weights.affine(layer, tensors[n.flat_input_ids[0]])
            result.affine.append(layer.name)
        elif sum_rule and isinstance(layer, tf.keras.layers.Add) and len(n.flat_input_ids) > 1:
            out = weights.add(layer, [tensors[t_id] for t_id in n.flat_input_ids], relu is not None)
            result.sums.append(layer.name)
        elif _is_scaling(layer, n):
            out = weights.scaling(layer, tensors[n.flat_input_ids[0]])
            result.scalings.append(layer.name)
        elif not any(t_id in changed for t_id in n.flat_input_ids):
            for t_id, t in zip(n.flat_output_ids, tf.nest.flatten(n.outputs)):
                tensors[t_id] = t  # upstream of every change: reuse the original tensors
            continue
        else:
            args, kwargs = n.map_arguments({k: [v] for k, v in tensors.items()})
            out = layer(*args, **kwargs)
        if relu is not None:
            result.fused_relu.append(relu.layer.name)
        for t_id, t in zip((relu or n).flat_output_ids, tf.nest.flatten(out)):
            tensors[t_id] = t
            changed.add(t_id)
    weights.assign()
    outputs = [tensors[str(id(t))] for t in model.outputs]
    result.model = tf.keras.Model(model.inputs, outputs, name=f"{model.name}_canonical")
    return result
