"""The user's own model: a ``.keras``, ``.h5``/``.hdf5`` file or a zipped TensorFlow SavedModel.

Loading an uploaded model is loading untrusted input. A Keras ``Lambda`` layer stores Python bytecode that
Keras executes while it rebuilds the model, and the legacy loaders (HDF5, SavedModel) ignore ``safe_mode``.
So the model's architecture is read **as data** first (``config.json`` inside a ``.keras`` zip, the
``model_config`` attribute of an HDF5 file, ``keras_metadata.pb`` of a SavedModel) and any ``Lambda`` layer,
at any depth, refuses the file before a Keras loader is called. Loading then still runs with Keras' safe mode
switched on.

The loaded model must be an image classifier (see :func:`xai_core.models.graph.validate_classifier`);
nested models are flattened and the output activation split off by :meth:`ModelBundle.create`.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xai_core import runtime  # noqa: F401  (graph mode before any model exists)
from xai_core.data.archive import safe_extract_zip
from xai_core.errors import DatasetError, InvalidParameterError, ModelLoadError, XaiLensError
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.models.fingerprint import detect_preprocessing
from xai_core.models.imagenet import NUM_IMAGENET_CLASSES, imagenet_class_names

#: File name endings accepted for an uploaded model.
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".zip")
#: Preprocessing choices besides the keys of :data:`xai_core.models.bundle.PREPROCESSINGS`.
AUTO = "auto"
#: Caps for a zipped SavedModel.
MAX_SAVEDMODEL_FILES = 10000
MAX_SAVEDMODEL_BYTES = 2 * 1024**3
#: A model architecture (config.json) is kilobytes to a few megabytes; refuse absurd sizes unread.
MAX_CONFIG_BYTES = 64 * 1024**2

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_FORMAT_HELP = (
    "Save your model with model.save('model.keras') (recommended), model.save('model.h5'), or zip the "
    "folder written by model.save('my_model', save_format='tf')."
)


@dataclass(frozen=True)
class _Source:
    """An uploaded file: its bytes and the name it was uploaded under."""

    data: bytes
    filename: str

    @property
    def suffix(self) -> str:
        return Path(self.filename).suffix.lower()


# ---------------------------------------------------------------------------------------------- reading
def _read_source(source: str | Path | bytes, filename: str | None) -> _Source:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not filename:
            raise ModelLoadError("The model file's name is needed to know its format (.keras, .h5, .zip).")
        return _Source(bytes(source), filename)
    path = Path(source)
    if path.is_dir():
        raise ModelLoadError(
            f"'{path.name}' is a folder. To load a SavedModel folder, zip it and load the .zip file."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"The model file '{path.name}' could not be read: {exc}") from exc
    return _Source(data, filename or path.name)


def _preview(data: bytes) -> str:
    head = data[:40]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown format"
    return f"text ({text.strip()[:30]!r}…)" if text.strip() else "empty or blank text"


def _sniff(src: _Source) -> str:
    """The file's real format from its content: ``"keras"``, ``"h5"`` or ``"savedmodel"``."""
    if src.suffix not in MODEL_SUFFIXES:
        raise ModelLoadError(
            f"'{src.filename}' has an unsupported file type '{src.suffix or '(none)'}'. XAI Lens loads "
            f"{', '.join(MODEL_SUFFIXES)} models. {_FORMAT_HELP}"
        )
    if not src.data:
        raise ModelLoadError(f"'{src.filename}' is empty. {_FORMAT_HELP}")
    if src.data.startswith(_HDF5_MAGIC):
        return "h5"
    if src.data.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(src.data)) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as exc:
            raise ModelLoadError(f"'{src.filename}' is a damaged zip archive ({exc}). {_FORMAT_HELP}") from exc
        if "config.json" in names:
            return "keras"
        if any(Path(n).name == "saved_model.pb" for n in names):
            return "savedmodel"
        raise ModelLoadError(
            f"'{src.filename}' is a zip archive but holds neither a Keras model (config.json) nor a "
            f"TensorFlow SavedModel (saved_model.pb). {_FORMAT_HELP}"
        )
    expected = {".keras": "a zip archive", ".zip": "a zip archive"}.get(src.suffix, "an HDF5 file")
    raise ModelLoadError(
        f"'{src.filename}' is not a model file: a {src.suffix} model is {expected}, but this file holds "
        f"{_preview(src.data)}. {_FORMAT_HELP}"
    )


