"""Read Keras model files — ``.keras`` and ``.h5`` written by Keras 2.13–2.15, tf_keras ≥ 2.16 or Keras 3 — into the
engine's Keras 2 (tf_keras) model, with the file's exact weights. The file is read as data: its architecture from
JSON, its weights from HDF5; no code from the file ever runs, and no Keras 3 is needed.

Why not ``load_model``: tf_keras 2.21 cannot read the ``.keras`` files of Keras 2.14 ("Layer 'conv1' expected 2
variables, but received 0"), nor any file of Keras 3; and in graph mode ``load_model`` of a ``.keras`` file silently
returns fresh random weights (Keras restores each variable with an assign op nothing runs).

The architecture (``config.json`` of a ``.keras`` zip, ``model_config`` of an ``.h5``) is rewritten into the Keras 2
form (:func:`to_keras2`): Keras 3's node format, input specs, dtype policies and options Keras 2 lacks (each dropped
only at its neutral value; any other value refuses the file, naming the layer). What Keras 3 writes that tf_keras
would build differently or not at all becomes the built-in layers that compute the same (measured on real files,
tests/models/test_keras3_zoo.py): ``keras.ops`` arithmetic recorded in a functional model (``x * (1 / 255)``,
``a + b``; Keras 3's own ConvNeXt and MobileNetV3 do it) → ``Rescaling`` / ``Add`` …, as are tf_keras's
``TFOpLambda`` layers for the same arithmetic; Keras 3's ``hard_sigmoid`` (relu6(x + 3) / 6; tf_keras's namesake is
0.2 x + 0.5) and ``hard_silu`` → ``Rescaling`` → ``ReLU(max_value=1)`` (→ ``Multiply``), as tf_keras's own
MobileNetV3 builds them; LeakyReLU's ``negative_slope`` → ``alpha``. Custom layers, Lambda layers, Keras 3 layers
tf_keras lacks and other operations refuse the file with one message that names each layer and says what to do.

Layers are then built by tf_keras from that JSON in the current graph (:func:`build_model`), and every variable gets
the file's value, matched by layer: a ``.keras`` file stores them per layer under a key made of the layer's class
name (``conv2d``, ``conv2d_1`` … in layer order; Keras 3 also records the layer's name), an ``.h5`` file per
layer name. Every shape is checked; a weight that fits nowhere refuses the file.

Keras 3's augmentation layers that tf_keras lacks are built as the identity they are at inference; the others stay,
and :func:`xai_core.models.graph.flatten_nested` calls every augmentation layer with ``training=False``.
"""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
import tensorflow as tf

from xai_core.compat import keras as keras_compat
from xai_core.errors import ModelLoadError
from xai_core.models.graph import AUGMENTATION

#: Model classes whose config nests layers.
MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})
#: A model architecture (config.json) is kilobytes to a few megabytes; absurd sizes are refused unread.
MAX_CONFIG_BYTES = 64 * 1024**2
#: Weights are read from the file and written to the model in chunks of this size (peak memory of a load).
WRITE_CHUNK_BYTES = 64 * 1024**2
#: Keras 3 layer options Keras 2 does not have, and the value at which dropping them changes nothing.
_NEUTRAL: tuple[Any, ...] = (None, False, "channels_last", [], {})
#: Call arguments Keras 3 records that Keras 2 nodes need not carry.
_DROPPED_CALL_KWARGS = {"mask"}
#: Keras 3 activation names tf_keras spells differently.
_ACTIVATIONS = {"silu": "swish"}


@dataclass
class ModelFile:
    """A Keras model file, read but not built.

    Attributes
    ----------
    fmt : ``"keras"`` (v3 zip) or ``"h5"``.
    keras_version : the version that saved it (``metadata.json`` / the ``keras_version`` attribute), if recorded.
    config : the model's architecture as saved (``{"class_name", "config", ...}``).
    """

    fmt: str
    keras_version: str | None
    config: dict[str, Any]
    _h5: h5py.File
    _root: Any = None

    @property
    def keras3(self) -> bool:
        return bool(self.keras_version) and str(self.keras_version).split(".")[0] == "3"

    def close(self) -> None:
        self._h5.close()


@dataclass
class LoadReport:
    """What reading the file did, for the page: ``"Keras 3.15.1 file, converted: 177 layers, 25.6 M weights"``."""

    keras_version: str | None
    converted: bool
    layers: int = 0
    weights: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        origin = f"Keras {self.keras_version} file" if self.keras_version else "Keras file"
        verb = "converted" if self.converted else "read"
        text = f"{origin}, {verb}: {self.layers} layers, {_millions(self.weights)} weights"
        return "; ".join([text, *self.notes])


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 100_000 else f"{n:,}"


