"""DeepLIFT with the Rescale rule, as a modified gradient.

DeepLIFT explains ``f(x) − f(x̄)`` for a reference input ``x̄``. Ancona et al. (2018) showed that the Rescale
rule is the gradient of the network in which every elementwise nonlinearity ``a = g(z)`` passes back its
*secant slope* ``(g(z) − g(z̄)) / (z − z̄)`` between the input's and the reference's pre-activations instead
of ``g'(z)`` (``g'(z)`` itself where ``|z − z̄|`` is tiny), times ``x − x̄``. Linear layers (convolutions,
dense, batch normalisation at inference, additions, average pooling) are exact under that chain rule.

Max pooling is not elementwise. Passing it with its gradient (as the first version here did, and as the
paper's implementation does) routes ``Δy`` only through the input's argmax, although the reference's maximum
may sit elsewhere: on the demo ResNets summation-to-delta was then off by a median 0.9–2.2 % and up to 16 %
for single images (measured; a BatchNorm + Add net with average pooling instead was exact to float error, so
BatchNorm was not the cause). So max pooling gets its own rule, the one Captum uses: per window, the part
``max(y, ȳ) − ȳ`` of ``Δy = y − ȳ`` goes to the input's argmax and ``y − max(y, ȳ)`` to the reference's
argmax, and the multiplier of each position is its share divided by its ``Δx``. The shares of every window add
up to its ``Δy``, so networks made of linear layers, max pooling (``MaxPooling*``, ``GlobalMaxPooling*``) and
the nonlinearities below satisfy summation-to-delta, ``Σ attributions = f(x) − f(x̄)``, to float error.

Implementation: the model is called once more, on a batch ``[x; x̄]``, with the gradients of the nonlinear ops
overridden by these rules (each op sees both halves), and built once per (bundle, target layer).

Ref. Shrikumar et al. 2017, Learning Important Features Through Propagating Activation Differences, ICML;
Ancona et al. 2018, Towards better understanding of gradient-based attribution methods, ICLR;
Kokhlikyan et al. 2020, Captum: A unified and generic model interpretability library for PyTorch (max-pooling
rule of ``captum.attr.DeepLift``), arXiv:2009.07896.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import tensorflow as tf

from xai_core.errors import InvalidParameterError
from xai_core.methods import gradient as _gradient  # noqa: F401  (registered first: DeepLIFT ends its family)
from xai_core.methods.base import MethodSpec, Param, Selection, register
from xai_core.methods.explain import PASS_BUDGET_224
from xai_core.methods.occlusion import fill_image
from xai_core.models.bundle import ModelBundle

#: Smallest |z − z̄| for which the secant slope is used; below it, the local derivative g'(z).
EPS = 1e-5
_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805
_RESCALE = "XaiLensDeepLiftRescale"


def _derivative(op: Any, z: Any, a: Any) -> Any:
    """``g'(z)`` of the elementwise op ``a = g(z)``."""
    one, zero = tf.ones_like(z), tf.zeros_like(z)
    kind = op.type
    if kind == "Relu":
        return tf.where(z > 0, one, zero)
    if kind == "Relu6":
        return tf.where((z > 0) & (z < 6), one, zero)
    if kind == "LeakyRelu":
        return tf.where(z > 0, one, op.get_attr("alpha") * one)
    if kind == "Elu":
        return tf.where(z > 0, one, a + 1.0)
    if kind == "Selu":
        return tf.where(z > 0, _SELU_SCALE * one, a + _SELU_SCALE * _SELU_ALPHA)
    if kind == "Sigmoid":
        return a * (1.0 - a)
    if kind == "Tanh":
        return 1.0 - a * a
    if kind == "Softplus":
        return tf.sigmoid(z)
    raise NotImplementedError(kind)  # pragma: no cover - only the ops in _OPS are overridden


_OPS = ("Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus")


def _rescale_gradient(op: Any, grad: Any) -> Any:
    """Secant slope between the first half of the batch (inputs) and the second half (their references)."""
    z, a = op.inputs[0], op.outputs[0]
    n = tf.shape(z)[0] // 2
    dz, da = z[:n] - z[n:], a[:n] - a[n:]
    far = tf.abs(dz) > EPS
    slope = tf.where(far, da / tf.where(far, dz, tf.ones_like(dz)), _derivative(op, z[:n], a[:n]))
    return grad * tf.concat([slope, slope], axis=0)


def _secant(dx: Any, shares: Any, local: Any) -> Any:
    """Multiplier ``shares / Δx`` where ``|Δx|`` is not tiny, else the local gradient."""
    far = tf.abs(dx) > EPS
    return tf.where(far, shares / tf.where(far, dx, tf.ones_like(dx)), local)