# ---------------------------------------------------------------------------------------------- security
def find_lambda_layers(config: Any) -> list[str]:
    """Names of all ``Lambda`` layers in a Keras model config (any nesting: models, wrappers, ...).

    Parameters
    ----------
    config : parsed JSON of a model's architecture (``dict``/``list`` tree).

    Returns
    -------
    list[str]
        One entry per Lambda layer (its ``name``, or ``"?"``), in the order found.
    """
    found: list[str] = []
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                cfg = node.get("config")
                found.append(str(cfg.get("name", "?")) if isinstance(cfg, dict) else "?")
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


def _refuse_lambdas(config: Any, filename: str) -> None:
    lambdas = find_lambda_layers(config)
    if lambdas:
        names = ", ".join(f"'{n}'" for n in dict.fromkeys(lambdas))
        raise ModelLoadError(
            f"'{filename}' contains a Lambda layer ({names}). A Lambda layer stores Python code that would run "
            "while the model is loaded, so XAI Lens never loads Lambda layers from a file. Replace it with "
            "built-in Keras layers (e.g. Rescaling, Activation, Reshape) and save the model again."
        )


def _keras_own_layers() -> dict[str, Any]:
    """Layer classes defined inside ``keras.applications`` (not exported as ``tf.keras.layers``): models
    fine-tuned from ConvNeXt or InceptionResNetV2 contain them. Keras' own code, so safe to resolve."""
    from keras.src.applications import convnext, inception_resnet_v2

    return {
        "StochasticDepth": convnext.StochasticDepth,
        "LayerScale": convnext.LayerScale,
        "CustomScaleLayer": inception_resnet_v2.CustomScaleLayer,
    }


def find_unknown_layers(config: Any) -> list[str]:
    """Class names of layers in a model config that neither Keras nor XAI Lens can build.

    Only entries of ``layers`` lists are checked (the layers of Functional/Sequential models, at any depth).
    """
    import tensorflow as tf

    known = {n for n in dir(tf.keras.layers) if n[:1].isupper()} | set(_keras_own_layers())
    known |= {"Functional", "Sequential", "Model", "TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"}
    unknown: list[str] = []
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            layers = node.get("layers")
            if isinstance(layers, list):
                unknown += [str(e["class_name"]) for e in layers
                            if isinstance(e, dict) and isinstance(e.get("class_name"), str)
                            and e["class_name"] not in known]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(set(unknown))


def _check_config(config: Any, filename: str) -> None:
    _refuse_lambdas(config, filename)
    unknown = find_unknown_layers(config)
    if unknown:
        raise ModelLoadError(
            f"'{filename}' uses layer types that are not part of Keras: {', '.join(unknown)}. Custom layers "
            "are defined in your own code, which is not inside the file; XAI Lens can only load models made "
            "of built-in Keras layers."
        )


def _json(raw: bytes | str, what: str, filename: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"'{filename}': its {what} is not readable JSON ({exc}).") from exc


def _keras_config(src: _Source) -> Any:
    with zipfile.ZipFile(io.BytesIO(src.data)) as zf:
        if zf.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
            raise ModelLoadError(f"'{src.filename}': its config.json is implausibly large; not a Keras model.")
        try:
            raw = zf.read("config.json")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelLoadError(f"'{src.filename}' is a damaged zip archive ({exc}). {_FORMAT_HELP}") from exc
    return _json(raw, "config.json", src.filename)


def _h5_config(src: _Source) -> Any:
    import h5py

    try:
        with h5py.File(io.BytesIO(src.data), "r") as f:
            raw = f.attrs.get("model_config")
            has_weights = "model_weights" in f or "layer_names" in f.attrs
    except OSError as exc:
        raise ModelLoadError(f"'{src.filename}' is a damaged HDF5 file ({exc}). {_FORMAT_HELP}") from exc
    if raw is None:
        what = "only weights (saved with save_weights)" if has_weights else "no Keras model"
        raise ModelLoadError(
            f"'{src.filename}' holds {what}, not a model architecture. Save the whole model with "
            "model.save('model.keras') or model.save('model.h5')."
        )
    return _json(raw.decode("utf-8") if isinstance(raw, bytes) else raw, "model_config", src.filename)


