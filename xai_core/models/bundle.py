"""A loaded model: its own graph, session and lock, split into logits and probabilities.

Streamlit runs every rerun in a new thread and the Keras session is thread-local, so a model cached across
reruns must carry its own ``tf.Graph`` and ``Session`` and every TensorFlow call must run inside
:meth:`ModelBundle.scope`. Built tensors and analyzers live in the bundle's cache (:meth:`ModelBundle.cached`)
so they are created once per bundle and never per request.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from xai_core import runtime
from xai_core.compat import keras as keras_compat
from xai_core.errors import InvalidParameterError, ModelLoadError

#: Images go through the engine in this many at a time (analyzers, forward passes, occlusion batches).
DEFAULT_BATCH_SIZE = 32
#: Inputs of up to this many images have their logits kept (:meth:`ModelBundle.logits`; hashing 256 images of 224×224
#: costs ~0.15 s, their forward pass seconds), the last FORWARD_MEMO of them.
FORWARD_MEMO_IMAGES = 256
FORWARD_MEMO = 16


def _content_key(x: np.ndarray) -> tuple[Any, ...]:
    """What identifies an input array: its shape, dtype and a 128-bit digest of its bytes (0.6 ms for 224×224×3)."""
    data = np.ascontiguousarray(x)
    return data.shape, data.dtype.str, hashlib.blake2b(data.tobytes(), digest_size=16).digest()


def session_config() -> Any:
    """Session options of every bundle: Grappler's graph rewriting off, unless ``XAI_LENS_GRAPPLER=on``.

    Grappler rewrites a graph on its first ``session.run``, a large part of a first map's cost on an analyzer's
    large graph. Measured on an uploaded ResNet50 at 224 (docs/benchmarks.md, first-map benchmark): the first
    gradient map 0.85-0.94 s without it, 1.05-1.40 s with it; LRP-ε 4.5-4.9 s against 6.0-6.6 s. Warm maps
    stay within the machine's noise, except plain forward passes (its Conv2D + BiasAdd + ReLU fusions): 8 images
    through ResNet50 take 0.80-0.83 s instead of 0.71-0.77 s. Keeping only the fusing remapper kept the forward
    speed but lost most of the first-run gain (LRP-ε 5.6-6.0 s).
    """
    config = tf.compat.v1.ConfigProto()
    if os.environ.get("XAI_LENS_GRAPPLER", "off") != "on":
        config.graph_options.rewrite_options.disable_meta_optimizer = True
    return config


@dataclass(frozen=True)
class LayerInfo:
    """One entry of a model's layer catalogue.

    Attributes
    ----------
    name, kind : layer name and Keras class name.
    index : position in ``model.layers``.
    output_shape : output shape without the batch axis, e.g. ``(14, 14, 64)``.
    """

    name: str
    kind: str
    index: int
    output_shape: tuple[int, ...]

    @property
    def units(self) -> int:
        """Number of neurons (flattened output size)."""
        return int(np.prod(self.output_shape)) if self.output_shape else 1

    @property
    def spatial(self) -> bool:
        """True for an ``(H, W, C)`` output with H, W > 1: usable by Grad-CAM."""
        s = self.output_shape
        return len(s) == 3 and s[0] > 1 and s[1] > 1

    @property
    def is_input(self) -> bool:
        return self.kind == "InputLayer"

    def label(self) -> str:
        shape = "×".join(str(d) for d in self.output_shape)
        return f"{self.name} ({self.kind}, {shape})"


@dataclass(frozen=True)
class Preprocessing:
    """How raw RGB/gray pixels in [0, 255] become model input.

    ``fn`` maps float32 ``(N, H, W, C)`` in [0, 255] to the model's input space. ``low``/``high`` are the
    model-input values of a black and a white pixel (per channel), used for input-range rules (DeepTaylor
    bounds, LRP Z^B) and baselines.
    """

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    description: str = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(np.array(x, dtype=np.float32, copy=True)), dtype=np.float32)


def _scale(a: float, b: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: x * a + b


def _caffe(x: np.ndarray) -> np.ndarray:
    x = x[..., ::-1] if x.shape[-1] == 3 else x
    return x - np.array([103.939, 116.779, 123.68][: x.shape[-1]], dtype=np.float32)


def _torch(x: np.ndarray) -> np.ndarray:
    mean = np.array([0.485, 0.456, 0.406][: x.shape[-1]], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225][: x.shape[-1]], dtype=np.float32)
    return (x / 255.0 - mean) / std


#: The preprocessing conventions a user can pick for their own model.
PREPROCESSINGS: dict[str, Preprocessing] = {
    p.name: p
    for p in [
        Preprocessing("unit", _scale(1 / 255.0, 0.0), "pixels / 255 → [0, 1]"),
        Preprocessing("symmetric", _scale(1 / 127.5, -1.0), "pixels / 127.5 − 1 → [−1, 1]"),
        Preprocessing("raw", _scale(1.0, 0.0), "raw pixels [0, 255] (model rescales itself)"),
        Preprocessing("caffe", _caffe, "RGB→BGR, minus ImageNet mean (VGG/ResNet style)"),
        Preprocessing("torch", _torch, "/255, minus ImageNet mean, divided by std (DenseNet style)"),
    ]
}


@dataclass
class ModelBundle:
    """A Keras image classifier with everything needed to run and explain it from any thread.

    Attributes
    ----------
    name : display name, unique per loaded model.
    graph, session, lock : the model's own TF graph and session, and the lock around every TF call.
    model : Keras model from input to **logits** (pre-softmax class scores); explanations use it.
    head : output activation removed from the original model: ``"softmax"``, ``"sigmoid"`` or ``"none"``.
    preprocessing : raw pixels [0, 255] → model input.
    class_names : one name per output unit.
    source : where it came from (``"demo"``, ``"keras.applications"``, ``"upload"``).
    """

    name: str
    graph: tf.Graph
    session: tf.compat.v1.Session
    model: Any
    head: str
    preprocessing: Preprocessing
    class_names: list[str]
    source: str = ""
    description: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _cache: dict[Hashable, Any] = field(default_factory=dict, repr=False)
    _forward: OrderedDict[Hashable, np.ndarray] = field(default_factory=OrderedDict, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        factory: Callable[[], Any],
        *,
        name: str,
        preprocessing: Preprocessing,
        class_names: list[str] | None = None,
        source: str = "",
        description: str = "",
        info: dict[str, Any] | None = None,
    ) -> ModelBundle:
        """Build a bundle: run ``factory()`` (which creates or loads a Keras model) inside a fresh graph.

        The model is validated as an image classifier, flattened if it nests other models, and split into
        logits and head. Raises :class:`ModelLoadError` with a readable message otherwise.
        """
        from xai_core.models.graph import flatten_nested, reserve_layer_names, split_head, validate_classifier

        runtime.require_installed()
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph, config=session_config())
        with graph.as_default(), session.as_default():
            # Inference only, fixed when the graph is built: with Keras' default learning-phase placeholder every
            # BatchNormalization becomes two tf.cond (training / inference), whose gradients build function
            # graphs that Grappler then inlines. On a ResNet50 upload (224) that made tf.gradients 2.5-3.8 s to
            # build and 2.7-3.8 s to run first; with the phase fixed, 0.4 s and 0.9 s (docs/benchmarks.md).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tf.compat.v1.keras.backend.set_learning_phase(0)
            raw = factory()
            reserve_layer_names(raw)
            validate_classifier(raw)
            flat = flatten_nested(raw)
            logits_model, head = split_head(flat)
            # Keras initialises variables lazily through its own get_session(); do it now so that plain
            # session.run calls on fresh (not loaded) models work.
            tf.compat.v1.keras.backend.get_session()
        n_out = int(logits_model.output.shape[-1])
        if class_names is None:
            class_names = [f"class {i}" for i in range(n_out)]
        if len(class_names) != n_out:
            raise ModelLoadError(
                f"The model has {n_out} outputs but {len(class_names)} class names were given: "
                "give one name per line, one line per class."
            )
        bundle = cls(
            name=name,
            graph=graph,
            session=session,
            model=logits_model,
            head=head,
            preprocessing=preprocessing,
            class_names=list(class_names),
            source=source,
            description=description,
            info=dict(info or {}),
        )
        bundle.layers  # noqa: B018  (catalogue once, at load time)
        return bundle

    # ------------------------------------------------------------------ threading
    @contextmanager
    def scope(self) -> Iterator[None]:
        """Hold the lock and make this bundle's graph and session the defaults (re-entrant)."""
        with self.lock, self.graph.as_default(), self.session.as_default():
            yield

    def cached(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """Return ``self._cache[key]``, calling ``build()`` inside :meth:`scope` the first time.

        Hits are read without the lock (a dict lookup is atomic); misses build under the lock, once.
        """
        try:
            return self._cache[key]
        except KeyError:
            pass
        with self.scope():
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def is_cached(self, key: Hashable) -> bool:
        return key in self._cache

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` from the cache (a build that was interrupted)."""
        self._cache.pop(key, None)

    def peek(self, key: Hashable, default: Any = None) -> Any:
        """The value cached under ``key``, or ``default`` (never builds; read without the lock)."""
        return self._cache.get(key, default)

    def store(self, key: Hashable, value: Any, *, lock: bool = True) -> None:
        """Cache ``value`` under ``key`` (under the model's lock unless ``lock=False``: a value computed outside
        the lock, whose store must not wait for a long build to finish)."""
        if lock:
            with self.scope():
                self._cache[key] = value
        else:
            self._cache[key] = value

    # ------------------------------------------------------------------ shape facts
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the model input."""

        def build() -> tuple[int, int, int]:
            _, h, w, c = self.model.input_shape
            return int(h), int(w), int(c)

        return self.cached("input_shape", build)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input_shape[:2]

    @property
    def channels(self) -> int:
        return self.input_shape[2]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_params(self) -> int:
        return self.cached("num_params", lambda: int(self.model.count_params()))

    @property
    def input_low_high(self) -> tuple[float, float]:
        """Model-input values of the darkest and brightest pixel (min / max over channels)."""
        lo = self.preprocessing(np.zeros((1, 1, 1, self.channels), np.float32))
        hi = self.preprocessing(np.full((1, 1, 1, self.channels), 255.0, np.float32))
        both = np.concatenate([lo.ravel(), hi.ravel()])
        return float(both.min()), float(both.max())

    @property
    def layers(self) -> list[LayerInfo]:
        """Catalogue of the logits model's layers, input first."""

        def build() -> list[LayerInfo]:
            # The shape of each layer's output *in this model*: a layer of a flattened nested model was also called
            # in the model it came from, maybe at another size (a model of any input size saved inside a fixed-size
            # one), and then ``layer.output_shape`` is undefined.
            shapes: dict[str, Any] = {}
            for node in keras_compat.nodes_in_order(self.model):
                shapes.setdefault(node.layer.name, tf.nest.flatten(node.outputs)[0].shape)
            out = []
            for i, layer in enumerate(self.model.layers):
                shape = shapes[layer.name] if layer.name in shapes else layer.output_shape  # noqa: SIM401 (lazy)
                if isinstance(shape, list):  # InputLayer reports [(None, ...)]
                    shape = shape[0]
                dims = tuple(int(d) if d is not None else -1 for d in shape[1:])
                out.append(LayerInfo(layer.name, type(layer).__name__, i, dims))
            return out

        return self.cached("layers", build)

    def layer(self, name: str) -> LayerInfo:
        """The catalogue entry of ``name``; raises :class:`InvalidParameterError` for an unknown layer."""
        for info in self.layers:
            if info.name == name:
                return info
        raise InvalidParameterError(f"Model '{self.name}' has no layer named '{name}'.")

    @property
    def output_layer(self) -> LayerInfo:
        return self.layers[-1]

    def summary(self) -> str:
        """One compact Markdown line: name, input, parameters, layers, classes, preprocessing (and why it was
        chosen, marked when it is a guess), source; for an uploaded Keras file, what reading it did ("Keras 3.15.1
        file, converted: 177 layers, 25.6 M weights")."""
        why = self.info.get("preprocessing_reason")
        pre = f"preprocessing *{self.preprocessing.name}* ({self.preprocessing.description or 'custom'})"
        line = (f"**{self.name}** · input {'×'.join(map(str, self.input_shape))} · {self.num_params:,} parameters · "
                f"{len(self.layers)} layers · {self.num_classes} classes · {pre} · {self.source or 'unknown source'}")
        if self.info.get("load_report"):
            line += f"  \n{self.info['load_report']}"
        if why:
            guess = "⚠️ " if not self.info.get("preprocessing_certain", True) else ""
            line += f"  \n{guess}Preprocessing {why}"
        return line

    def spatial_layers(self) -> list[LayerInfo]:
        """Layers with an ``(H, W, C)`` output, H, W > 1 (not the input): Grad-CAM candidates."""
        return [layer for layer in self.layers if layer.spatial and not layer.is_input]

    # ------------------------------------------------------------------ forward passes
    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """Raw pixels ``(N, H, W, C)`` in [0, 255] at the model's input size → model input."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != self.input_shape:
            raise InvalidParameterError(
                f"Expected images of shape (N, {', '.join(map(str, self.input_shape))}) for model "
                f"'{self.name}', got {images.shape}. Resize with xai_core.data.images.fit_to_model first."
            )
        return self.preprocessing(images)

    def layer_output(self, layer: str | None) -> Any:
        """Output tensor of ``layer`` (``None`` = logits) in this bundle's model graph, unflattened.

        Looked up through the model's own nodes: after nested models were flattened a layer may have been
        called twice, and ``layer.output`` would be ambiguous.
        """
        if layer is None:
            return self.model.output

        def build() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for node in keras_compat.nodes_in_order(self.model):
                tensors = tf.nest.flatten(node.outputs)
                out[node.layer.name] = tensors[0]
            return out

        self.layer(layer)
        return self.cached("layer_outputs", build)[layer]

    def is_output_layer(self, layer: str | None) -> bool:
        return layer is None or layer == self.output_layer.name

    def layer_tensor(self, layer: str | None) -> Any:
        """Output tensor of ``layer`` (``None`` = logits), flattened to ``(N, units)``."""
        if self.is_output_layer(layer):
            return self.model.output

        def build() -> Any:
            t = self.layer_output(layer)
            return tf.reshape(t, (-1, int(np.prod(t.shape[1:])))) if len(t.shape) > 2 else t

        return self.cached(("layer_tensor", layer), build)

    def neuron_model(self, layer: str | None) -> Any:
        """Keras model from the input to ``layer``'s output, flattened to ``(N, units)`` (None = logits).

        iNNvestigate explains one output vector, so a neuron of an inner layer is explained by truncating the
        model there and selecting the neuron's flat index (``np.ravel_multi_index`` over the layer's shape).
        """
        if self.is_output_layer(layer):
            return self.model

        def build() -> Any:
            t = self.layer_output(layer)
            if len(t.shape) > 2:
                t = tf.keras.layers.Flatten(name=f"xai_flatten_{layer}")(t)
            return tf.keras.Model(self.model.inputs, t, name=f"{self.model.name}_to_{layer}")

        return self.cached(("neuron_model", layer), build)

    def canonical_model(self, layer: str | None, sum_rule: bool = False) -> Any:
        """:func:`~xai_core.models.canonize.canonize` of :meth:`neuron_model`: the same function without
        BatchNormalization layers (folded into the preceding layer, or element-wise affine), for relevance
        methods; ``sum_rule`` also makes ``Add`` layers kernel layers (Deep Taylor). Built once per layer; the
        user's model is untouched."""
        from xai_core.models.canonize import canonize

        layer = None if self.is_output_layer(layer) else layer
        return self.cached(("canonical", layer, sum_rule), lambda: canonize(self.neuron_model(layer), sum_rule))

    def run(self, fetches: Any, x: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE,
            feed: dict | None = None) -> Any:
        """``session.run(fetches)`` on model input ``x`` in batches; concatenates along axis 0.

        ``feed`` adds extra placeholder values; a value that is an array with ``len == len(x)`` is batched
        with ``x``, anything else is fed whole.
        """
        n = len(x)
        feed = feed or {}
        single = not isinstance(fetches, (list, tuple))
        outs: list[list[np.ndarray]] = []
        with self.scope():
            for start in range(0, max(n, 1), batch_size):
                sl = slice(start, start + batch_size)
                fd = {self.model.input: x[sl]}
                for k, v in feed.items():
                    fd[k] = v[sl] if isinstance(v, np.ndarray) and v.ndim and len(v) == n else v
                res = self.session.run([fetches] if single else list(fetches), feed_dict=fd)
                outs.append(res)
        cols = [np.concatenate([o[i] for o in outs], axis=0) for i in range(len(outs[0]))]
        return cols[0] if single else cols

    def selected_tensor(self, layer: str | None) -> tuple[Any, Any]:
        """``(idx_placeholder, scores)``: ``scores[i] = flat_output(layer)[i, idx[i]]`` (None = logits)."""

        def build() -> tuple[Any, Any]:
            idx = tf.compat.v1.placeholder(tf.int32, (None,), name="xai_selected_idx")
            return idx, tf.gather(self.layer_tensor(layer), idx, axis=1, batch_dims=1)

        return self.cached(("selected", layer), build)

    def neuron_scores(self, x: np.ndarray, layer: str | None, indices: np.ndarray,
                      batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Value of neuron ``indices[i]`` of ``layer`` (None = logit) for each model input ``x[i]``."""
        indices = np.broadcast_to(np.asarray(indices, dtype=np.int32), (len(x),)).copy()
        if self.is_output_layer(layer):
            return np.take_along_axis(self.logits(x, batch_size), indices[:, None].astype(np.int64), axis=1)[:, 0]
        idx, scores = self.selected_tensor(layer)
        return self.run(scores, x, batch_size, feed={idx: indices})

    def logits(self, x: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Class scores before the head, for model input ``x``: ``(N, num_classes)``.

        The logits of the last few small inputs are kept, by content (:data:`FORWARD_MEMO`): explaining an image
        needs them for its target, the page for its prediction bars and the checks for the explained score, and
        on an ImageNet-size network each forward pass is a noticeable part of the first map."""
        key = _content_key(x) if len(x) <= FORWARD_MEMO_IMAGES else None
        if key is not None:
            hit = self._forward.get(key)
            if hit is not None:
                return hit.copy()
        out = np.asarray(self.run(self.model.output, x, batch_size))
        if key is not None:
            with self.lock:
                self._forward[key] = out.copy()
                while len(self._forward) > FORWARD_MEMO:
                    self._forward.popitem(last=False)
        return out

    def activations(self, x: np.ndarray, layer: str | None, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Flattened activations ``(N, units)`` of ``layer`` (``None`` = logits) for model input ``x``."""
        return self.run(self.layer_tensor(layer), x, batch_size)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Apply the model's own head to logits: softmax, sigmoid, or softmax for a logit head."""
        z = np.asarray(logits, dtype=np.float64)
        if self.head == "sigmoid":
            return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)

    def predict(self, images: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Probabilities ``(N, num_classes)`` for raw images ``(N, H, W, C)`` in [0, 255]."""
        return self.probabilities(self.logits(self.preprocess(images), batch_size))

    def close(self) -> None:
        """Free the graph and session (the only way to release analyzer memory)."""
        with self.lock:
            self._cache.clear()
            self._forward.clear()
            self.session.close()
