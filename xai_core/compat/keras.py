"""Every use of tf_keras's private API, in one place, written for tf_keras 2.21 (the Keras 2 API of TensorFlow 2.21).

:func:`install` (called once by :func:`xai_core.runtime.install`) checks the installed version and applies the two
process-wide changes below; everything else here is a function the engine calls where it needs Keras internals,
so that a Keras upgrade has one module to read. Nothing here runs on import.

Changes installed:

* ``base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION = True``: Keras wraps every raw TF op that iNNvestigate creates
  in a "TFOpLambda" layer and, by default, evaluates constant inputs of such layers through a fresh session callable
  each time, extending the graph again and again. Building a gradient analyzer for MobileNetV2 took > 5 minutes that
  way and 13 s with the switch on (shared STACK.md). It also fixes Integrated Gradients / SmoothGrad on BatchNorm
  models ("Cannot convert ... dtype([('resource', 'u1')])"). Its only documented downside is ``get_config`` of those
  op-layers, which analyzers never call.
* Two thread-aware hooks, consulted only inside :func:`no_op_layers` / :func:`stand_in_weights` blocks (per thread:
  each Streamlit script run is its own thread, so another session loading a model meanwhile is unaffected):
  ``base_layer_utils.needs_keras_history`` answers False (no op-layers around plain TF ops) and
  ``base_layer_v1.Layer.add_weight`` returns an unfed placeholder instead of a new variable.
"""

from __future__ import annotations

import collections
import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import metadata
from typing import Any

import numpy as np
import tensorflow as tf

#: The tf_keras release this module was written for (major.minor).
WRITTEN_FOR = "2.21"

_NO_OP_LAYERS: ContextVar[bool] = ContextVar("xai_lens_no_op_layers", default=False)
_STAND_IN_WEIGHTS: ContextVar[bool] = ContextVar("xai_lens_stand_in_weights", default=False)
_installed = False


class KerasVersionError(RuntimeError):
    """The installed Keras is not the one XAI Lens's changes to it were written for."""


def check_version() -> str:
    """The installed tf_keras version; :class:`KerasVersionError` unless it is :data:`WRITTEN_FOR` and is
    ``tf.keras``."""
    try:
        version = metadata.version("tf_keras")
    except metadata.PackageNotFoundError:
        raise KerasVersionError("tf_keras is not installed: install the locked environment (make run).") from None
    if not version.startswith(WRITTEN_FOR + "."):
        raise KerasVersionError(
            f"XAI Lens's changes to Keras (xai_core/compat/keras.py) are written for tf_keras {WRITTEN_FOR}.x; "
            f"tf_keras {version} is installed. Install the locked environment (make run), or review that module.")
    # tf.keras is a lazy loader (ask a class), and ``import tensorflow.keras.layers`` (as iNNvestigate does) is
    # resolved apart from it, once, when TensorFlow is imported: both must be tf_keras.
    packages = {tf.keras.layers.Layer.__module__.split(".")[0],
                importlib.import_module("tensorflow.keras.layers").Layer.__module__.split(".")[0]}
    if packages != {"tf_keras"}:
        raise KerasVersionError(
            f"tf.keras is {' and '.join(sorted(packages))}, not tf_keras: TensorFlow was imported before xai_core "
            "could set TF_USE_LEGACY_KERAS=1. Import xai_core first (or set TF_USE_LEGACY_KERAS=1 in the "
            "environment).")
    return version


def install() -> None:
    """Check the version and install the changes listed in the module docstring (once per process)."""
    global _installed
    check_version()
    if _installed:
        return
    from tf_keras.src.engine import base_layer_utils, base_layer_v1

    base_layer_utils._UNSAFE_GRAPH_OP_LAYER_CREATION = True
    needs_keras_history = base_layer_utils.needs_keras_history
    add_weight = base_layer_v1.Layer.add_weight

    def needs_keras_history_hook(*args: Any, **kwargs: Any) -> bool:
        return False if _NO_OP_LAYERS.get() else bool(needs_keras_history(*args, **kwargs))

    def add_weight_hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        return (_stand_in_weight if _STAND_IN_WEIGHTS.get() else add_weight)(self, *args, **kwargs)

    base_layer_utils.needs_keras_history = needs_keras_history_hook
    base_layer_v1.Layer.add_weight = add_weight_hook
    _installed = True


def installed() -> bool:
    return _installed


@contextmanager
def _flag(var: ContextVar[bool]) -> Iterator[None]:
    token = var.set(True)
    try:
        yield
    finally:
        var.reset(token)


@contextmanager
def no_op_layers() -> Iterator[None]:
    """In this thread, while the block runs: Keras calls on plain TensorFlow tensors wrap nothing into op-layers."""
    with _flag(_NO_OP_LAYERS):
        yield


@contextmanager
def stand_in_weights() -> Iterator[None]:
    """In this thread, while the block runs: a layer's ``add_weight`` gives an unfed placeholder (see
    :func:`_stand_in_weight`) instead of a new, randomly initialised variable."""
    with _flag(_STAND_IN_WEIGHTS):
        yield


