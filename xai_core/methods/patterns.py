"""PatternNet and PatternAttribution: explanations through signal patterns learnt from data.

The weights of a layer filter out distractors as much as they pick up the signal, so projecting back with the
weights (the gradient) shows both. Kindermans et al. learn, per neuron, the *pattern* ``a`` of its signal from
data: with ``y = wᵀx`` the linear estimator is ``a = cov(x, y) / (wᵀ cov(x, y))``; the two-component estimator
for ReLU units uses only the samples where the unit fires, ``a₊ = cov₊(x, y) / (wᵀ cov₊(x, y))``.

* :func:`fit_patterns` computes both from running sums (count, Σx, Σy, Σxy per neuron) over batches of
  images, for every ``Dense`` and ``Conv2D`` layer (for convolutions every output position is one sample of
  the kernel's input patch).
* **PatternNet** projects the explained score back with the patterns in place of the weights.
  **PatternAttribution** propagates it with ``w ⊙ a₊`` (Deep Taylor with the pattern's root point
  ``x₀ = x − a₊ y``, so a neuron passes ``wᵢ (xᵢ − x₀ᵢ) = wᵢ a₊ᵢ y`` to input ``i``).
* Both start from the explained score (as iNNvestigate 1.x did), gate ReLUs by the forward pass, and pass every
  layer without weights (pooling, flatten, ReLU layers, …) with its gradient, as iNNvestigate 1.x did.

Patterns are registered per bundle (:func:`register_patterns`) and kept on disk per model key
(:func:`patterns_path`, :func:`fit_and_cache`), so fitting happens once per model. The backward graph is built
once per (bundle, method, estimator, target layer); patterns live in graph variables, so fitting again never
rebuilds it.

Ref. Kindermans et al. 2018, Learning how to explain neural networks: PatternNet and PatternAttribution,
ICLR (arXiv:1705.05598).
"""

from __future__ import annotations

import contextlib
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from xai_core.compat import keras as keras_compat
from xai_core.errors import InvalidParameterError, PatternsNotFittedError
from xai_core.methods.base import Fitting, MethodSpec, Param, Selection, register
from xai_core.models.bundle import DEFAULT_BATCH_SIZE, ModelBundle

ESTIMATORS = ("relu", "linear")
_REF = ("Kindermans et al. 2018, Learning how to explain neural networks: PatternNet and PatternAttribution, "
        "ICLR (arXiv:1705.05598).")
_KERNEL_KINDS = ("Conv2D", "Dense")
#: Layers without weights that the backward pass crosses with their gradient (iNNvestigate 1.x's list, plus
#: padding, cropping, average pooling and rescaling, which are linear).
_PASS_KINDS = frozenset({
    "InputLayer", "Flatten", "Reshape", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "MaxPooling2D", "GlobalMaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "ZeroPadding2D",
    "Cropping2D", "Concatenate", "Activation", "ReLU", "Rescaling",
})
_UNITS = ("relu", "linear")
#: Fitting keeps float64 Σx and Σxy per kernel weight (and the pattern, float32): 20 bytes per weight. Models
#: above this budget are not offered (VGG16's fc1 alone has 103 M weights: 2 GB of statistics).
MEMORY_LIMIT = 1 << 30
_BYTES_PER_WEIGHT = 20

ESTIMATOR = Param(
    "estimator", "choice", "relu", "Pattern estimator",
    "relu: the two-component estimator for ReLU layers (statistics of the samples where a unit fires; layers "
    "without ReLU use the linear one). linear: the linear estimator cov(x, y) / var(y) for every layer. "
    "Each estimator is fitted once per model.",
    choices=ESTIMATORS,
)


# --------------------------------------------------------------------------------------------- the model
def _act_name(layer: Any) -> str:
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "linear") if act is not None else "linear"