# ---------------------------------------------------------------------------------------------- reading
def open_model_file(data: bytes, filename: str, fmt: str) -> ModelFile:
    """Open the bytes of a ``.keras`` (``fmt="keras"``) or ``.h5`` (``fmt="h5"``) model file.

    Raises
    ------
    ModelLoadError
        Damaged file, no architecture, no weights, unreadable JSON.
    """
    try:
        if fmt == "keras":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
                missing = {"config.json", "model.weights.h5"} - names
                if missing:
                    raise ModelLoadError(f"'{filename}' is not a complete Keras model: it has no "
                                         f"{' or '.join(sorted(missing))}. Save it again with "
                                         "model.save('model.keras').")
                if zf.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                    raise ModelLoadError(f"'{filename}': its config.json is implausibly large; not a Keras model.")
                config = _json(zf.read("config.json"), "config.json", filename)
                meta = _json(zf.read("metadata.json"), "metadata.json", filename) if "metadata.json" in names else {}
                weights = zf.read("model.weights.h5")
            h5 = h5py.File(io.BytesIO(weights), "r")
            version = meta.get("keras_version") if isinstance(meta, dict) else None
            return ModelFile("keras", str(version) if version else None, config, h5)
        h5 = h5py.File(io.BytesIO(data), "r")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        what = "zip archive" if fmt == "keras" else "HDF5 file"
        raise ModelLoadError(f"'{filename}' is a damaged {what} ({exc}). Save the model again with "
                             "model.save('model.keras').") from exc
    raw = h5.attrs.get("model_config")
    if raw is None:
        what = ("only weights (saved with save_weights)" if "model_weights" in h5 or "layer_names" in h5.attrs
                else "no Keras model")
        h5.close()
        raise ModelLoadError(f"'{filename}' holds {what}, not a model architecture. Save the whole model with "
                             "model.save('model.keras') or model.save('model.h5').")
    config = _json(raw.decode("utf-8") if isinstance(raw, bytes) else raw, "model_config", filename)
    version = h5.attrs.get("keras_version")
    version = version.decode() if isinstance(version, bytes) else version
    root = h5.get("model_weights", h5)
    return ModelFile("h5", str(version) if version else None, config, h5, root)


def _json(raw: bytes | str, what: str, filename: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"'{filename}': its {what} is not readable JSON ({exc}).") from exc


# ---------------------------------------------------------------------------------------------- config
#: Keras 3 layers that tf_keras has no class for and that change images at inference (the augmentation layers
#: tf_keras lacks are the identity there, see :data:`~xai_core.models.graph.AUGMENTATION`).
KERAS3_ONLY = frozenset({
    "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D", "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D", "AutoContrast", "ContrastLimitedAdaptiveHistogramEqualization",
    "MaxNumBoundingBoxes", "MelSpectrogram", "RMSNormalization", "ReversibleEmbedding", "STFTSpectrogram",
})
#: Layers tf_keras writes into Keras 2 files for TensorFlow operations (its own, so safe to build).
_KERAS2_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"})
#: Keras 3 layer options under another name in Keras 2.
_RENAMED = {("LeakyReLU", "negative_slope"): "alpha"}
#: Keras 3 layer options Keras 2 lacks that only matter when another option is set (then the file is refused).
_ONLY_WITH = {("Resizing", "fill_mode"): "pad_to_aspect_ratio", ("Resizing", "fill_value"): "pad_to_aspect_ratio"}
#: Keras 3 operations (``keras.ops``) of two tensors, and the Keras 2 merge layer that computes the same.
_TENSOR_OPS = {"Add": "Add", "Subtract": "Subtract", "Multiply": "Multiply", "Maximum": "Maximum",
               "Minimum": "Minimum"}
#: Keras 3 operations of a tensor and a number ``c`` (``first``: the number is the first argument), as ``(scale,
#: offset)`` of an exact Keras 2 ``Rescaling`` (``x * scale + offset``; for ``x + c``, ``x * 1`` is exact).
_NUMBER_OPS = {
    "Add": lambda c, first: (1.0, c),
    "Subtract": lambda c, first: (-1.0, c) if first else (1.0, -c),
    "Multiply": lambda c, first: (c, 0.0),
}


class _Conversion:
    """State of one :func:`to_keras2` call: shared dtype policies, notes, and what refuses the file, by kind."""

    def __init__(self, keras3: bool) -> None:
        self.keras3 = keras3
        self.policies: dict[Any, str] = {}
        self.notes: set[str] = set()
        self.custom: list[str] = []  # "'my_scale' (MyScale)"
        self.keras3_only: list[str] = []
        self.operations: list[str] = []  # "'mean' (keras.ops.mean)"
        self.refusals: list[str] = []  # options and call patterns Keras 2 cannot express

    def message(self) -> str | None:
        parts = []
        if self.custom:
            parts.append(f"It contains custom layers ({_listing(self.custom)}): their code lives in your program, "
                         "not in the file, and XAI Lens never runs code from a file. Rebuild the model from "
                         "built-in keras.layers (a fixed scaling, for example, is keras.layers.Rescaling), copy "
                         "the trained weights over with set_weights(), and save it again.")
        if self.operations:
            parts.append(f"It computes with Keras operations outside layers ({_listing(self.operations)}); XAI "
                         "Lens explains models made of layers. Write these steps with keras.layers (e.g. "
                         "GlobalAveragePooling2D instead of keras.ops.mean over height and width; Add, Multiply, "
                         "Rescaling for arithmetic) and save the model again.")
        if self.keras3_only:
            parts.append(f"It uses Keras 3 layers that the Keras 2 engine of XAI Lens does not have "
                         f"({_listing(self.keras3_only)}), so it cannot be explained here.")
        if self.refusals:
            parts.append(f"Keras 2 cannot express: {_listing(self.refusals)}.")
        return " ".join(parts) or None