def _savedmodel_config(model_dir: Path, filename: str) -> list[Any]:
    from keras.protobuf import saved_metadata_pb2

    meta_path = model_dir / "keras_metadata.pb"
    if not meta_path.is_file():
        raise ModelLoadError(
            f"The SavedModel in '{filename}' has no keras_metadata.pb: it was not saved by Keras (or by "
            "TensorFlow < 2.5), so XAI Lens cannot check it is safe and rebuild its layers. Save it with "
            "model.save(...) from Keras."
        )
    metadata = saved_metadata_pb2.SavedMetadata()
    try:
        metadata.ParseFromString(meta_path.read_bytes())
    except Exception as exc:
        raise ModelLoadError(f"The keras_metadata.pb in '{filename}' is damaged ({exc}).") from exc
    return [_json(node.metadata, "Keras metadata", filename) for node in metadata.nodes if node.metadata]


# ---------------------------------------------------------------------------------------------- loading
@contextmanager
def _safe_mode() -> Iterator[None]:
    """Keras' safe mode for every loader (also the legacy ones that ignore ``safe_mode=True``), with the
    layer classes of ``keras.applications`` resolvable."""
    import tensorflow as tf
    from keras.src.saving import serialization_lib

    with serialization_lib.SafeModeScope(True), tf.keras.utils.custom_object_scope(_keras_own_layers()):
        yield


def _load_keras(path: Path) -> Any:
    from xai_core.models.demo import load_keras_file

    with _safe_mode():
        return load_keras_file(path)


def _load_legacy(path: Path) -> Any:
    import tensorflow as tf

    with _safe_mode():
        return tf.keras.models.load_model(str(path), compile=False, safe_mode=True)


def _find_savedmodel_dir(files: list[Path], filename: str) -> Path:
    dirs = sorted({p.parent for p in files if p.name == "saved_model.pb" and "__MACOSX" not in p.parts})
    if len(dirs) != 1:
        raise ModelLoadError(
            f"'{filename}' holds {len(dirs)} SavedModels; zip exactly one SavedModel folder."
            if dirs else f"'{filename}' holds no saved_model.pb. {_FORMAT_HELP}"
        )
    return dirs[0]


def _saved_with(src: _Source, kind: str) -> str | None:
    """The Keras version recorded in a ``.keras`` file's metadata.json (``None`` if unknown)."""
    if kind != "keras":
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(src.data)) as zf:
            return str(json.loads(zf.read("metadata.json")).get("keras_version")) or None
    except (KeyError, ValueError, zipfile.BadZipFile, OSError):
        return None


def _wrap(exc: Exception, filename: str, kind: str, saved_with: str | None = None) -> ModelLoadError:
    label = {"keras": "Keras (.keras)", "h5": "HDF5", "savedmodel": "SavedModel"}[kind]
    detail = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
    hint = ""
    if saved_with and not saved_with.startswith("2."):
        hint = (
            f" It was saved with Keras {saved_with}; XAI Lens runs Keras 2.14 (TensorFlow 2.14, the newest "
            "iNNvestigate supports), which cannot read files of Keras 3. Save the model from TensorFlow "
            "<= 2.15, or try model.save('model.h5')."
        )
    elif "Unknown layer" in str(exc) or "custom" in str(exc).lower():
        hint = " The model uses a custom layer XAI Lens does not know; use built-in Keras layers only."
    return ModelLoadError(
        f"Keras could not load the {label} model '{filename}'.{hint} Original error: "
        f"{type(exc).__name__}: {detail}"
    )