def _plain_relu(layer: Any) -> bool:
    kind = type(layer).__name__
    if kind == "Activation":
        return _act_name(layer) == "relu"
    if kind == "ReLU":
        return (layer.max_value is None and float(layer.negative_slope) == 0.0 and float(layer.threshold) == 0.0)
    return False


def _nodes(model: Any) -> list[Any]:
    """The model's layer calls in topological order (inputs first)."""
    return keras_compat.nodes_in_order(model)


def pattern_support(bundle: ModelBundle) -> str | None:
    """Static check: None if every layer is a Dense/Conv2D layer with ReLU or linear units or a layer the backward
    pass crosses with its gradient; else the reason, naming the layers."""
    problems: dict[str, list[str]] = {}
    calls: dict[str, int] = {}
    for node in _nodes(bundle.model):
        calls[node.layer.name] = calls.get(node.layer.name, 0) + 1
    kernels = 0
    for layer in bundle.model.layers:
        kind = type(layer).__name__
        if kind in _KERNEL_KINDS:
            kernels += 1
            if _act_name(layer) not in _UNITS:
                problems.setdefault(f"{_act_name(layer)} units", []).append(layer.name)
            elif kind == "Conv2D" and (layer.groups != 1 or layer.data_format != "channels_last"):
                problems.setdefault("grouped or channels-first Conv2D", []).append(layer.name)
            elif kind == "Dense" and len(layer.input_shape) != 2:
                problems.setdefault("Dense on a non-flat input", []).append(layer.name)
            elif calls.get(layer.name, 0) > 1:
                problems.setdefault("layers called more than once", []).append(layer.name)
        elif kind in ("Activation", "ReLU"):
            if not (_plain_relu(layer) or (kind == "Activation" and _act_name(layer) == "linear")):
                problems.setdefault(f"{kind} other than a plain ReLU", []).append(layer.name)
        elif kind not in _PASS_KINDS:
            problems.setdefault(kind, []).append(layer.name)
    if problems:
        listed = "; ".join(f"{what} ({', '.join(names[:4])}{', …' if len(names) > 4 else ''})"
                           for what, names in problems.items())
        return ("PatternNet and PatternAttribution learn patterns for Dense and Conv2D layers of plain ReLU "
                f"networks (as in the paper); this model has layers they cannot handle: {listed}.")
    if not kernels:
        return "PatternNet and PatternAttribution learn patterns for Dense and Conv2D layers; this model has none."
    sizes = {layer.name: int(np.prod(layer.kernel.shape)) for layer in bundle.model.layers
             if type(layer).__name__ in _KERNEL_KINDS}
    need = _BYTES_PER_WEIGHT * sum(sizes.values())
    if need > MEMORY_LIMIT:
        big = max(sizes, key=sizes.__getitem__)
        return (f"Fitting patterns for this model would need {need / 1e9:.1f} GB of running statistics (layer {big} "
                f"alone has {sizes[big]:,} weights); XAI Lens allows {MEMORY_LIMIT / 1e9:.1f} GB.")
    return None


@dataclass(frozen=True)
class _Kernel:
    """One Dense/Conv2D layer call: its input ``x``, output ``y`` and whether a ReLU follows its linear part."""

    layer: Any
    x: Any
    y: Any
    relu: bool

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def conv(self) -> bool:
        return type(self.layer).__name__ == "Conv2D"


def _kernels(bundle: ModelBundle) -> list[_Kernel]:
    def build() -> list[_Kernel]:
        nodes = _nodes(bundle.model)
        consumers: dict[Any, list[Any]] = {}
        for node in nodes:
            if not node.is_input:
                for t in tf.nest.flatten(node.input_tensors):
                    consumers.setdefault(t.ref(), []).append(node.layer)
        out = []
        for node in nodes:
            layer = node.layer
            if type(layer).__name__ not in _KERNEL_KINDS:
                continue
            (x,), (y,) = tf.nest.flatten(node.input_tensors), tf.nest.flatten(node.output_tensors)
            after = consumers.get(y.ref(), [])
            relu = _act_name(layer) == "relu" or (len(after) == 1 and _plain_relu(after[0]))
            out.append(_Kernel(layer, x, y, relu))
        return out

    return bundle.cached(("pattern_kernels",), build)


