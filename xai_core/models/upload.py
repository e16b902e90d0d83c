"""The user's own model: a ``.keras``, ``.h5``/``.hdf5`` file or a zipped TensorFlow SavedModel.

``.keras`` and ``.h5`` files of any Keras version in use (2.13–2.15, tf_keras ≥ 2.16, Keras 3) are read as data by
:mod:`xai_core.models.keras_files`; a SavedModel zip (Keras 2's ``model.save("folder")``) by tf_keras itself.

Loading an uploaded model is loading untrusted input. A Keras ``Lambda`` layer stores Python bytecode that Keras
executes while it rebuilds the model, and the legacy SavedModel loader ignores ``safe_mode``. So the model's
architecture is read **as data** first (``config.json`` inside a ``.keras`` zip, the ``model_config`` attribute of
an HDF5 file, ``keras_metadata.pb`` of a SavedModel) and any ``Lambda`` layer, at any depth, refuses the file before
any layer is built. Building then still runs with Keras' safe mode switched on.

The loaded model must be an image classifier (see :func:`xai_core.models.graph.validate_classifier`);
nested models are flattened and the output activation split off by :meth:`ModelBundle.create`.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xai_core.compat import keras as keras_compat
from xai_core.data.archive import safe_extract_zip
from xai_core.errors import DatasetError, InvalidParameterError, ModelLoadError, XaiLensError
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.models.fingerprint import detect_preprocessing
from xai_core.models.imagenet import NUM_IMAGENET_CLASSES, imagenet_class_names
from xai_core.models.keras_files import LoadReport, ModelFile, build_model, open_model_file, to_keras2

#: File name endings accepted for an uploaded model.
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".zip")
#: Preprocessing choices besides the keys of :data:`xai_core.models.bundle.PREPROCESSINGS`.
AUTO = "auto"
#: Caps for a zipped SavedModel.
MAX_SAVEDMODEL_FILES = 10000
MAX_SAVEDMODEL_BYTES = 2 * 1024**3

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"
_FORMAT_HELP = (
    "Save your model with model.save('model.keras') (any Keras version; recommended) or model.save('model.h5')."
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


def _check_config(file: ModelFile, filename: str) -> None:
    """Refuse, before anything is built, a Lambda layer (Python code) and whatever the Keras 2 engine cannot build
    as saved: custom layers, Keras 3 layers and operations it lacks (:func:`~xai_core.models.keras_files.to_keras2`
    names each layer and says what to do)."""
    _refuse_lambdas(file.config, filename)
    to_keras2(file.config, file.keras3, filename)


def _json(raw: bytes | str, what: str, filename: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"'{filename}': its {what} is not readable JSON ({exc}).") from exc


def _savedmodel_config(model_dir: Path, filename: str) -> list[Any]:
    meta_path = model_dir / "keras_metadata.pb"
    if not meta_path.is_file():
        raise ModelLoadError(
            f"The SavedModel in '{filename}' holds no Keras layers (no keras_metadata.pb): it was written by "
            "model.export() or tf.saved_model.save(), which keep only the computation, not the layers XAI Lens "
            "explains. Upload the file written by model.save('model.keras') instead."
        )
    try:
        nodes = keras_compat.saved_model_layer_configs(meta_path.read_bytes())
    except Exception as exc:
        raise ModelLoadError(f"The keras_metadata.pb in '{filename}' is damaged ({exc}).") from exc
    return [_json(node, "Keras metadata", filename) for node in nodes]


# ---------------------------------------------------------------------------------------------- loading
def _load_savedmodel(path: Path) -> Any:
    import tensorflow as tf

    with keras_compat.safe_mode():
        return tf.keras.models.load_model(str(path), compile=False, safe_mode=True)


def _find_savedmodel_dir(files: list[Path], filename: str) -> Path:
    dirs = sorted({p.parent for p in files if p.name == "saved_model.pb" and "__MACOSX" not in p.parts})
    if len(dirs) != 1:
        raise ModelLoadError(
            f"'{filename}' holds {len(dirs)} SavedModels; zip exactly one SavedModel folder."
            if dirs else f"'{filename}' holds no saved_model.pb. {_FORMAT_HELP}"
        )
    return dirs[0]


def _wrap(exc: Exception, filename: str, kind: str) -> ModelLoadError:
    label = {"keras": "Keras (.keras)", "h5": "HDF5", "savedmodel": "SavedModel"}[kind]
    detail = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
    hint = ""
    if "Unknown layer" in str(exc) or "custom" in str(exc).lower():
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
        ``source="upload"``; ``info`` holds ``format``, ``filename``, ``sha256`` (of the file), ``preprocessing_auto``,
        ``preprocessing_reason`` (one sentence: what was chosen and why), ``preprocessing_certain`` (False when
        auto found nothing to go by), ``architecture`` (a recognised ``keras.applications`` network, or None),
        ``flattened`` (nested models were inlined), and for ``.keras`` / ``.h5`` files ``keras_version`` and
        ``load_report`` ("Keras 3.15.1 file, converted: 177 layers, 25.6 M weights").

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
    file: ModelFile | None = None
    if kind in ("keras", "h5"):
        file = open_model_file(src.data, src.filename, kind)
        _check_config(file, src.filename)

    flattened: dict[str, bool] = {}
    report: dict[str, LoadReport] = {}
    with tempfile.TemporaryDirectory(prefix="xai-lens-upload-") as tmp:
        path = Path(tmp)
        if kind == "savedmodel":
            try:
                files = safe_extract_zip(src.data, path / "extracted", max_files=MAX_SAVEDMODEL_FILES,
                                         max_bytes=MAX_SAVEDMODEL_BYTES)
            except DatasetError as exc:
                raise ModelLoadError(f"'{src.filename}': {exc}") from exc
            path = _find_savedmodel_dir(files, src.filename)
            for config in _savedmodel_config(path, src.filename):
                _refuse_lambdas(config, src.filename)

        def factory() -> Any:
            try:
                if file is not None:
                    model, report["value"] = build_model(file, src.filename)
                else:
                    model = _load_savedmodel(path)
            except ModelLoadError:
                raise
            except Exception as exc:
                raise _wrap(exc, src.filename, kind) from exc
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
                info={"format": kind, "filename": src.filename, "preprocessing_auto": preprocessing == AUTO,
                      "sha256": hashlib.sha256(src.data).hexdigest()},
            )
        except XaiLensError:
            raise
        except Exception as exc:  # flattening / head splitting failed on an unusual architecture
            raise ModelLoadError(
                f"'{src.filename}' was loaded, but XAI Lens could not prepare it for explanation. Original "
                f"error: {type(exc).__name__}: {str(exc).strip()[:400]}"
            ) from exc
        finally:
            if file is not None:
                file.close()
    bundle.info["flattened"] = flattened.get("value", False)
    if "value" in report:
        bundle.info["keras_version"] = report["value"].keras_version
        bundle.info["load_report"] = report["value"].summary()
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
