"""The Keras applications catalogue and its weights downloads (xai_core.models.applications).

No test touches the network: downloads are either monkeypatched or served from localhost.
"""

from __future__ import annotations

import http.server
import inspect
import os
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from model_files import images

from xai_core.errors import InvalidParameterError, ModelLoadError, WeightsUnavailableError
from xai_core.models import applications as apps_mod
from xai_core.models.applications import (
    APPLICATIONS,
    ApplicationSpec,
    load_application,
    weights_cached,
)
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.models.imagenet import imagenet_class_names


def _public_classifiers() -> set[str]:
    """Every model constructor tf.keras.applications exports, at top level or in a submodule."""
    found = set()
    for name, obj in vars(tf.keras.applications).items():
        if inspect.ismodule(obj):
            found |= {n for n, f in vars(obj).items() if n[:1].isupper() and callable(f)}
        elif name[:1].isupper() and callable(obj):
            found.add(name)
    return found


def test_catalogue_covers_every_keras_application() -> None:
    expected = {
        "VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2",
        "MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "Xception", "InceptionV3",
        "InceptionResNetV2", "DenseNet121", "DenseNet169", "DenseNet201", "NASNetMobile", "NASNetLarge",
        *(f"EfficientNetB{i}" for i in range(8)),
        *(f"EfficientNetV2{s}" for s in ("B0", "B1", "B2", "B3", "S", "M", "L")),
        *(f"ConvNeXt{s}" for s in ("Tiny", "Small", "Base", "Large", "XLarge")),
        *(f"RegNet{k}{n}" for k in "XY" for n in ("002", "004", "006", "008", "016", "032", "040", "064",
                                                   "080", "120", "160", "320")),
        *(f"ResNetRS{d}" for d in (50, 101, 152, 200, 270, 350, 420)),
    }
    public = _public_classifiers()
    assert set(APPLICATIONS) == public
    assert expected <= public and len(APPLICATIONS) == 71
    for name, spec in APPLICATIONS.items():
        assert isinstance(spec, ApplicationSpec) and spec.name == name
        assert callable(getattr(tf.keras.applications, spec.module).preprocess_input)