def _max_pool_rescale_gradient(op: Any, grad: Any) -> Any:
    """Max pooling: each window's ``Δy`` split between the input's and the reference's argmax (Captum's rule)."""
    x, y = op.inputs[0], op.outputs[0]
    n = tf.shape(x)[0] // 2
    x1, x0, y1, y0, g = x[:n], x[n:], y[:n], y[n:], grad[:n]
    attrs = {k: op.get_attr(k) for k in ("ksize", "strides", "padding", "data_format")}
    if attrs["padding"] == b"EXPLICIT":  # pragma: no cover - Keras never emits explicit padding
        attrs["explicit_paddings"] = op.get_attr("explicit_paddings")
    top = tf.maximum(y1, y0)
    shares = (tf.raw_ops.MaxPoolGrad(orig_input=x1, orig_output=y1, grad=g * (top - y0), **attrs)
              + tf.raw_ops.MaxPoolGrad(orig_input=x0, orig_output=y0, grad=g * (y1 - top), **attrs))
    local = tf.raw_ops.MaxPoolGrad(orig_input=x1, orig_output=y1, grad=g, **attrs)
    m = _secant(x1 - x0, shares, local)
    return tf.concat([m, tf.zeros_like(m)], axis=0)


def _argmax_share(x: Any, axes: Any) -> Any:
    """1/k at the k positions holding the maximum over ``axes`` (TensorFlow's own tie rule), 0 elsewhere."""
    hit = tf.cast(tf.equal(x, tf.reduce_max(x, axes, keepdims=True)), x.dtype)
    return hit / tf.reduce_sum(hit, axes, keepdims=True)


def _reduce_max_rescale_gradient(op: Any, grad: Any) -> Any:
    """``reduce_max`` (global max pooling): the same split as :func:`_max_pool_rescale_gradient`."""
    x, axes = op.inputs[0], op.inputs[1]
    n = tf.shape(x)[0] // 2
    x1, x0 = x[:n], x[n:]
    y1, y0 = tf.reduce_max(x1, axes, keepdims=True), tf.reduce_max(x0, axes, keepdims=True)
    g = tf.reshape(grad[:n], tf.shape(y1))
    top = tf.maximum(y1, y0)
    a1, a0 = _argmax_share(x1, axes), _argmax_share(x0, axes)
    m = _secant(x1 - x0, a1 * g * (top - y0) + a0 * g * (y1 - top), a1 * g)
    return tf.concat([m, tf.zeros_like(m)], axis=0), None


_MAX_POOL, _REDUCE_MAX = "XaiLensDeepLiftMaxPool", "XaiLensDeepLiftReduceMax"
for _name, _fn in ((_RESCALE, _rescale_gradient), (_MAX_POOL, _max_pool_rescale_gradient),
                   (_REDUCE_MAX, _reduce_max_rescale_gradient)):
    with contextlib.suppress(KeyError):  # already registered: the module was re-imported (importlib.reload)
        tf.RegisterGradient(_name)(_fn)
_OVERRIDES = {**dict.fromkeys(_OPS, _RESCALE), "MaxPool": _MAX_POOL, "Max": _REDUCE_MAX}

# Keras layers DeepLIFT handles: linear ones, the nonlinear ones whose op is overridden, and max pooling
# (MaxPool / reduce_max ops, overridden with the split rule).
_LINEAR = frozenset({
    "InputLayer", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "Dense", "BatchNormalization",
    "Flatten", "Reshape", "Permute", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ZeroPadding2D", "Cropping2D", "UpSampling2D", "AveragePooling2D", "GlobalAveragePooling2D",
    "Add", "Subtract", "Average", "Concatenate", "Rescaling", "Normalization", "Activation", "ReLU", "LeakyReLU",
    "ELU", "MaxPooling1D", "MaxPooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
})
_ACTIVATIONS = frozenset({"linear", "relu", "relu6", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "softplus"})


def _layer_problem(layer: Any) -> str | None:
    kind = type(layer).__name__
    if kind not in _LINEAR:
        return kind
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", "linear") if act is not None else "linear"
    if name not in _ACTIVATIONS:
        return f"{name} activation"
    if kind == "ReLU" and (float(layer.threshold) != 0.0 or layer.max_value not in (None, 6.0)
                           or (layer.max_value is not None and float(layer.negative_slope) != 0.0)):
        return "ReLU with a threshold or a cap other than 6"
    if kind == "ELU" and float(layer.alpha) != 1.0:
        return "ELU with alpha ≠ 1"
    return None


def deeplift_support(bundle: ModelBundle) -> str | None:
    """None if every layer is linear, max pooling, or has an elementwise activation the Rescale rule covers."""
    problems: dict[str, list[str]] = {}
    for layer in bundle.model.layers:
        problem = _layer_problem(layer)
        if problem:
            problems.setdefault(problem, []).append(layer.name)
    if not problems:
        return None
    listed = "; ".join(f"{what} ({', '.join(names[:4])}{', …' if len(names) > 4 else ''})"
                       for what, names in problems.items())
    return ("DeepLIFT (Rescale) handles linear layers, max pooling and elementwise ReLU-type, sigmoid, tanh, "
            f"softplus and ELU/SELU units; this model has: {listed}.")