def _listing(items: list[str], limit: int = 6) -> str:
    unique = list(dict.fromkeys(items))
    shown = ", ".join(unique[:limit])
    return shown + (f" and {len(unique) - limit} more" if len(unique) > limit else "")


def to_keras2(config: dict[str, Any], keras3: bool, filename: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The Keras 2 (tf_keras, legacy-JSON) form of a saved model architecture (``keras3``: saved by Keras 3, whose
    layer options are checked against what tf_keras takes; a Keras 2 file's are tf_keras's own).

    Returns
    -------
    (config, notes)
        ``notes``: what the user should know (mixed precision run in float32, augmentation layers at inference).

    Raises
    ------
    ModelLoadError
        For custom layers, Keras 3 layers tf_keras lacks, ``keras.ops`` calls without a Keras 2 layer that computes
        the same, layer options or call patterns Keras 2 cannot express: one message naming each layer, with what
        to do where there is something to do.
    """
    state = _Conversion(keras3)
    out = _model_entry(copy.deepcopy(config), state)
    message = state.message()
    if message:
        raise ModelLoadError(f"{repr(filename) if filename else 'The model'} cannot be loaded as saved. {message}")
    return out, sorted(state.notes)


def _model_entry(entry: dict[str, Any], state: _Conversion) -> dict[str, Any]:
    cls = entry.get("class_name")
    cfg = entry.get("config") or {}
    if cls not in MODEL_CLASSES:
        state.refusals.append(f"the file's top level is a {cls}, not a Functional or Sequential model")
        return entry
    if cls == "Model":
        cls = "Functional"
    layers = [_layer_entry(layer, state, sequential=cls == "Sequential") for layer in cfg.get("layers", [])]
    new: dict[str, Any] = {"name": cfg.get("name"), "layers": layers}
    if cls == "Functional":
        new["input_layers"] = _endpoints(cfg.get("input_layers"))
        new["output_layers"] = _endpoints(cfg.get("output_layers"))
        keras3_nodes = any(isinstance(node, dict) for layer in cfg.get("layers", [])
                           for node in layer.get("inbound_nodes", []))
        if keras3_nodes:
            _shift_nested_node_indices(new, cfg.get("layers", []))
    if state.keras3 and any(_hard(layer) for layer in layers):
        if cls == "Sequential" and any(_hard(layer) not in (None, "hard_sigmoid") for layer in layers):
            cls = _sequential_as_functional(new, state)  # hard SiLU branches: not a sequence of layers
        _expand_hard_activations(new, cls == "Sequential", state)
    if "build_input_shape" in cfg:
        new["build_input_shape"] = cfg["build_input_shape"]
    return {"class_name": cls, "config": new}


def _endpoints(spec: Any) -> Any:
    """Keras 3 writes one input/output as ``[name, 0, 0]``; Keras 2 as ``[[name, 0, 0]]``."""
    if isinstance(spec, list) and spec and isinstance(spec[0], str):
        return [spec]
    return spec


def _layer_entry(entry: dict[str, Any], state: _Conversion, sequential: bool) -> dict[str, Any]:
    cls = str(entry.get("class_name"))
    if cls in MODEL_CLASSES:
        out = dict(_model_entry(entry, state))
    else:
        cfg: dict[str, Any] = entry["config"] if isinstance(entry.get("config"), dict) else {}
        name = str(cfg.get("name") or entry.get("name"))
        shown = cls.split(">")[-1]
        if cls == "Lambda":
            state.refusals.append(f"'{name}' is a Lambda layer, which holds Python code; XAI Lens never runs code "
                                  "from a file (use built-in layers such as Rescaling, Activation or Reshape)")
            return entry
        if is_operation(entry, state.keras3):
            translated = _operation(entry, cls, name, state)
            if translated is None:
                return entry
            return {**translated, "name": name}
        if cls == "TFOpLambda":
            refused = len(state.operations)
            translated = _tf_op_layer(entry, name, state)
            if translated is not None:
                return translated
            if len(state.operations) > refused:
                return entry
        if _is_custom(entry):
            state.custom.append(f"'{name}' ({shown})")
            return entry
        if cls == "Pipeline":  # Keras 3: a list of layers; the identity at inference if all are augmentation
            inner = [str(e.get("class_name")) for e in cfg.get("layers", []) if isinstance(e, dict)]
            if any(c not in AUGMENTATION for c in inner):
                state.keras3_only.append(f"'{name}' (Pipeline of {', '.join(inner)})")
                return entry
            out = {"class_name": "Activation", "config": {"name": name, "activation": "linear", "dtype": "float32"}}
            state.notes.add("augmentation layers run as at inference (no random changes)")
        elif cls in KERAS3_ONLY or not _known(cls):
            (state.keras3_only if cls in KERAS3_ONLY else state.custom).append(f"'{name}' ({shown})")
            return entry
        else:
            out = {"class_name": cls, "config": _layer_config(cls, cfg, name, state)}
            if cls in AUGMENTATION and not hasattr(tf.keras.layers, cls):
                out = {"class_name": "Activation",
                       "config": {"name": name, "activation": "linear", "dtype": "float32"}}
    if cls in AUGMENTATION:
        state.notes.add("augmentation layers run as at inference (no random changes)")
    if not sequential:
        out["name"] = entry.get("name") or out["config"].get("name")
        out["inbound_nodes"] = _nodes(entry.get("inbound_nodes", []), cls, out["name"], state)
    return out


def _known(cls: str) -> bool:
    """A layer class tf_keras (or its ``keras.applications``) can build, or an augmentation layer."""
    return ((cls[:1].isupper() and hasattr(tf.keras.layers, cls)) or cls in keras_compat.application_layers()
            or cls in AUGMENTATION or cls in _KERAS2_OP_LAYERS)


def _is_custom(entry: dict[str, Any]) -> bool:
    """Saved from the user's own class: registered as ``package>Name``, or defined outside Keras."""
    module = entry.get("module")
    registered = str(entry.get("registered_name") or "")
    return (">" in str(entry.get("class_name")) or ">" in registered
            or (isinstance(module, str) and not module.startswith(("keras.", "tf_keras.")) and module != "keras"))


def is_operation(entry: dict[str, Any], keras3: bool) -> bool:
    """A Keras 3 ``keras.ops`` call recorded in a functional model (``x + y``, ``keras.ops.mean(x)``): module
    ``keras.src.ops.*`` in a ``.keras`` file; in a Keras 3 ``.h5``, which records no module, a config without the
    ``trainable`` and ``dtype`` every Keras 3 layer has."""
    if str(entry.get("module") or "").startswith("keras.src.ops"):
        return True
    cfg = entry.get("config")
    return (keras3 and "module" not in entry and isinstance(cfg, dict) and "trainable" not in cfg
            and "dtype" not in cfg and entry.get("class_name") not in ("InputLayer", *MODEL_CLASSES))


def _operation(entry: dict[str, Any], cls: str, name: str, state: _Conversion) -> dict[str, Any] | None:
    """The Keras 2 layer computing what a Keras 3 operation computes: a merge layer for two tensors, an exact
    ``Rescaling`` for a tensor and a number; None (and a refusal naming it) for any other operation."""
    translated: dict[str, Any] | None = None
    nodes = []
    for node in entry.get("inbound_nodes", []):
        args = node.get("args", []) if isinstance(node, dict) else []
        kwargs = node.get("kwargs") if isinstance(node, dict) else None
        tensors = [a["config"]["keras_history"] if _is_keras_tensor(a) else None for a in args]
        layer: dict[str, Any] | None = None
        if kwargs or len(args) != 2:
            layer = None
        elif all(tensors) and cls in _TENSOR_OPS:
            layer = {"class_name": _TENSOR_OPS[cls], "config": {"name": name, "dtype": "float32"}}
        elif cls in _NUMBER_OPS and sum(t is not None for t in tensors) == 1:
            number = args[1] if tensors[0] is not None else args[0]
            if isinstance(number, int | float) and not isinstance(number, bool):
                scale, offset = _NUMBER_OPS[cls](float(number), tensors[0] is None)
                layer = {"class_name": "Rescaling",
                         "config": {"name": name, "dtype": "float32", "scale": scale, "offset": offset}}
        if layer is None or (translated is not None and layer != translated):
            state.operations.append(f"'{name}' (keras.ops.{_snake(cls)})")
            return None
        translated = layer
        nodes.append([[*t, {}] for t in tensors if t is not None])
    if translated is None:
        state.operations.append(f"'{name}' (keras.ops.{_snake(cls)})")
        return None
    return {**translated, "inbound_nodes": nodes}


#: TensorFlow functions tf_keras records as ``TFOpLambda`` layers when a model does arithmetic with Python operators
#: (``x * (1 / 255)``, ``1.0 - x``, ``a + b``): as the exact layer computing them, a merge layer for two tensors or
#: ``(scale, offset)`` of a ``Rescaling`` for a tensor and a number ``c`` (``first``: the number comes first).
_TF_TENSOR_OPS = {"math.add": "Add", "__operators__.add": "Add", "math.subtract": "Subtract",
                  "math.multiply": "Multiply"}
_TF_NUMBER_OPS = {
    "math.add": _NUMBER_OPS["Add"], "__operators__.add": _NUMBER_OPS["Add"],
    "math.subtract": _NUMBER_OPS["Subtract"], "math.multiply": _NUMBER_OPS["Multiply"],
}


def _flat_op_node(node: Any) -> list[Any]:
    """tf_keras writes a TFOpLambda call as one flat ``[layer, node, tensor, kwargs]`` (a number as first argument:
    ``["_CONSTANT_VALUE", -1, number, kwargs]``), or nested in a list."""
    if isinstance(node, list) and len(node) == 1 and isinstance(node[0], list):
        node = node[0]
    return node if isinstance(node, list) else []


def _tf_op_layer(entry: dict[str, Any], name: str, state: _Conversion) -> dict[str, Any] | None:
    """A tf_keras ``TFOpLambda`` doing arithmetic, as the layer that computes the same exactly (explanation methods
    have rules for Add and Rescaling, not for a TensorFlow function); None to keep it as it is. One whose first
    argument is a number (``1.0 - x``) cannot be kept: tf_keras cannot rebuild it in graph mode ("'SymbolicTensor'
    object has no attribute '_keras_history'"), so without such a layer it is refused, named."""
    function = str((entry.get("config") or {}).get("function"))
    translated: dict[str, Any] | None = None
    nodes = []
    constant_first = False
    for node in entry.get("inbound_nodes", []):
        item = _flat_op_node(node)
        kwargs = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
        constant_first |= item[:1] == ["_CONSTANT_VALUE"]
        first: Any = item[2] if item[:1] == ["_CONSTANT_VALUE"] else (item[:3] if len(item) >= 3 else None)
        second: Any = kwargs.get("y")
        layer: dict[str, Any] | None = None
        if set(kwargs) - {"y", "name"} or first is None:
            layer = None
        elif _is_ref(first) and _is_ref(second) and function in _TF_TENSOR_OPS:
            layer = {"class_name": _TF_TENSOR_OPS[function], "config": {"name": name, "dtype": "float32"}}
            nodes.append([[*first, {}], [*second, {}]])
        elif function in _TF_NUMBER_OPS and (_is_ref(first) != _is_ref(second)):
            number, tensor = (second, list(first)) if _is_ref(first) else (first, list(second))
            if isinstance(number, int | float) and not isinstance(number, bool):
                scale, offset = _TF_NUMBER_OPS[function](float(number), not _is_ref(first))
                layer = {"class_name": "Rescaling",
                         "config": {"name": name, "dtype": "float32", "scale": scale, "offset": offset}}
                nodes.append([[*tensor, {}]])
        if layer is None or (translated is not None and layer != translated):
            translated = None
            break
        translated = layer
    if translated is not None:
        return {**translated, "name": name, "inbound_nodes": nodes}
    if constant_first:
        state.operations.append(f"'{name}' (tf.{function} of a number and a tensor)")
    return None


def _is_ref(value: Any) -> bool:
    """A Keras 2 reference to a tensor: ``[layer name, node index, tensor index]``."""
    return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and value[0] != "_CONSTANT_VALUE"


def _is_keras_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _layer_config(cls: str, cfg: dict[str, Any], name: str, state: _Conversion) -> dict[str, Any]:
    layer_cls = getattr(tf.keras.layers, cls, None) or keras_compat.application_layers().get(cls)
    accepted = _accepted_arguments(layer_cls) if state.keras3 else None
    new: dict[str, Any] = {}
    for key, value in cfg.items():
        if key == "batch_shape":  # Keras 3 InputLayer
            key = "batch_input_shape"
        key = _RENAMED.get((cls, key), key)
        if key == "dtype":
            value = _dtype(value, state)
        elif key.endswith(("_initializer", "_regularizer", "_constraint")) or key == "activity_regularizer":
            # Training-time only; the weights come from the file. Keras 3 adds options (input_axes …) Keras 2 lacks.
            continue
        elif key == "activation" or key == "recurrent_activation":
            value = _activation(value, name, state)
        if accepted is not None and key not in accepted:
            # Keras 3 options Keras 2 lacks: dropped where they change nothing (a neutral value, an option of an
            # augmentation layer, which is the identity at inference, one that only acts with another set)
            condition = _ONLY_WITH.get((cls, key))
            if not (_neutral(value) or cls in AUGMENTATION or (condition and not cfg.get(condition))):
                state.refusals.append(f"layer '{name}' ({cls}) sets {key}={value!r}, which Keras 2 does not have")
            continue
        new[key] = value
    return new


def _accepted_arguments(layer_cls: Any) -> set[str] | None:
    """Every keyword ``layer_cls`` takes: its own and those its base classes take through ``**kwargs``
    (BatchNormalization's ``renorm`` …, the random layers' ``rng_type``), and the base Layer's."""
    if layer_cls is None:
        return None
    import inspect

    names = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape", "batch_input_shape", "batch_size",
             "weights", "autocast", "implementation"}
    for cls in layer_cls.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None or cls is object:
            continue
        params = inspect.signature(init).parameters
        names |= {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return names


def _neutral(value: Any) -> bool:
    return any(value is n or (type(value) is type(n) and value == n) for n in _NEUTRAL)


def _dtype(value: Any, state: _Conversion) -> Any:
    """A dtype (policy) as Keras 2 writes it; mixed-precision models run in float32."""
    if isinstance(value, dict):
        ref = value.get("shared_object_id")
        name = (value.get("config") or {}).get("name") if isinstance(value.get("config"), dict) else None
        if name is None and ref in state.policies:
            name = state.policies[ref]
        if ref is not None and name is not None:
            state.policies[ref] = name
        value = name or "float32"
    if isinstance(value, str) and value.startswith("mixed_"):
        state.notes.add(f"saved with mixed precision ({value}): runs in float32")
        return "float32"
    return value


def _activation(value: Any, layer: str, state: _Conversion) -> Any:
    if isinstance(value, dict):  # Keras 3 serialises built-ins as names; a dict is a custom function
        inner = value.get("config")
        if value.get("class_name") == "function" and isinstance(inner, str) and value.get("module") in (
                "keras.activations", "keras.src.activations", "builtins"):
            value = inner
        else:
            state.refusals.append(f"layer '{layer}' uses a custom activation function ({value.get('config')!r})")
            return value
    if isinstance(value, str) and value in _ACTIVATIONS:
        return _ACTIVATIONS[value]
    if state.keras3 and isinstance(value, str) and value not in _HARD:
        try:
            tf.keras.activations.get(value)
        except ValueError:
            state.refusals.append(f"layer '{layer}' uses activation '{value}', which Keras 2 does not have")
    return value


def _nodes(nodes: list[Any], cls: str, name: str, state: _Conversion) -> list[Any]:
    """Keras 2 inbound nodes (``[[[layer, node, tensor, kwargs], …]]``) from either version's form."""
    out = []
    for node in nodes:
        if isinstance(node, list):  # Keras 2 already
            out.append(node)
            continue
        args, kwargs = node.get("args", []), dict(node.get("kwargs") or {})
        tensors = list(_keras_tensors(args))
        if len(tensors) != _count_leaves(args):
            state.refusals.append(f"layer '{name}' is called with arguments other than tensors")
            continue
        if any(_keras_tensors(v) for v in kwargs.values() if isinstance(v, dict | list)):
            state.refusals.append(f"layer '{name}' is called with tensors as keyword arguments")
            continue
        kwargs = {k: v for k, v in kwargs.items() if k not in _DROPPED_CALL_KWARGS}
        out.append([[*history, kwargs] for history in tensors])
    return out


def _keras_tensors(value: Any) -> Iterator[list[Any]]:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            yield list(value["config"]["keras_history"])
    elif isinstance(value, list):
        for v in value:
            yield from _keras_tensors(v)


def _count_leaves(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count_leaves(v) for v in value)
    return 1


def _sequential_as_functional(model_cfg: dict[str, Any], state: _Conversion) -> str:
    """Give a (converted) Sequential config the form of the Functional model it is: each layer called on the one
    before. Returns the new class name (still ``Sequential`` if it has no InputLayer to start from)."""
    layers = model_cfg["layers"]
    if not layers or layers[0].get("class_name") != "InputLayer":
        state.refusals.append(f"Sequential model '{model_cfg.get('name')}' without an Input uses hard SiLU")
        return "Sequential"
    previous = None
    for layer in layers:
        name = layer["config"]["name"]
        layer["name"] = name
        layer["inbound_nodes"] = [] if previous is None else [[[previous, 0, 0, {}]]]
        previous = name
    model_cfg["input_layers"] = [[layers[0]["config"]["name"], 0, 0]]
    model_cfg["output_layers"] = [[previous, 0, 0]]
    model_cfg.pop("build_input_shape", None)
    return "Functional"


def _shift_nested_node_indices(model_cfg: dict[str, Any], saved_layers: list[dict[str, Any]]) -> None:
    """Keras 2 numbers the calls of a nested model from 1 (call 0 is the one that built it from its Input), in
    inbound nodes and in ``output_layers``. Keras 3 numbers them from 0 in inbound nodes, and in ``output_layers``
    from 1 for a Functional, from 0 for a Sequential (its ``get_config`` and ``functional_from_config``, Keras 3.15):
    those references are shifted by one."""
    nested = {str(layer.get("name")): layer["class_name"] for layer in saved_layers  # the classes as saved
              if layer.get("class_name") in ("Functional", "Sequential") and _starts_with_input(layer)}
    if not nested:
        return
    for layer in model_cfg["layers"]:
        for node in layer.get("inbound_nodes", []):
            for item in node:
                if item[0] in nested:
                    item[1] += 1
    for item in model_cfg["output_layers"]:
        if nested.get(item[0]) == "Sequential":
            item[1] += 1


def _starts_with_input(layer: dict[str, Any]) -> bool:
    layers = layer.get("config", {}).get("layers", [])
    return bool(layers) and layers[0].get("class_name") == "InputLayer"


#: Keras 3 activations whose Keras 2 namesake computes something else (Keras 3's ``hard_sigmoid`` is
#: relu6(x + 3) / 6, tf_keras's clip(0.2 x + 0.5, 0, 1)) or that tf_keras lacks, written as built-in layers.
_HARD = frozenset({"hard_sigmoid", "hard_silu", "hard_swish"})


def _expand_hard_activations(model_cfg: dict[str, Any], sequential: bool, state: _Conversion) -> None:
    """Replace Keras 3's hard sigmoid / hard SiLU by the layers that compute them in tf_keras, as tf_keras's own
    MobileNetV3 does: hard_sigmoid(x) = ReLU(max_value=1)(Rescaling(1/6, offset=0.5)(x)), hard_silu(x) =
    Multiply([x, hard_sigmoid(x)]). An ``Activation`` layer becomes that chain under its own name; a layer with
    the activation built in computes linearly and the chain follows it (references to it are moved to the chain).
    """
    layers: list[dict[str, Any]] = model_cfg["layers"]
    taken = {str(layer.get("name") or layer["config"].get("name")) for layer in layers}
    out: list[dict[str, Any]] = []
    moved: dict[str, str] = {}
    for layer in layers:
        act = _hard(layer)
        if act is None or (sequential and act != "hard_sigmoid"):  # the latter refused by the caller
            out.append(layer)
            continue
        name = str(layer.get("name") or layer["config"]["name"])
        is_activation = layer["class_name"] == "Activation"
        final = name if is_activation else _unique(f"{name}_{act}", taken)
        chain = _hard_chain(act, name, final, taken, None if sequential else layer.get("inbound_nodes", []),
                            source=None if is_activation else name)
        if not is_activation:
            layer["config"]["activation"] = "linear"
            out.append(layer)
            moved[name] = final
        out.extend(chain)
    if moved and not sequential:
        chain_firsts = {id(layer) for layer in out if layer.get("_first_of_chain")}
        for layer in out:
            if id(layer) in chain_firsts:
                continue
            for node in layer.get("inbound_nodes", []):
                for item in node:
                    item[0] = moved.get(item[0], item[0])
        for item in model_cfg.get("output_layers", []):
            item[0] = moved.get(item[0], item[0])
    for layer in out:
        layer.pop("_first_of_chain", None)
    model_cfg["layers"] = out


def _hard(layer: dict[str, Any]) -> str | None:
    act = (layer.get("config") or {}).get("activation")
    return act if isinstance(act, str) and act in _HARD else None


def _hard_chain(act: str, name: str, final: str, taken: set[str], inbound: list[Any] | None,
                source: str | None) -> list[dict[str, Any]]:
    """The layers computing ``act`` on the input of layer ``name`` (``source``: on the output of that layer
    instead); the last is named ``final``. ``inbound``: the layer's Keras 2 inbound nodes (None in a Sequential)."""
    affine = _unique(f"{name}_hard_sigmoid_affine", taken)
    clip = final if act == "hard_sigmoid" else _unique(f"{name}_hard_sigmoid", taken)

    def layer(cls: str, layer_name: str, config: dict[str, Any], inputs: list[Any] | None) -> dict[str, Any]:
        entry: dict[str, Any] = {"class_name": cls, "config": {"name": layer_name, "dtype": "float32", **config}}
        if inputs is not None:
            entry["name"] = layer_name
            entry["inbound_nodes"] = inputs
        return entry

    if inbound is None:
        return [layer("Rescaling", affine, {"scale": 1 / 6, "offset": 0.5}, None),
                layer("ReLU", clip, {"max_value": 1.0}, None)]
    sources = [[[source, k, 0, {}]] for k in range(len(inbound))] if source else copy.deepcopy(inbound)
    chain = [layer("Rescaling", affine, {"scale": 1 / 6, "offset": 0.5}, copy.deepcopy(sources)),
             layer("ReLU", clip, {"max_value": 1.0}, [[[affine, k, 0, {}]] for k in range(len(sources))])]
    if act != "hard_sigmoid":
        chain.append(layer("Multiply", final, {}, [[*node, [clip, k, 0, {}]] for k, node in enumerate(sources)]))
    if source:  # these read the layer's own output: not moved to the chain's end
        chain[0]["_first_of_chain"] = True
        if len(chain) == 3:
            chain[2]["_first_of_chain"] = True
    return chain


def _unique(name: str, taken: set[str]) -> str:
    candidate, k = name, 1
    while candidate in taken:
        k += 1
        candidate = f"{name}_{k}"
    taken.add(candidate)
    return candidate


# ---------------------------------------------------------------------------------------------- building
def build_model(file: ModelFile, filename: str) -> tuple[Any, LoadReport]:
    """Build ``file``'s model in the current (graph-mode) default graph and session, with its weights.

    Must run inside the target graph and session (e.g. as a :meth:`ModelBundle.create` factory).
    """
    config, notes = to_keras2(file.config, file.keras3, filename)
    with keras_compat.safe_mode():
        try:
            model = tf.keras.layers.deserialize(config, use_legacy_format=True)
        except ModelLoadError:
            raise
        except Exception as exc:
            raise ModelLoadError(f"'{filename}': Keras could not build the model from its architecture: "
                                 f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc) else ''}"
                                 ) from exc
    pairs = _weight_pairs(file, model, filename)
    session = tf.compat.v1.get_default_session()
    for chunk in _chunks(pairs, WRITE_CHUNK_BYTES):  # read from the file as written: never every weight at once
        keras_compat.write_variables(session, [(variable, np.asarray(stored[()], dtype=variable.dtype.base_dtype
                                                                     .as_numpy_dtype)) for variable, stored in chunk])
    report = LoadReport(file.keras_version, file.keras3, layers=_count_layers(model),
                        weights=int(sum(np.prod(v.shape) for v in model.weights)), notes=notes)
    return model, report