def _kernel_2d(kernel: np.ndarray) -> np.ndarray:
    return kernel.reshape(-1, kernel.shape[-1])


def model_fingerprint(bundle: ModelBundle) -> str:
    """crc32 of the names, shapes and values of every Dense/Conv2D kernel: patterns fit only these weights."""

    def build() -> str:
        crc = 0
        for k in _kernels(bundle):
            w = np.ascontiguousarray(bundle.session.run(k.layer.kernel), dtype=np.float32)
            crc = zlib.crc32(f"{k.name}{w.shape}".encode(), crc)
            crc = zlib.crc32(w.tobytes(), crc)
        return f"{crc:08x}"

    return bundle.cached(("pattern_fingerprint",), build)


# --------------------------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class Patterns:
    """Fitted signal patterns of one model.

    Attributes
    ----------
    estimator : ``"relu"`` (two-component for ReLU layers) or ``"linear"``.
    layers : layer name → float32 pattern with the shape of the layer's kernel (``(kh, kw, c_in, c_out)`` or
        ``(d_in, d_out)``); column ``j`` is the pattern of output unit ``j``, normalised so that ``wⱼᵀ aⱼ = 1``.
    images : number of images the statistics were computed on.
    fingerprint : :func:`model_fingerprint` of the model they were fitted on.
    """

    estimator: str
    layers: dict[str, np.ndarray]
    images: int
    fingerprint: str


def _pre_activation(k: _Kernel) -> Any:
    """The layer call's output before its activation (bias included): read from the forward graph."""
    if _act_name(k.layer) == "linear":
        return k.y
    if k.y.op.type == "Relu":
        return k.y.op.inputs[0]
    z = k.layer.convolution_op(k.x, k.layer.kernel) if k.conv else tf.matmul(k.x, k.layer.kernel)  # pragma: no cover
    return tf.nn.bias_add(z, k.layer.bias) if k.layer.use_bias else z  # pragma: no cover


def _stat_tensors(bundle: ModelBundle, estimator: str) -> dict[str, dict[str, Any]]:
    """Per kernel layer, sums over one batch of the samples the estimator uses: ``count`` and ``sy`` ``(C,)``,
    ``sx`` ``(D, C)`` (``(D, 1)`` when every sample counts) and ``sxy`` ``(D, C)``, with D the kernel's fan-in.

    For a convolution every output position is a sample whose x is the input patch under the kernel, so
    ``Σ x ⊗ g`` over samples is the kernel gradient of the convolution for output gradient ``g``: computed with
    ``Conv2DBackpropFilter`` instead of materialising the patches (same padding, strides and dilation).
    """

    def build() -> dict[str, dict[str, Any]]:
        out = {}
        for k in _kernels(bundle):
            layer = k.layer
            z = _pre_activation(k)
            c = int(z.shape[-1])
            if estimator == "relu" and k.relu:
                mask = tf.cast(z > 0, z.dtype)  # the samples where the unit fires
            else:
                mask = tf.ones_like(z[..., :1])  # every sample, for every unit
            zm = z * mask
            g = tf.concat([mask, zm], axis=-1)
            if k.conv:
                kh, kw, c_in, _ = layer.kernel.shape
                s = tf.raw_ops.Conv2DBackpropFilter(
                    input=k.x, filter_sizes=[kh, kw, c_in, g.shape[-1]], out_backprop=g,
                    strides=[1, *layer.strides, 1], padding=layer.padding.upper(),
                    dilations=[1, *layer.dilation_rate, 1])
                s = tf.reshape(s, (-1, g.shape[-1]))  # (kh·kw·c_in, ·): the kernel's own order
            else:
                s = tf.matmul(k.x, g, transpose_a=True)
            axes = list(range(len(z.shape) - 1))
            count = tf.reduce_sum(mask, axes) * tf.ones((c,), z.dtype)
            out[k.name] = {"count": count, "sx": s[:, :-c], "sy": tf.reduce_sum(zm, axes), "sxy": s[:, -c:]}
        return out

    return bundle.cached(("pattern_stats", estimator), build)


