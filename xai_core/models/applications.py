"""The ImageNet classifiers of ``tf.keras.applications`` as model bundles.

:data:`APPLICATIONS` lists every image classifier Keras 2.14 exposes (71 networks, enumerated from
``tf.keras.applications`` itself), each with its family, its default input size and the submodule whose
``preprocess_input`` it needs. :func:`load_application` builds one inside its own graph with its own
preprocessing and the ImageNet class names.

Pretrained weights download once to the Keras cache (``~/.keras/models``). Keras' own downloader has no
timeout, so the file is fetched here first with a bounded wait; offline, :class:`WeightsUnavailableError`
says so within about ten seconds instead of hanging.

Ref. https://keras.io/api/applications/
"""

from __future__ import annotations

import http.client
import inspect
import os
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from xai_core.compat import keras as keras_compat
from xai_core.errors import InvalidParameterError, ModelLoadError, WeightsUnavailableError
from xai_core.models.bundle import ModelBundle, Preprocessing
from xai_core.models.imagenet import imagenet_class_names

#: Seconds to wait for the weights server to answer before declaring the machine offline.
CONNECT_TIMEOUT = 10.0
#: Seconds a running download may stall (no byte received) before it is abandoned.
STALL_TIMEOUT = 60.0

#: Submodule of ``tf.keras.applications`` → (family label, preprocessing convention).
#: Conventions: ``"caffe"`` RGB→BGR minus ImageNet mean, ``"tf"`` pixels/127.5 − 1, ``"torch"`` /255 then
#: ImageNet mean/std, ``"raw"`` identity (the network rescales inside: Rescaling/Normalization layers).
_MODULES: dict[str, tuple[str, str]] = {
    "vgg16": ("VGG", "caffe"),
    "vgg19": ("VGG", "caffe"),
    "resnet": ("ResNet", "caffe"),
    "resnet_v2": ("ResNetV2", "tf"),
    "resnet_rs": ("ResNet-RS", "raw"),
    "mobilenet": ("MobileNet", "tf"),
    "mobilenet_v2": ("MobileNetV2", "tf"),
    "mobilenet_v3": ("MobileNetV3", "raw"),
    "xception": ("Xception", "tf"),
    "inception_v3": ("Inception", "tf"),
    "inception_resnet_v2": ("Inception", "tf"),
    "densenet": ("DenseNet", "torch"),
    "efficientnet": ("EfficientNet", "raw"),
    "efficientnet_v2": ("EfficientNetV2", "raw"),
    "convnext": ("ConvNeXt", "raw"),
    "nasnet": ("NASNet", "tf"),
    "regnet": ("RegNet", "raw"),
}

_CONVENTIONS: dict[str, str] = {
    "caffe": "RGB→BGR, minus the ImageNet mean pixel (caffe style)",
    "tf": "pixels / 127.5 − 1 → [−1, 1]",
    "torch": "pixels / 255, minus the ImageNet mean, divided by its std (torch style)",
    "raw": "raw pixels [0, 255]; the network rescales them itself",
}

#: Default input side where it is not 224 (Keras' ``default_size``; checked against Keras in the tests).
_INPUT_SIDE: dict[str, int] = {
    "Xception": 299, "InceptionV3": 299, "InceptionResNetV2": 299, "NASNetLarge": 331,
    "EfficientNetB1": 240, "EfficientNetB2": 260, "EfficientNetB3": 300, "EfficientNetB4": 380,
    "EfficientNetB5": 456, "EfficientNetB6": 528, "EfficientNetB7": 600,
    "EfficientNetV2B1": 240, "EfficientNetV2B2": 260, "EfficientNetV2B3": 300,
    "EfficientNetV2S": 384, "EfficientNetV2M": 480, "EfficientNetV2L": 480,
}