# --------------------------------------------------------------------------------------------- references
def set_mean_image(bundle: ModelBundle, images: np.ndarray) -> np.ndarray:
    """Register the mean of raw images ``(N, H, W, C)`` in [0, 255] as ``bundle``'s "dataset mean" reference."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1:] != bundle.input_shape or not len(images):
        raise InvalidParameterError(
            f"The mean image needs images of shape (N, {', '.join(map(str, bundle.input_shape))}); got {images.shape}.")
    mean = images.astype(np.float64).mean(axis=0, keepdims=True).astype(np.float32)
    bundle.store(("deeplift", "mean"), mean)
    return mean


def mean_image(bundle: ModelBundle) -> np.ndarray:
    """The raw mean image ``(1, H, W, C)``: registered with :func:`set_mean_image`, or for a demo model the mean of
    its training split (registered on first use). Otherwise a readable error."""
    mean = bundle.peek(("deeplift", "mean"))
    if mean is not None:
        return mean
    from xai_core.methods.patterns import training_images

    train = training_images(bundle)
    if train is None:
        raise InvalidParameterError(
            f"No data set mean is known for '{bundle.name}' (only demo models know their training data): choose "
            "the 'zeros' or 'blur' reference.")
    return set_mean_image(bundle, train[1])


def reference_images(bundle: ModelBundle, x: np.ndarray, kind: str) -> np.ndarray:
    """Model-input reference for each image of ``x`` ``(N, H, W, C)``: zeros, a blurred copy, or the data set mean."""
    if kind == "zeros":
        return np.zeros_like(x, dtype=np.float32)
    if kind == "blur":
        return fill_image(bundle, x, "blur")
    if kind == "dataset mean":
        return np.broadcast_to(bundle.preprocessing(mean_image(bundle)), x.shape).astype(np.float32)
    raise InvalidParameterError(f"Unknown DeepLIFT reference '{kind}'.")


# --------------------------------------------------------------------------------------------- the method
def _graph(bundle: ModelBundle, layer: str | None) -> tuple[Any, Any, Any]:
    """``(pairs input, index, attributions)``: feed ``[x; x̄]`` (2N images), get ``(x − x̄) · rescaled gradient``."""

    def build() -> tuple[Any, Any, Any]:
        pairs = tf.compat.v1.placeholder(tf.float32, (None, *bundle.input_shape), name="xai_deeplift_pairs")
        with bundle.graph.gradient_override_map(_OVERRIDES):
            out = bundle.neuron_model(layer)(pairs)
        idx = tf.compat.v1.placeholder(tf.int32, (None,), name="xai_deeplift_idx")
        n = tf.shape(idx)[0]
        score = tf.gather(out[:n], idx, axis=1, batch_dims=1)
        grad = tf.gradients(tf.reduce_sum(score), pairs)[0]
        return pairs, idx, (pairs[:n] - pairs[n:]) * grad[:n]

    return bundle.cached(("deeplift", layer), build)


def deeplift(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, reference: str = "zeros") -> np.ndarray:
    """DeepLIFT-Rescale attributions ``(N, H, W, C)`` of the selected neuron relative to ``reference``.

    ``maps[i].sum() = f(x[i]) − f(x̄[i])`` up to float error.
    """
    ref = reference_images(bundle, x, reference)
    pairs, idx, attributions = _graph(bundle, selection.layer)
    h, w, _ = bundle.input_shape
    per_call = max(1, int(PASS_BUDGET_224 * 224 * 224 / (h * w)) // 2)  # two passes per image
    out = []
    for start in range(0, len(x), per_call):
        sl = slice(start, start + per_call)
        out.append(bundle.session.run(attributions, {pairs: np.concatenate([x[sl], ref[sl]]),
                                                     idx: selection.indices[sl].astype(np.int32)}))
    return np.concatenate(out)


REFERENCE = Param(
    "reference", "choice", "zeros", "Reference input",
    "What the attributions are measured against: the all-zero model input (black for pixels/255 models), a "
    "blurred copy of each image, or the mean image of the model's training set (demo models only).",
    choices=("zeros", "blur", "dataset mean"), builds=False,
)

register(MethodSpec(
    id="deeplift", label="DeepLIFT (Rescale)", family="Gradient",
    summary="Attribution relative to a reference input: every nonlinearity passes back its secant slope between "
            "reference and input instead of its gradient, so the attributions add up to f(input) − f(reference).",
    caveat="Depends on the reference (a zero reference never credits black pixels, a blurred one never credits "
           "smooth regions). Max pooling gets its own rule (each window's change is split between the input's and "
           "the reference's maximum), so the sum equals f(input) − f(reference) to float error on every model it "
           "is offered for.",
    reference="Shrikumar et al. 2017, Learning Important Features Through Propagating Activation Differences, "
              "ICML; Ancona et al. 2018, Towards better understanding of gradient-based attribution methods, ICLR.",
    params=(REFERENCE,), run=deeplift, support=deeplift_support,
    build=lambda bundle, layer, **_params: _graph(bundle, layer),
))