def _chunks(pairs: list[tuple[Any, Any]], limit: int) -> Iterator[list[tuple[Any, Any]]]:
    chunk: list[tuple[Any, Any]] = []
    size = 0
    for variable, stored in pairs:
        chunk.append((variable, stored))
        size += int(np.prod(stored.shape)) * 4
        if size >= limit:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _count_layers(model: Any) -> int:
    return sum(_count_layers(layer) if isinstance(layer, tf.keras.Model) else 1 for layer in model.layers)


def _weight_pairs(file: ModelFile, model: Any, filename: str) -> list[tuple[Any, np.ndarray]]:
    pairs: list[tuple[Any, np.ndarray]] = []
    problems: list[str] = []
    if file.fmt == "keras":
        _keras_level(file._h5, model, file.config, pairs, problems, path="", keras3=file.keras3)
    else:
        _h5_level(file._root, model, pairs, problems)
    if problems:
        raise ModelLoadError(f"'{filename}': its weights do not fit its architecture ({'; '.join(problems[:5])}).")
    return pairs


def _snake(name: str) -> str:
    inter = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    snake = re.sub("([a-z])([A-Z])", r"\1_\2", inter).lower()
    return snake if snake[0] != "_" else "private" + snake


def _children(group: Any) -> Any:
    """The group holding a model's layers: ``layers`` (tf_keras ≥ 2.16, Keras 3) or Keras 2.13–2.15's name."""
    for key in ("layers", "_layer_checkpoint_dependencies"):
        if key in group:
            return group[key]
    return None