def patterns_from_stats(kernel: np.ndarray, count: np.ndarray, sx: np.ndarray, sy: np.ndarray,
                        sxy: np.ndarray) -> np.ndarray:
    """``a = cov(x, y) / (wᵀ cov(x, y))`` per output unit from running sums; 0 for units that never vary.

    Parameters
    ----------
    kernel : the layer's kernel, ``(..., d_out)``; flattened to ``(d_in, d_out)``.
    count : ``(d_out,)`` samples per unit; sx, sxy : ``(d_in, d_out)`` (sx may be ``(d_in, 1)``); sy : ``(d_out,)``.

    Returns
    -------
    float32 pattern of the kernel's shape.
    """
    w = _kernel_2d(np.asarray(kernel, np.float64))
    n = np.maximum(count, 1.0)
    cov = sxy / n - (sx / n) * (sy / n)
    var = np.einsum("dc,dc->c", w, cov)  # wᵀ cov(x, y) = var(y) ≥ 0
    ok = (count > 1) & (var > 1e-10 * max(float(var.max(initial=0.0)), 1e-30))
    a = np.where(ok, cov / np.where(ok, var, 1.0), 0.0)
    return a.reshape(np.shape(kernel)).astype(np.float32)


def fit_patterns(bundle: ModelBundle, batches: Iterable[np.ndarray], total: int | None = None,
                 estimator: str = "relu", progress: Callable[[int, int], None] | None = None) -> Patterns:
    """Learn the signal pattern of every Dense and Conv2D unit of ``bundle`` from image batches.

    Parameters
    ----------
    batches : raw pixel batches ``(B, H, W, C)`` in [0, 255] (uint8 or float) at the model's input size.
    total : number of images in all batches (for ``progress``; counted as they come when None).
    estimator : ``"relu"`` (two-component estimator for layers followed by a ReLU, linear for the others) or
        ``"linear"`` (linear estimator everywhere).
    progress : called with ``(images done, total)`` after each batch.

    Returns
    -------
    Patterns (not yet registered: see :func:`register_patterns`).

    Ref. Kindermans et al. 2018, arXiv:1705.05598, section 4 (estimators ``S_a`` and ``S_a+-``).
    """
    if estimator not in ESTIMATORS:
        raise InvalidParameterError(f"Pattern estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}.")
    reason = pattern_support(bundle)
    if reason:
        raise InvalidParameterError(reason)
    tensors = _stat_tensors(bundle, estimator)
    sums: dict[str, dict[str, np.ndarray]] = {}
    done = 0
    for batch in batches:
        x = bundle.preprocess(batch)
        if not len(x):
            continue
        values = bundle.session.run(tensors, {bundle.model.input: x})
        for name, stats in values.items():
            acc = sums.setdefault(name, {key: np.zeros(v.shape, np.float64) for key, v in stats.items()})
            for key, v in stats.items():
                acc[key] += v
        done += len(x)
        if progress:
            progress(done, max(total or done, done))
    if done < 2:
        raise InvalidParameterError("Fitting patterns needs at least two images (more give better patterns).")
    kernels = {k.name: k.layer.kernel for k in _kernels(bundle)}
    with bundle.scope():
        weights = bundle.session.run(kernels)
    layers = {name: patterns_from_stats(weights[name], **sums[name]) for name in kernels}
    return Patterns(estimator, layers, done, model_fingerprint(bundle))


def image_batches(images: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE * 2) -> Iterator[np.ndarray]:
    """``images`` ``(N, H, W, C)`` in consecutive batches."""
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