def _stand_in_weight(layer: Any, name: str | None = None, shape: Any = None, dtype: Any = None,
                     trainable: bool | None = True, **_kwargs: Any) -> Any:
    """A placeholder in place of a new variable: one op, never fed or evaluated (a ``tf.zeros`` took three, 650 of
    the 5,900 ops of an α2β1 build on ResNet50)."""
    tensor = tf.compat.v1.placeholder(dtype or layer.dtype, shape, name=f"{name or 'weight'}_stand_in")
    (layer._trainable_weights if trainable is not False else layer._non_trainable_weights).append(tensor)
    return tensor


# ---------------------------------------------------------------------------------------------- graph structure
def is_graph_network(model: Any) -> bool:
    """True for Functional and Sequential models (whose layer graph can be walked)."""
    return bool(getattr(model, "_is_graph_network", False)) and hasattr(model, "_nodes_by_depth")


def nodes_in_order(model: Any) -> list[Any]:
    """The layer calls (Keras nodes) of a Functional/Sequential ``model`` in topological order, inputs first."""
    by_depth = model._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def keras_history(tensor: Any) -> tuple[Any, int, int]:
    """``(layer, node index, tensor index)`` that produced a Keras tensor."""
    layer, node_index, tensor_index = tensor._keras_history
    return layer, int(node_index), int(tensor_index)


def rename_layer(layer: Any, name: str) -> None:
    """Give ``layer`` a new name (Keras has no public setter)."""
    layer._name = name


def layer_variables(layer: Any) -> list[Any]:
    """A layer's own variables in the order Keras saves them (trainable, then non-trainable, as created; a frozen
    layer keeps this order, unlike ``layer.weights``)."""
    return [*layer._trainable_weights, *layer._non_trainable_weights]


def write_variables(session: Any, pairs: list[tuple[Any, np.ndarray]]) -> None:
    """Assign ``value`` to each ``variable`` with one ``session.run``, and tell Keras they are initialised.

    Not Keras' ``batch_set_value``: it first runs Keras' variable check over every variable of the graph and the
    random initializers of the new ones (about 0.5 s of a 2.3 s canonization of ResNet50), for values written over
    at once."""
    if not pairs:
        return
    ops, feed = [], {}
    for variable, value in pairs:
        placeholder = tf.compat.v1.placeholder(variable.dtype.base_dtype, shape=np.shape(value))
        ops.append(variable.assign(placeholder))
        feed[placeholder] = value
        variable._keras_initialized = True
    session.run(ops, feed_dict=feed)


_NUMBERED = re.compile(r"^(.*)_(\d+)$")


def reserve_layer_names(model: Any, nested: Any) -> None:
    """Make Keras' automatic layer names in the current graph skip every name ``model`` already uses.

    ``nested(layer)`` tells whether a layer is itself a model (its layers are reserved too). Keras numbers unnamed
    layers per graph (``input_1``, ``conv2d_3``) and never looks at the names of layers loaded from a file; both
    counters (``backend.get_uid`` for inputs, ``unique_object_name`` for other layers) are moved past every
    ``<prefix>`` / ``<prefix>_<n>`` in the model.
    """
    from tf_keras.src import backend

    uids = backend.PER_GRAPH_OBJECT_NAME_UIDS.setdefault(backend.get_graph(), collections.defaultdict(int))
    object_uids = backend.get_default_graph_uid_map()
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []) if nested(layer) else [])
        match = _NUMBERED.match(layer.name)
        prefix, number = (match.group(1), int(match.group(2))) if match else (layer.name, 0)
        uids[prefix] = max(uids[prefix], number)
        object_uids[("", prefix)] = max(object_uids[("", prefix)], number + 1)


def clear_name_counters() -> None:
    """Forget Keras' per-graph layer-name counters of the default graph (a test helper's fresh start)."""
    from tf_keras.src import backend

    backend.reset_uids()


# ---------------------------------------------------------------------------------------------- applications
def application_module(module: str) -> Any:
    """``tf_keras.src.applications.<module>``: the weight URLs and constants of a ``keras.applications`` family."""
    return importlib.import_module(f"tf_keras.src.applications.{module}")


def application_layers() -> dict[str, Any]:
    """Layer classes defined inside ``keras.applications`` (not exported as ``tf.keras.layers``): models fine-tuned
    from ConvNeXt or InceptionResNetV2 contain them. Keras' own code, so safe to resolve."""
    convnext, inception_resnet_v2 = application_module("convnext"), application_module("inception_resnet_v2")
    return {
        "StochasticDepth": convnext.StochasticDepth,
        "LayerScale": convnext.LayerScale,
        "CustomScaleLayer": inception_resnet_v2.CustomScaleLayer,
    }


@contextmanager
def safe_mode() -> Iterator[None]:
    """Keras' safe mode (no code from a file runs) for every loader, also the legacy ones that ignore
    ``safe_mode=True``, with the layer classes of ``keras.applications`` resolvable."""
    from tf_keras.src.saving import serialization_lib

    with serialization_lib.SafeModeScope(True), tf.keras.utils.custom_object_scope(application_layers()):
        yield


def saved_model_layer_configs(metadata_bytes: bytes) -> list[bytes]:
    """The JSON metadata of every object in a SavedModel's ``keras_metadata.pb`` (raises on a damaged file)."""
    from tf_keras.protobuf import saved_metadata_pb2

    parsed = saved_metadata_pb2.SavedMetadata()
    parsed.ParseFromString(metadata_bytes)
    return [node.metadata for node in parsed.nodes if node.metadata]