def _keras_level(group: Any, model: Any, config: dict[str, Any], pairs: list[Any], problems: list[str],
                 path: str, keras3: bool) -> None:
    """Match one model level of a ``.keras`` weights file (``config``: that level's entry as saved): each layer's
    group is ``<snake_case class>[_n]`` in layer order (Keras 3 also writes the layer's name on it, preferred)."""
    children = _children(group)
    entries = config["config"]["layers"]
    by_name: dict[str, str] = {}
    counters: dict[str, int] = {}
    keys: dict[str, str] = {}
    if children is not None:
        for key in children:
            vars_group = children[key].get("vars") if isinstance(children[key], h5py.Group) else None
            saved = vars_group.attrs.get("name") if vars_group is not None else None
            if saved is not None:
                by_name[saved.decode() if isinstance(saved, bytes) else str(saved)] = key
    for entry in entries:
        if is_operation(entry, keras3):
            continue  # a keras.ops call: not a layer, no weights group
        base = _snake(str(entry["class_name"]))
        n = counters.get(base, 0)
        counters[base] = n + 1
        keys[_entry_name(entry)] = by_name.get(_entry_name(entry), base if n == 0 else f"{base}_{n}")
    for entry in entries:
        name = _entry_name(entry)
        if entry["class_name"] == "InputLayer" or is_operation(entry, keras3):
            continue
        layer = model.get_layer(name)
        where = f"{path}{name}"
        sub = children[keys[name]] if children is not None and keys[name] in children else None
        if entry["class_name"] in MODEL_CLASSES:
            if sub is None:
                if layer.weights:
                    problems.append(f"no weights stored for nested model '{where}'")
                continue
            _keras_level(sub, layer, entry, pairs, problems, path=f"{where}/", keras3=keras3)
            continue
        variables = keras_compat.layer_variables(layer)
        if not variables:
            continue
        stored = sub["vars"] if sub is not None and "vars" in sub else None
        values = [stored[str(i)] for i in range(len(stored))] if stored is not None else []
        _pair(layer, where, variables, values, pairs, problems)