def training_images(bundle: ModelBundle) -> tuple[str, np.ndarray] | None:
    """``(name, uint8 images)`` of the demo training split a demo model was trained on, else None."""
    from xai_core.data.demo import load_demo_set

    name = bundle.info.get("dataset") if bundle.source == "demo" else None
    if not name:
        return None
    data = load_demo_set(name, "train")
    if data.images.shape[1:] != bundle.input_shape:
        return None
    return data.name, data.images


# --------------------------------------------------------------------------------------------- registry, disk
def register_patterns(bundle: ModelBundle, patterns: Patterns) -> None:
    """Make ``patterns`` the ones :func:`explain` uses for ``bundle`` (per estimator); checks they fit the model."""
    if patterns.estimator not in ESTIMATORS:
        raise InvalidParameterError(f"Unknown pattern estimator {patterns.estimator!r}.")
    if patterns.fingerprint != model_fingerprint(bundle):
        raise InvalidParameterError(
            f"These patterns were fitted on a different model (or different weights) than '{bundle.name}': "
            "fit them again for this model.")
    kernels = {k.name: tuple(k.layer.kernel.shape) for k in _kernels(bundle)}
    shapes = {name: tuple(a.shape) for name, a in patterns.layers.items()}
    if shapes != kernels:
        raise InvalidParameterError(f"The patterns do not match the layers of '{bundle.name}': fit them again.")
    bundle.store(("patterns", patterns.estimator), patterns)


def registered_patterns(bundle: ModelBundle, estimator: str = "relu") -> Patterns | None:
    """The patterns registered for ``bundle`` with ``estimator``, or None."""
    return bundle.peek(("patterns", estimator))


def cache_dir() -> Path:
    """Where fitted patterns are kept: ``$XAI_LENS_CACHE`` or ``~/.cache/xai_lens``."""
    return Path(os.environ.get("XAI_LENS_CACHE") or Path.home() / ".cache" / "xai_lens")


def patterns_path(model_key: str, estimator: str = "relu", root: str | Path | None = None) -> Path:
    """``<cache>/patterns/<slug of the model key>-<crc32 of the key>-<estimator>.npz`` (the crc keeps long,
    similar keys such as upload hashes apart)."""
    stem = re.sub(r"[^a-z0-9]+", "-", model_key.lower()).strip("-")[:60] or "model"
    return Path(root or cache_dir()) / "patterns" / f"{stem}-{zlib.crc32(model_key.encode()):08x}-{estimator}.npz"