@dataclass(frozen=True)
class ApplicationSpec:
    """Catalogue entry of one ``tf.keras.applications`` classifier.

    Attributes
    ----------
    name : constructor name, e.g. ``"MobileNetV2"``.
    family : architecture family for grouping in the UI, e.g. ``"EfficientNet"``.
    input_size : ``(H, W)`` the network is built and pretrained for.
    module : submodule of ``tf.keras.applications`` holding its ``preprocess_input``, e.g.
        ``"mobilenet_v2"``.
    """

    name: str
    family: str
    input_size: tuple[int, int]
    module: str

    @property
    def constructor(self) -> Callable[..., Any]:
        """The Keras constructor, e.g. ``tf.keras.applications.MobileNetV2``."""
        return getattr(tf.keras.applications, self.name)

    @property
    def convention(self) -> str:
        """Preprocessing convention: ``"caffe"``, ``"tf"``, ``"torch"`` or ``"raw"``."""
        return _MODULES[self.module][1]

    @property
    def preprocessing(self) -> Preprocessing:
        """The network's own ``preprocess_input`` (raw pixels [0, 255] → model input)."""
        return _preprocessing(self.module)

    @property
    def weights_file(self) -> str:
        """File name of the ImageNet weights (with top) in the Keras cache."""
        return _weights_source(self)[0]

    @property
    def weights_url(self) -> str:
        """Where Keras downloads those weights from."""
        return _weights_source(self)[1]


@cache
def _preprocessing(module: str) -> Preprocessing:
    fn = getattr(tf.keras.applications, module).preprocess_input
    return Preprocessing(
        name=module,
        fn=lambda x: np.asarray(fn(x), dtype=np.float32),
        description=f"keras.applications.{module}.preprocess_input: {_CONVENTIONS[_MODULES[module][1]]}",
    )


def _enumerate() -> dict[str, ApplicationSpec]:
    """Every image classifier constructor of ``tf.keras.applications`` whose module is known above."""
    apps = tf.keras.applications
    specs: dict[str, ApplicationSpec] = {}
    for name in sorted(dir(apps)):
        obj = getattr(apps, name)
        if name.startswith("_") or inspect.ismodule(obj) or not callable(obj) or not name[0].isupper():
            continue
        module = obj.__module__.rsplit(".", 1)[-1]
        if module not in _MODULES or not hasattr(getattr(apps, module, None), "preprocess_input"):
            continue  # a network added by a newer Keras: the catalogue test names it
        side = _INPUT_SIDE.get(name, 224)
        specs[name] = ApplicationSpec(name, _MODULES[module][0], (side, side), module)
    return specs


#: Constructor name → catalogue entry, for every classifier in ``tf.keras.applications``.
APPLICATIONS: dict[str, ApplicationSpec] = _enumerate()


def get_application(name: str) -> ApplicationSpec:
    """The catalogue entry of ``name``; :class:`ModelLoadError` listing the valid names otherwise."""
    try:
        return APPLICATIONS[name]
    except KeyError:
        raise ModelLoadError(
            f"Unknown Keras application '{name}'. Choose one of: {', '.join(APPLICATIONS)}."
        ) from None


# ---------------------------------------------------------------------------------------------- weights
def _keras_source(module: str) -> Any:
    return keras_compat.application_module(module)


