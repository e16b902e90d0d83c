"""Read Keras model files — ``.keras`` and ``.h5`` written by Keras 2.13–2.15, tf_keras ≥ 2.16 or Keras 3 — into the
engine's Keras 2 (tf_keras) model, with the file's exact weights. The file is read as data: its architecture from
JSON, its weights from HDF5; no code from the file ever runs, and no Keras 3 is needed.

Why not ``load_model``: tf_keras 2.21 cannot read the ``.keras`` files of Keras 2.14 ("Layer 'conv1' expected 2
variables, but received 0"), nor any file of Keras 3; and in graph mode ``load_model`` of a ``.keras`` file silently
returns fresh random weights (Keras restores each variable with an assign op nothing runs).

The architecture (``config.json`` of a ``.keras`` zip, ``model_config`` of an ``.h5``) is rewritten into the Keras 2
form (:func:`to_keras2`): Keras 3's node format, input specs, dtype policies and options Keras 2 lacks (each dropped
only at its neutral value; any other value refuses the file, naming the layer). Layers are then built by tf_keras
from that JSON in the current graph, and every variable gets the file's value in one ``session.run``
(:func:`read_model`), matched by layer: a ``.keras`` file stores them per layer under a key made of the layer's
class name (``conv2d``, ``conv2d_1`` … in layer order; Keras 3 also records the layer's name), an ``.h5`` file per
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
        return text + (f" ({'; '.join(self.notes)})" if self.notes else "")


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
class _Conversion:
    """State of one :func:`to_keras2` call: shared dtype policies, notes, refusals."""

    def __init__(self, keras3: bool) -> None:
        self.keras3 = keras3
        self.policies: dict[Any, str] = {}
        self.notes: set[str] = set()
        self.refusals: list[str] = []


def to_keras2(config: dict[str, Any], keras3: bool) -> tuple[dict[str, Any], list[str]]:
    """The Keras 2 (tf_keras, legacy-JSON) form of a saved model architecture (``keras3``: saved by Keras 3, whose
    layer options are checked against what tf_keras takes; a Keras 2 file's are tf_keras's own).

    Returns
    -------
    (config, notes)
        ``notes``: what the user should know (mixed precision run in float32, augmentation layers at inference).

    Raises
    ------
    ModelLoadError
        For layer options or call patterns Keras 2 cannot express, naming each layer.
    """
    state = _Conversion(keras3)
    out = _model_entry(copy.deepcopy(config), state)
    if state.refusals:
        shown = "; ".join(state.refusals[:6]) + (f"; and {len(state.refusals) - 6} more" if len(state.refusals) > 6
                                                 else "")
        raise ModelLoadError(f"The model uses Keras features XAI Lens cannot run: {shown}.")
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
            _shift_nested_node_indices(new)
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
        nested = _model_entry(entry, state)
        out = dict(nested)
    else:
        name = str((entry.get("config") or {}).get("name") or entry.get("name"))
        if cls == "Lambda":
            state.refusals.append(f"'{name}' is a Lambda layer, which holds Python code; XAI Lens never runs code "
                                  "from a file (use built-in layers such as Rescaling, Activation or Reshape)")
            return entry
        if str(entry.get("module") or "").startswith("keras.src.ops"):
            state.refusals.append(f"'{name}' is a raw Keras operation ({cls} from keras.ops), not a layer; "
                                  "use layers (e.g. keras.layers.Add, Multiply, Rescaling) in the model")
            return entry
        out = {"class_name": cls, "config": _layer_config(cls, entry.get("config") or {}, name, state)}
        if cls in AUGMENTATION and not hasattr(tf.keras.layers, cls):
            out = {"class_name": "Activation", "config": {"name": name, "activation": "linear", "dtype": "float32"}}
    if cls in AUGMENTATION:
        state.notes.add("augmentation layers run as at inference (no random changes)")
    if not sequential:
        out["name"] = entry.get("name") or out["config"].get("name")
        out["inbound_nodes"] = _nodes(entry.get("inbound_nodes", []), cls, out["name"], state)
    return out


def _layer_config(cls: str, cfg: dict[str, Any], name: str, state: _Conversion) -> dict[str, Any]:
    layer_cls = getattr(tf.keras.layers, cls, None) or keras_compat.application_layers().get(cls)
    accepted = _accepted_arguments(layer_cls) if state.keras3 else None
    new: dict[str, Any] = {}
    for key, value in cfg.items():
        if key == "batch_shape":  # Keras 3 InputLayer
            key = "batch_input_shape"
        if key == "dtype":
            value = _dtype(value, state)
        elif key.endswith(("_initializer", "_regularizer", "_constraint")) or key == "activity_regularizer":
            # Training-time only; the weights come from the file. Keras 3 adds options (input_axes …) Keras 2 lacks.
            continue
        elif key == "activation" or key == "recurrent_activation":
            value = _activation(value, name, state)
        if accepted is not None and key not in accepted:
            if not _neutral(value):
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


def _shift_nested_node_indices(model_cfg: dict[str, Any]) -> None:
    """Keras 2 numbers the calls of a nested model from 1 (call 0 is the one that built it from its Input); Keras 3
    from 0. Keras 3 references to a nested model are shifted by one."""
    nested = {layer["name"] for layer in model_cfg["layers"]
              if layer.get("class_name") in ("Functional", "Sequential") and _starts_with_input(layer)}
    if not nested:
        return
    for layer in model_cfg["layers"]:
        for node in layer.get("inbound_nodes", []):
            for item in node:
                if item[0] in nested:
                    item[1] += 1
    for key in ("output_layers",):
        for item in model_cfg[key]:
            if item[0] in nested:
                item[1] += 1


def _starts_with_input(layer: dict[str, Any]) -> bool:
    layers = layer.get("config", {}).get("layers", [])
    return bool(layers) and layers[0].get("class_name") == "InputLayer"


# ---------------------------------------------------------------------------------------------- building
def build_model(file: ModelFile, filename: str) -> tuple[Any, LoadReport]:
    """Build ``file``'s model in the current (graph-mode) default graph and session, with its weights.

    Must run inside the target graph and session (e.g. as a :meth:`ModelBundle.create` factory).
    """
    config, notes = to_keras2(file.config, file.keras3)
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
        _keras_level(file._h5, model, file.config, pairs, problems, path="")
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
                 path: str) -> None:
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
        base = _snake(str(entry["class_name"]))
        n = counters.get(base, 0)
        counters[base] = n + 1
        keys[_entry_name(entry)] = by_name.get(_entry_name(entry), base if n == 0 else f"{base}_{n}")
    for entry in entries:
        name = _entry_name(entry)
        if entry["class_name"] == "InputLayer":
            continue
        layer = model.get_layer(name)
        where = f"{path}{name}"
        sub = children[keys[name]] if children is not None and keys[name] in children else None
        if entry["class_name"] in MODEL_CLASSES:
            if sub is None:
                if layer.weights:
                    problems.append(f"no weights stored for nested model '{where}'")
                continue
            _keras_level(sub, layer, entry, pairs, problems, path=f"{where}/")
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