def test_catalogue_input_sizes_are_keras_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each constructor asks imagenet_utils.obtain_input_shape for its default size before building."""
    from tf_keras.src.applications import imagenet_utils

    class Got(Exception):
        pass

    def capture(input_shape: Any, default_size: int, *args: Any, **kwargs: Any) -> None:
        raise Got(default_size)

    monkeypatch.setattr(imagenet_utils, "obtain_input_shape", capture)
    checked = 0
    for name, spec in APPLICATIONS.items():
        if spec.module == "mobilenet_v3":  # builds (None, None, 3) without asking; its weights are 224
            assert spec.input_size == (224, 224) and "224" in spec.weights_file
            continue
        with tf.Graph().as_default(), pytest.raises(Got) as got:
            spec.constructor(weights=None)
        assert spec.input_size == (got.value.args[0],) * 2, name
        checked += 1
    assert checked == 69


_EQUIVALENT = {"caffe": "caffe", "tf": "symmetric", "torch": "torch", "raw": "raw"}


@pytest.mark.parametrize("name", sorted(APPLICATIONS))
def test_application_preprocessing_is_keras_own(name: str) -> None:
    spec = APPLICATIONS[name]
    x = images(2, (6, 7, 3), seed=3)
    before = x.copy()
    keras_fn = getattr(tf.keras.applications, spec.module).preprocess_input
    ours = spec.preprocessing(x)
    np.testing.assert_array_equal(x, before)  # the caller's array is never modified
    np.testing.assert_allclose(ours, keras_fn(x.copy()), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(ours, PREPROCESSINGS[_EQUIVALENT[spec.convention]](x), rtol=1e-5, atol=1e-4)
    assert spec.preprocessing.name == spec.module


# One representative per naming rule of the weights files. Each builds a full graph, so by default only
# three cheap ones run; XAI_LENS_SLOW=1 checks one network of every module (minutes; rerun after a Keras
# upgrade).
_CHEAP_REPRESENTATIVES = ["VGG16", "MobileNet", "ConvNeXtTiny"]
_MORE_REPRESENTATIVES = [
    "VGG19", "ResNet50", "ResNet50V2", "ResNetRS50", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large",
    "Xception", "InceptionV3", "InceptionResNetV2", "DenseNet169", "EfficientNetB0", "EfficientNetV2S",
    "NASNetMobile", "RegNetY002",
]
_slow = pytest.mark.skipif(not os.environ.get("XAI_LENS_SLOW"), reason="set XAI_LENS_SLOW=1 (builds 15 networks)")


@pytest.mark.parametrize("name", [*_CHEAP_REPRESENTATIVES,
                                  *(pytest.param(n, marks=[pytest.mark.slow, _slow]) for n in _MORE_REPRESENTATIVES)])
def test_weights_file_is_what_keras_downloads(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tf_keras.src.utils import data_utils

    class Got(Exception):
        pass

    def capture(fname: str | None = None, origin: str | None = None, **kwargs: Any) -> None:
        raise Got(fname, origin)

    monkeypatch.setattr(data_utils, "get_file", capture)
    spec = APPLICATIONS[name]
    with tf.Graph().as_default(), pytest.raises(Got) as got:
        spec.constructor(weights="imagenet", classifier_activation=None)
    assert got.value.args == (spec.weights_file, spec.weights_url)


def test_every_module_has_a_weights_representative() -> None:
    modules = {APPLICATIONS[n].module for n in _CHEAP_REPRESENTATIVES + _MORE_REPRESENTATIVES}
    assert modules == {spec.module for spec in APPLICATIONS.values()}


def test_unknown_application_lists_valid_names() -> None:
    with pytest.raises(ModelLoadError, match="Unknown Keras application 'MobileNetV9'.*MobileNetV2"):
        load_application("MobileNetV9")
    with pytest.raises(InvalidParameterError):
        load_application("MobileNetV2", weights="cifar10")


@pytest.fixture(scope="module")
def mobilenet_v2() -> ModelBundle:
    return load_application("MobileNetV2", weights=None)


def test_mobilenet_v2_bundle(mobilenet_v2: ModelBundle) -> None:
    b = mobilenet_v2
    assert b.input_shape == (224, 224, 3) and b.num_classes == 1000
    assert b.class_names == imagenet_class_names() and b.source == "keras.applications"
    # built with classifier_activation=None: the bundle's model ends in a linear Dense
    assert b.head == "none" and b.model.layers[-1].activation.__name__ == "linear"
    assert b.info["family"] == "MobileNetV2" and b.info["weights"] is None
    x = images(2, (224, 224, 3), seed=5)
    np.testing.assert_allclose(b.preprocess(x), tf.keras.applications.mobilenet_v2.preprocess_input(x.copy()),
                               atol=1e-6)
    p = b.predict(x)
    assert p.shape == (2, 1000)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_offline_imagenet_weights_raise_quickly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []

    def offline(url: str, dest: Path, timeout: float = 10.0) -> None:
        calls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("no model may be built when the weights are missing")

    monkeypatch.setattr(apps_mod, "keras_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(apps_mod, "_download", offline)
    monkeypatch.setattr(ModelBundle, "create", never)
    assert not weights_cached("MobileNetV2")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        load_application("MobileNetV2")
    assert time.perf_counter() - start < 2.0
    message = str(err.value)
    assert "ImageNet weights for MobileNetV2 could not be downloaded (no network?)" in message
    assert str(tmp_path / APPLICATIONS["MobileNetV2"].weights_file) in message and "by hand" in message
    assert calls == [APPLICATIONS["MobileNetV2"].weights_url]
    (tmp_path / APPLICATIONS["MobileNetV2"].weights_file).write_bytes(b"weights")
    assert weights_cached("MobileNetV2")


@contextmanager
def local_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_is_bounded_when_the_server_never_answers(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never sends a byte
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/w.h5"
        start = time.perf_counter()
        with pytest.raises(TimeoutError, match="no answer"):
            apps_mod._download(url, tmp_path / "w.h5", timeout=1.0)
        assert time.perf_counter() - start < 3.0
    assert not (tmp_path / "w.h5").exists()


def test_download_writes_the_file_atomically(tmp_path: Path) -> None:
    payload = np.random.default_rng(0).bytes(300_000)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/cut.h5":  # announces more bytes than it sends, then hangs up
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[:1000])
                self.close_connection = True
                return
            if self.path != "/w.h5":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    with local_server(Handler) as base:
        apps_mod._download(f"{base}/w.h5", tmp_path / "w.h5", timeout=5.0)
        assert (tmp_path / "w.h5").read_bytes() == payload
        with pytest.raises(urllib.error.HTTPError):
            apps_mod._download(f"{base}/missing.h5", tmp_path / "missing.h5", timeout=5.0)
        with pytest.raises(OSError, match="interrupted|incomplete"):
            apps_mod._download(f"{base}/cut.h5", tmp_path / "cut.h5", timeout=5.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.h5"]  # no .part leftovers