def _weights_source(spec: ApplicationSpec) -> tuple[str, str]:
    """``(file name in the cache, download URL)`` of the ImageNet weights with top, as Keras 2.14 names them.

    Built from the constants of Keras' own modules; the tests check a representative of every naming rule
    against the arguments Keras passes to its downloader.
    """
    mod, name = _keras_source(spec.module), spec.name
    suffix = name.lower()
    match spec.module:
        case "vgg16" | "vgg19" | "inception_v3":
            url = mod.WEIGHTS_PATH
        case "xception":
            url = mod.TF_WEIGHTS_PATH
        case "inception_resnet_v2":
            url = mod.BASE_WEIGHT_URL + "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5"
        case "resnet" | "resnet_v2":  # ResNet50 → resnet50_..., ResNet50V2 → resnet50v2_...
            url = _keras_source("resnet").BASE_WEIGHTS_PATH + f"{suffix}_weights_tf_dim_ordering_tf_kernels.h5"
        case "mobilenet":
            url = mod.BASE_WEIGHT_PATH + "mobilenet_1_0_224_tf.h5"
        case "mobilenet_v2":
            url = mod.BASE_WEIGHT_PATH + "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"
        case "mobilenet_v3":
            kind = "large" if name.endswith("Large") else "small"
            url = mod.BASE_WEIGHT_PATH + f"weights_mobilenet_v3_{kind}_224_1.0_float.h5"
        case "densenet":
            url = getattr(mod, f"{name.upper()}_WEIGHT_PATH")
        case "efficientnet" | "regnet":  # efficientnetb0.h5, regnetx002.h5
            url = mod.BASE_WEIGHTS_PATH + f"{suffix}.h5"
        case "efficientnet_v2":  # EfficientNetV2B0 → efficientnetv2-b0.h5
            url = mod.BASE_WEIGHTS_PATH + f"efficientnetv2-{suffix.removeprefix('efficientnetv2')}.h5"
        case "convnext":  # ConvNeXtTiny → convnext_tiny.h5
            url = mod.BASE_WEIGHTS_PATH + f"convnext_{suffix.removeprefix('convnext')}.h5"
        case "nasnet":  # the cache name differs from the URL's file name here
            small = name == "NASNetMobile"
            url = mod.NASNET_MOBILE_WEIGHT_PATH if small else mod.NASNET_LARGE_WEIGHT_PATH
            return ("nasnet_mobile.h5" if small else "nasnet_large.h5"), url
        case "resnet_rs":  # Keras picks the variant trained at the largest resolution
            depth = int(name.removeprefix("ResNetRS"))
            res = max(mod.DEPTH_TO_WEIGHT_VARIANTS[depth])
            url = mod.BASE_WEIGHTS_URL + f"resnet-rs-{depth}-i{res}.h5"
        case _:  # pragma: no cover - every module of _MODULES is handled above
            raise ModelLoadError(f"No known ImageNet weights for {name}.")
    return url.rsplit("/", 1)[-1], url


def keras_cache_dir() -> Path:
    """Folder where Keras keeps downloaded weights: ``~/.keras/models`` (``/tmp/.keras/models`` if the home
    folder is not writable), resolved exactly as ``keras.utils.get_file`` does in Keras 2.14."""
    base = os.path.expanduser(os.path.join("~", ".keras"))
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return Path(base) / "models"


def weights_path(name: str) -> Path:
    """Where the ImageNet weights of application ``name`` are (or would be) cached."""
    return keras_cache_dir() / get_application(name).weights_file


def weights_cached(name: str) -> bool:
    """True if the ImageNet weights of ``name`` are in the Keras cache (loading needs no network)."""
    path = weights_path(name)
    return path.is_file() and path.stat().st_size > 0