def save_patterns(patterns: Patterns, path: str | Path) -> Path:
    """Write ``patterns`` to an ``.npz`` file (written to a temporary name first, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(patterns.layers)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    arrays: dict[str, Any] = {f"p{i}": patterns.layers[n] for i, n in enumerate(names)}
    np.savez_compressed(tmp, estimator=patterns.estimator, images=patterns.images, fingerprint=patterns.fingerprint,
                        names=np.array(names), **arrays)
    os.replace(tmp, path)
    return path


def load_patterns(path: str | Path) -> Patterns:
    """Read patterns written by :func:`save_patterns`."""
    try:
        with np.load(path, allow_pickle=False) as f:
            names = [str(n) for n in f["names"]]
            return Patterns(str(f["estimator"]), {n: f[f"p{i}"].astype(np.float32) for i, n in enumerate(names)},
                            int(f["images"]), str(f["fingerprint"]))
    except (OSError, KeyError, ValueError) as exc:
        raise InvalidParameterError(f"Cannot read patterns from {path}: {exc}") from exc


def cached_patterns(bundle: ModelBundle, model_key: str, estimator: str = "relu",
                    root: str | Path | None = None) -> Patterns | None:
    """Registered patterns, else the ones saved for ``model_key`` (registered on the way) if they fit the model's
    current weights, else None."""
    known = registered_patterns(bundle, estimator)
    if known is not None:
        return known
    path = patterns_path(model_key, estimator, root)
    if not path.exists():
        return None
    try:
        patterns = load_patterns(path)
        register_patterns(bundle, patterns)
    except InvalidParameterError:  # stale (the model changed) or unreadable: fit again
        return None
    return patterns


def fit_and_cache(bundle: ModelBundle, model_key: str, batches: Iterable[np.ndarray], total: int | None = None,
                  estimator: str = "relu", progress: Callable[[int, int], None] | None = None,
                  root: str | Path | None = None) -> Patterns:
    """:func:`fit_patterns`, then register the patterns and save them under ``model_key`` (fitting happens once).

    Saving is best effort: if the cache folder cannot be written, the patterns last as long as the loaded model.
    """
    patterns = fit_patterns(bundle, batches, total, estimator, progress)
    register_patterns(bundle, patterns)
    with contextlib.suppress(OSError):
        save_patterns(patterns, patterns_path(model_key, estimator, root))
    return patterns


# --------------------------------------------------------------------------------------------- explaining
def _pattern_variables(bundle: ModelBundle, estimator: str) -> dict[str, tuple[Any, Any, Any]]:
    """Per kernel layer ``(variable, placeholder, assign op)``; variables hold the registered patterns."""

    def build() -> dict[str, tuple[Any, Any, Any]]:
        out = {}
        for k in _kernels(bundle):
            shape = tuple(k.layer.kernel.shape)
            var = tf.compat.v1.Variable(tf.zeros(shape), trainable=False, collections=[],
                                        name=f"xai_pattern_{estimator}_{k.name}")
            ph = tf.compat.v1.placeholder(tf.float32, shape)
            out[k.name] = (var, ph, var.assign(ph))
        return out

    return bundle.cached(("pattern_variables", estimator), build)


def _load_variables(bundle: ModelBundle, estimator: str) -> None:
    patterns = registered_patterns(bundle, estimator)
    if patterns is None:
        raise PatternsNotFittedError(
            f"PatternNet and PatternAttribution need the signal patterns of '{bundle.name}' ({estimator} estimator), "
            "and they have not been fitted yet: fit patterns on images like the ones you explain first "
            "(the Visualize page offers a 'Fit patterns' button; in code: xai_core.methods.patterns.fit_and_cache)."
        )
    if bundle.peek(("pattern_loaded", estimator)) is patterns:
        return
    variables = _pattern_variables(bundle, estimator)
    with bundle.scope():
        if bundle.peek(("pattern_loaded", estimator)) is not patterns:
            bundle.session.run([assign for _, _, assign in variables.values()],
                               {ph: patterns.layers[name] for name, (_, ph, _) in variables.items()})
            bundle.store(("pattern_loaded", estimator), patterns)


def _backward_graph(bundle: ModelBundle, method: str, estimator: str, layer: str | None) -> tuple[Any, Any]:
    """``(index placeholder, maps)``: the explained score propagated back to the input (built once)."""

    def build() -> tuple[Any, Any]:
        variables = _pattern_variables(bundle, estimator)
        kernels = {id(k.layer): k for k in _kernels(bundle)}
        idx = tf.compat.v1.placeholder(tf.int32, (None,), name="xai_pattern_idx")
        flat = bundle.layer_tensor(layer)
        start = bundle.layer_output(None if bundle.is_output_layer(layer) else layer)
        score = tf.gather(flat, idx, axis=1, batch_dims=1)
        seed = tf.one_hot(idx, int(flat.shape[-1])) * score[:, None]
        signal: dict[Any, Any] = {start.ref(): tf.reshape(seed, tf.shape(start))}
        for node in reversed(_nodes(bundle.model)):  # every consumer of a tensor comes before its producer
            if node.is_input:
                continue
            outs = tf.nest.flatten(node.output_tensors)
            back = [signal.get(t.ref()) for t in outs]
            if all(b is None for b in back):
                continue  # not upstream of the explained neuron
            back = [tf.zeros_like(t) if b is None else b for b, t in zip(back, outs)]
            ins = tf.nest.flatten(node.input_tensors)
            k = kernels.get(id(node.layer))
            if k is not None:
                r = back[0] * tf.cast(outs[0] > 0, tf.float32) if _act_name(k.layer) == "relu" else back[0]
                pattern = variables[k.name][0]
                kernel = pattern if method == "net" else k.layer.kernel * pattern
                linear = k.layer.convolution_op(ins[0], kernel) if k.conv else tf.matmul(ins[0], kernel)
                grads = tf.gradients(linear, ins[0], grad_ys=r)
            else:
                grads = tf.gradients(outs, ins, grad_ys=back)
            for t, g in zip(ins, grads):
                if g is not None:
                    signal[t.ref()] = g if t.ref() not in signal else signal[t.ref()] + g
        x = bundle.model.input
        return idx, signal.get(x.ref(), tf.zeros_like(x))

    return bundle.cached(("pattern_graph", method, estimator, layer), build)


def _run(method: str, bundle: ModelBundle, x: np.ndarray, selection: Selection, *, estimator: str) -> np.ndarray:
    _load_variables(bundle, estimator)
    idx, maps = _backward_graph(bundle, method, estimator, selection.layer)
    return bundle.session.run(maps, {bundle.model.input: x, idx: selection.indices.astype(np.int32)})


def _pattern_net(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, estimator: str) -> np.ndarray:
    """PatternNet: the explained score times the patterns, projected back layer by layer (ReLUs gated by the
    forward pass). Maps ``(N, H, W, C)``: an estimate of the signal in input space."""
    return _run("net", bundle, x, selection, estimator=estimator)


def _pattern_attribution(bundle: ModelBundle, x: np.ndarray, selection: Selection, *, estimator: str) -> np.ndarray:
    """PatternAttribution: relevance propagated with ``w ⊙ a₊`` per layer. Maps ``(N, H, W, C)``."""
    return _run("attribution", bundle, x, selection, estimator=estimator)


def _is_fitted(bundle: ModelBundle, model_key: str, estimator: str) -> bool:
    return cached_patterns(bundle, model_key, estimator) is not None


FITTING = Fitting(
    what="patterns", param="estimator", is_fitted=_is_fitted,
    fit=lambda bundle, key, batches, total, estimator, progress: fit_and_cache(
        bundle, key, batches, total, estimator, progress),
    training_images=training_images, batches=image_batches,
)

_SPECS = [
    MethodSpec(
        id="pattern.net", label="PatternNet", family="Pattern",
        summary="The signal the network detects, projected back to the pixels with patterns learnt from data "
                "instead of the weights: what the explained neuron responds to, with the distractors filtered out.",
        caveat="Needs patterns fitted on data once per model; shows a signal estimate, not a contribution (it does "
               "not add up to the score), and patterns fitted on few or unlike images are unreliable.",
        reference=_REF, params=(ESTIMATOR,), run=_pattern_net, support=pattern_support, fitting=FITTING,
        build=lambda bundle, layer, *, estimator: _backward_graph(bundle, "net", estimator, layer),
    ),
    MethodSpec(
        id="pattern.attribution", label="PatternAttribution", family="Pattern",
        summary="Relevance passed back in proportion to weight × learnt pattern (Deep Taylor with the pattern as "
                "root point): pixels that carry the signal get credit, directions the weights merely cancel do not.",
        caveat="Needs patterns fitted on data once per model; the map depends on that data (fit on images like "
               "the ones you explain). Not a local gradient: it can credit pixels the score is insensitive to.",
        reference=_REF, params=(ESTIMATOR,), run=_pattern_attribution, support=pattern_support,
        fitting=FITTING, build=lambda bundle, layer, *, estimator: _backward_graph(bundle, "attribution", estimator,
                                                                                  layer),
    ),
]

for _spec in _SPECS:
    register(_spec)