def _entry_name(entry: dict[str, Any]) -> str:
    return str(entry.get("name") or entry["config"]["name"])


def _pair(layer: Any, where: str, variables: list[Any], values: list[h5py.Dataset], pairs: list[Any],
          problems: list[str]) -> None:
    if len(values) != len(variables):
        problems.append(f"layer '{where}' has {len(variables)} weights, the file {len(values)}")
        return
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != tuple(value.shape):
            problems.append(f"layer '{where}': {variable.name.split('/')[-1].split(':')[0]} has shape "
                            f"{tuple(variable.shape)}, the file {tuple(value.shape)}")
            return
        pairs.append((variable, value))


def _h5_level(root: Any, model: Any, pairs: list[Any], problems: list[str]) -> None:
    """Match an ``.h5`` file: a group per top-level layer name, listing its weights (``weight_names``); a nested
    model's group lists every weight of its layers, as ``<layer>/<weight>``."""
    for layer in model.layers:
        group = root.get(layer.name)
        if isinstance(layer, tf.keras.Model):
            for inner, variables in _inner_layers(layer):
                values = _h5_values(group, inner.name, [_short(v.name) for v in variables]) if group else []
                _pair(inner, f"{layer.name}/{inner.name}", variables, values, pairs, problems)
            continue
        variables = keras_compat.layer_variables(layer)
        if not variables:
            continue
        values = _h5_values(group, None, [_short(v.name) for v in variables]) if group is not None else []
        _pair(layer, layer.name, variables, values, pairs, problems)


def _inner_layers(model: Any) -> Iterator[tuple[Any, list[Any]]]:
    for layer in model.layers:
        if isinstance(layer, tf.keras.Model):
            yield from _inner_layers(layer)
        else:
            variables = keras_compat.layer_variables(layer)
            if variables:
                yield layer, variables


def _short(name: str) -> str:
    return name.split("/")[-1].split(":")[0]


def _h5_values(group: Any, layer: str | None, wanted: list[str]) -> list[h5py.Dataset]:
    """The values of one layer's weights in an ``.h5`` layer group, by weight name where the names match (frozen
    layers list their weights in another order), else in the order saved."""
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
    if layer is not None:
        names = [n for n in names if n.split("/")[-2:-1] == [layer]]
    by_short = {_short(n): n for n in names}
    if len(by_short) == len(names) and sorted(by_short) == sorted(wanted):
        names = [by_short[w] for w in wanted]
    return [group[n] for n in names]