def _download(url: str, dest: Path, timeout: float = CONNECT_TIMEOUT) -> None:
    """Download ``url`` to ``dest`` (atomically, via a temporary file next to it).

    Connecting (name lookup, TCP, TLS, response headers) may take at most ``timeout`` seconds: it runs in
    a daemon thread so that even a hanging DNS lookup cannot block the caller. After that each read may stall
    at most :data:`STALL_TIMEOUT` seconds; a large file may legitimately take minutes in total.

    Raises
    ------
    OSError
        Any failure (``TimeoutError`` when the server did not answer in time); nothing is left at ``dest``.
    """
    result: dict[str, Any] = {}
    lock = threading.Lock()

    def connect() -> None:
        try:
            response = urllib.request.urlopen(url, timeout=max(timeout, STALL_TIMEOUT))
        except BaseException as exc:  # handed over to the caller's thread
            result["error"] = exc
            return
        with lock:
            if result.get("abandoned"):  # the caller gave up meanwhile: do not leak the connection
                response.close()
            else:
                result["response"] = response

    worker = threading.Thread(target=connect, name="xai-lens-weights-download", daemon=True)
    worker.start()
    worker.join(timeout)
    with lock:
        if "response" not in result and "error" not in result:
            result["abandoned"] = True
            raise TimeoutError(f"no answer from {url.split('/')[2]} within {timeout:.0f} s")
    if "error" in result:
        error = result["error"]
        raise error if isinstance(error, OSError) else OSError(str(error))
    with result["response"] as response:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
        try:
            _copy(response, fd, tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def _copy(response: Any, fd: int, tmp: str, dest: Path) -> None:
    """Stream ``response`` into the open temporary file ``fd``/``tmp``, check its length, move it to ``dest``."""
    with os.fdopen(fd, "wb") as out:
        expected = response.headers.get("Content-Length")
        try:
            shutil.copyfileobj(response, out, 1 << 20)
        except http.client.HTTPException as exc:  # e.g. IncompleteRead: the connection broke off
            raise OSError(f"download interrupted: {exc!r}") from exc
        size = out.tell()
    if expected is not None and size != int(expected):
        raise OSError(f"download incomplete: {size} of {expected} bytes")
    os.replace(tmp, dest)


def ensure_weights(name: str, timeout: float = CONNECT_TIMEOUT) -> Path:
    """Make sure the ImageNet weights of ``name`` are in the Keras cache; download them if needed.

    Raises
    ------
    WeightsUnavailableError
        When the file is not cached and cannot be downloaded (no network, server unreachable, ...).
    """
    spec = get_application(name)
    path = weights_path(name)
    if weights_cached(name):
        return path
    try:
        _download(spec.weights_url, path, timeout)
    except Exception as exc:  # every failure means the same to the user: no weights
        raise WeightsUnavailableError(
            f"ImageNet weights for {name} could not be downloaded (no network?). On a machine with internet "
            f"they download once to {path}; you can also copy that file there by hand from "
            f"{spec.weights_url}. Details: {type(exc).__name__}: {exc}"
        ) from exc
    return path


# ---------------------------------------------------------------------------------------------- loading
def load_application(name: str, weights: str | None = "imagenet") -> ModelBundle:
    """Build ``tf.keras.applications.<name>`` as a bundle.

    Parameters
    ----------
    name : a key of :data:`APPLICATIONS`, e.g. ``"MobileNetV2"``.
    weights : ``"imagenet"`` (pretrained; downloaded once, see :func:`ensure_weights`) or ``None`` (random
        initialisation: the architecture only, e.g. for tests).

    Returns
    -------
    ModelBundle
        Input ``(*spec.input_size, 3)``, 1000 ImageNet classes, logits model (built with
        ``classifier_activation=None`` where Keras allows it), ``preprocessing`` = the network's own
        ``preprocess_input``, ``source="keras.applications"``.

    Raises
    ------
    ModelLoadError
        Unknown ``name`` (the message lists the valid ones) or a damaged weights file.
    WeightsUnavailableError
        ``weights="imagenet"`` and the weights are neither cached nor downloadable.
    InvalidParameterError
        ``weights`` is neither ``"imagenet"`` nor ``None``.
    """
    spec = get_application(name)
    if weights not in ("imagenet", None):
        raise InvalidParameterError(f"weights must be 'imagenet' or None, not {weights!r}.")
    if weights == "imagenet":
        ensure_weights(name)
    constructor = spec.constructor
    kwargs: dict[str, Any] = {"weights": weights, "input_shape": (*spec.input_size, 3)}
    params = inspect.signature(constructor).parameters
    if "classifier_activation" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        kwargs["classifier_activation"] = None  # ResNet50/101/152 pass it on through **kwargs

    def factory() -> Any:
        try:
            return constructor(**kwargs)
        except ModelLoadError:
            raise
        except Exception as exc:
            if weights is None:
                raise
            raise ModelLoadError(
                f"The cached ImageNet weights of {name} could not be read ({exc}). Delete "
                f"{weights_path(name)} and load the model again to download a fresh copy."
            ) from exc

    return ModelBundle.create(
        factory,
        name=name if weights == "imagenet" else f"{name} (random weights)",
        preprocessing=spec.preprocessing,
        class_names=imagenet_class_names(),
        source="keras.applications",
        description=f"{spec.family} · ImageNet-1k · {spec.input_size[0]}×{spec.input_size[1]} input",
        info={
            "application": name,
            "family": spec.family,
            "weights": weights,
            "input_size": spec.input_size,
            "preprocessing": spec.module,
        },
    )