def load_user_model(
    source: str | Path | bytes,
    filename: str | None = None,
    *,
    name: str | None = None,
    preprocessing: str = AUTO,
    class_names: list[str] | None = None,
) -> ModelBundle:
    """Load the user's own Keras image classifier as a bundle.

    Parameters
    ----------
    source : path of the model file, or its bytes (e.g. ``st.file_uploader(...).getvalue()``).
    filename : the file's name (required with bytes; its ending selects the accepted formats).
    name : display name; default: the file name without its ending.
    preprocessing : ``"auto"`` (see :func:`~xai_core.models.fingerprint.detect_preprocessing`: ``"raw"`` if the
        model rescales its input itself, the documented convention of a recognised ``keras.applications``
        architecture, else ``"unit"`` = pixels / 255 as a guess) or a key of
        :data:`xai_core.models.bundle.PREPROCESSINGS`.
    class_names : one name per output; default: the ImageNet names for 1000 outputs, else ``"class k"``.

    Returns
    -------
    ModelBundle
        ``source="upload"``; ``info`` holds ``format``, ``filename``, ``preprocessing_auto``,
        ``preprocessing_reason`` (one sentence: what was chosen and why), ``preprocessing_certain`` (False when
        auto found nothing to go by), ``architecture`` (a recognised ``keras.applications`` network, or None)
        and ``flattened`` (nested models were inlined).

    Raises
    ------
    ModelLoadError
        Unsupported or damaged file, not a model, a Lambda layer, not an image classifier (input not
        ``(N, H, W, 1|3)``, not exactly one ``(N, K)`` output), or any Keras error (message appended).
    InvalidParameterError
        Unknown ``preprocessing``.
    """
    if preprocessing != AUTO and preprocessing not in PREPROCESSINGS:
        raise InvalidParameterError(
            f"Unknown preprocessing '{preprocessing}'. Choose one of: {', '.join([AUTO, *PREPROCESSINGS])}."
        )
    src = _read_source(source, filename)
    kind = _sniff(src)
    if kind == "keras":
        _check_config(_keras_config(src), src.filename)
    elif kind == "h5":
        _check_config(_h5_config(src), src.filename)

    flattened: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="xai-lens-upload-") as tmp:
        tmp_dir = Path(tmp)
        if kind == "savedmodel":
            try:
                files = safe_extract_zip(src.data, tmp_dir / "extracted", max_files=MAX_SAVEDMODEL_FILES,
                                         max_bytes=MAX_SAVEDMODEL_BYTES)
            except DatasetError as exc:
                raise ModelLoadError(f"'{src.filename}': {exc}") from exc
            path = _find_savedmodel_dir(files, src.filename)
            for config in _savedmodel_config(path, src.filename):
                _refuse_lambdas(config, src.filename)
        else:
            path = tmp_dir / ("model.keras" if kind == "keras" else "model.h5")
            path.write_bytes(src.data)

        def factory() -> Any:
            try:
                model = _load_keras(path) if kind == "keras" else _load_legacy(path)
            except ModelLoadError:
                raise
            except Exception as exc:
                raise _wrap(exc, src.filename, kind, _saved_with(src, kind)) from exc
            flattened["value"] = _has_nested(model)
            return model

        try:
            bundle = ModelBundle.create(
                factory,
                name=name or Path(src.filename).stem,
                preprocessing=PREPROCESSINGS["unit" if preprocessing == AUTO else preprocessing],
                class_names=class_names,
                source="upload",
                description=f"uploaded {src.filename}",
                info={"format": kind, "filename": src.filename, "preprocessing_auto": preprocessing == AUTO},
            )
        except XaiLensError:
            raise
        except Exception as exc:  # flattening / head splitting failed on an unusual architecture
            raise ModelLoadError(
                f"'{src.filename}' was loaded, but XAI Lens could not prepare it for explanation. Original "
                f"error: {type(exc).__name__}: {str(exc).strip()[:400]}"
            ) from exc
    bundle.info["flattened"] = flattened.get("value", False)
    with bundle.scope():
        guess = detect_preprocessing(bundle.model)
    bundle.info["architecture"] = guess.architecture
    if preprocessing == AUTO:
        bundle.preprocessing = PREPROCESSINGS[guess.name]
        bundle.info.update(preprocessing_reason=guess.reason, preprocessing_certain=guess.certain)
    else:
        note = ""
        if guess.certain and guess.name != preprocessing:
            note = f" (auto would choose {guess.name}: {guess.reason.split(': ', 1)[-1]})"
        bundle.info.update(preprocessing_reason=f"{preprocessing}: your choice{note}", preprocessing_certain=True)
    if class_names is None and bundle.num_classes == NUM_IMAGENET_CLASSES:
        bundle.class_names = imagenet_class_names()
    return bundle


def _has_nested(model: Any) -> bool:
    import tensorflow as tf

    return any(isinstance(layer, tf.keras.Model) for layer in getattr(model, "layers", []))
