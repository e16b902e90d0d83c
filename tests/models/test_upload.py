"""Where non-demo models come from: Keras applications, uploaded model files, zip archives, ImageNet names.

Small models are built and saved in **eager** mode (a clean file, reference predictions from the original
model), then loaded through XAI Lens in graph mode. No test touches the network: downloads are either
monkeypatched or served from localhost.
"""

from __future__ import annotations

import http.server
import inspect
import io
import os
import socket
import struct
import threading
import time
import urllib.error
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.eager import context

from xai_core.data.archive import safe_extract_zip
from xai_core.errors import (
    DatasetError,
    InvalidParameterError,
    ModelLoadError,
    WeightsUnavailableError,
)
from xai_core.models import applications as apps_mod
from xai_core.models.applications import (
    APPLICATIONS,
    ApplicationSpec,
    load_application,
    weights_cached,
)
from xai_core.models.bundle import PREPROCESSINGS, ModelBundle
from xai_core.models.imagenet import imagenet_class_names, imagenet_wnids
from xai_core.models.upload import find_lambda_layers, load_user_model

L = tf.keras.layers
SHAPE = (16, 16, 3)


@contextmanager
def eager() -> Iterator[None]:
    with context.eager_mode():
        yield


def images(n: int = 5, shape: tuple[int, ...] = SHAPE, seed: int = 0) -> np.ndarray:
    """Raw pixels in [0, 255]."""
    return (np.random.default_rng(seed).random((n, *shape)) * 255).astype(np.float32)


def small_cnn(head: str = "softmax", *, rescale: bool = False, classes: int = 3, seed: int = 0) -> Any:
    """Conv → BN → GAP → Dense(classes) with the given head; call inside :func:`eager`.

    BN statistics are randomised so that a loader that silently drops weights is caught.
    """
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input(SHAPE, name="image")
    x = L.Rescaling(1 / 255.0, name="rescale")(inp) if rescale else inp
    x = L.Conv2D(6, 3, activation="relu", name="conv")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    act = {"sigmoid": "sigmoid", "softmax": "softmax"}.get(head)
    out = L.Dense(classes, activation=act, name="scores")(x)
    if head == "softmax_layer":
        out = L.Softmax(name="probs")(out)
    elif head == "activation":
        out = L.Activation("softmax", name="probs")(out)
    model = tf.keras.Model(inp, out, name=f"cnn_{head}")
    bn = model.get_layer("bn")
    rng = np.random.default_rng(seed)
    bn.set_weights([w + rng.random(w.shape).astype(np.float32) for w in bn.get_weights()])
    return model


def eager_logits(model: Any, x: np.ndarray) -> np.ndarray:
    """Pre-activation scores of the last Dense layer named 'scores' (eager)."""
    dense = model.get_layer("scores")
    feat = tf.keras.Model(model.inputs, dense.input)(x).numpy()
    w, b = dense.get_weights()
    return feat @ w + b


# ---------------------------------------------------------------------------------------------- fixtures
def marker_function(path: str) -> Callable[[Any], Any]:
    """A Lambda body that leaves a marker file whenever it runs (its closure survives serialisation)."""

    def body(x: Any) -> Any:
        import pathlib

        pathlib.Path(path).write_text("the lambda body ran")
        return x

    return body


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Model files written in eager mode, with reference outputs of the original models."""
    d = tmp_path_factory.mktemp("models")
    marker = d / "lambda_ran.txt"
    x = images()
    out: dict[str, Any] = {"dir": d, "marker": marker, "x": x}
    with eager():
        m = small_cnn("softmax")
        out["ref"] = m(x / 255.0).numpy()
        m.save(d / "cnn.keras")
        m.save(d / "cnn.h5")
        m.save(d / "my_model", save_format="tf")
        m.save_weights(d / "weights_only.h5")
        for head in ("sigmoid", "softmax_layer", "activation", "linear"):
            hm = small_cnn(head, seed=1)
            out[f"head_{head}"] = (hm(x / 255.0).numpy(), eager_logits(hm, x / 255.0))
            hm.save(d / f"head_{head}.h5")
        r = small_cnn("softmax", rescale=True, seed=2)
        out["ref_rescale"] = r(x).numpy()
        r.save(d / "rescale.h5")
        # Lambda inside a nested Sequential: the scan must look into nested configs
        inp = tf.keras.Input(SHAPE)
        inner = tf.keras.Sequential([L.Lambda(marker_function(str(marker)), name="evil_lambda")], name="inner")
        y = L.GlobalAveragePooling2D()(inner(inp))
        lam = tf.keras.Model(inp, L.Dense(3, activation="softmax")(y))
        lam.save(d / "lambda.keras")
        lam.save(d / "lambda.h5")
        lam.save(d / "lambda_sm", save_format="tf")
        inp = tf.keras.Input(SHAPE)
        g = L.GlobalAveragePooling2D()(inp)
        tf.keras.Model(inp, [L.Dense(3)(g), L.Dense(2)(g)]).save(d / "two_outputs.keras")
        inp = tf.keras.Input((20,))
        tf.keras.Model(inp, L.Dense(3, activation="softmax")(inp)).save(d / "tabular.keras")
        inp = tf.keras.Input((8, 8, 3))
        tf.keras.Model(inp, L.Dense(1000)(L.GlobalAveragePooling2D()(inp))).save(d / "k1000.h5")
    assert marker.exists(), "building the Lambda model should have run its body once"
    marker.unlink()
    (d / "sm.zip").write_bytes(zip_dir(d / "my_model"))
    (d / "lambda_sm.zip").write_bytes(zip_dir(d / "lambda_sm"))
    return out


def zip_dir(folder: Path) -> bytes:
    """Zip ``folder`` the way a user would: entries under ``<folder name>/``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, f"{folder.name}/{p.relative_to(folder).as_posix()}")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- ImageNet
def test_imagenet_names_in_keras_order() -> None:
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    spot = {0: "tench", 1: "goldfish", 207: "golden retriever", 281: "tabby cat", 999: "toilet paper"}
    for index, name in spot.items():
        assert names[index].lower() == name, (index, names[index])
    # Keras' imagenet_class_index.json orders classes by WordNet id: the same ids at the same indices.
    wnids = imagenet_wnids()
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert (wnids[0], wnids[207], wnids[281], wnids[999]) == ("n01440764", "n02099601", "n02123045", "n15075141")


def test_imagenet_names_cached_but_caller_cannot_corrupt_them() -> None:
    a = imagenet_class_names()
    a[0] = "changed"
    assert imagenet_class_names()[0] == "tench"


# ---------------------------------------------------------------------------------------------- applications
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
    from keras.src.applications import imagenet_utils

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
    from keras.src.utils import data_utils

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
        def do_GET(self) -> None:  # noqa: N802 - http.server API
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


# ---------------------------------------------------------------------------------------------- archives
def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_extract_regular_archive(tmp_path: Path) -> None:
    data = make_zip({"a/one.txt": b"1", "a/b/two.txt": b"22", "top.txt": b"333"})
    out = safe_extract_zip(data, tmp_path / "out")
    root = (tmp_path / "out").resolve()
    assert out == [root / "a/one.txt", root / "a/b/two.txt", root / "top.txt"]
    assert [p.read_bytes() for p in out] == [b"1", b"22", b"333"]
    (tmp_path / "x.zip").write_bytes(data)
    assert len(safe_extract_zip(tmp_path / "x.zip", tmp_path / "out2")) == 3  # from a path too


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/abs/evil.txt", "C:/evil.txt",
                                  "..\\evil.txt"])
def test_extract_refuses_paths_leaving_the_target(tmp_path: Path, name: str) -> None:
    data = make_zip({"ok.txt": b"fine", name: b"evil"})
    assert name in zipfile.ZipFile(io.BytesIO(data)).namelist()  # the archive really holds that name
    with pytest.raises(DatasetError, match="outside the extraction folder"):
        safe_extract_zip(data, tmp_path / "out")
    assert not list(tmp_path.rglob("evil.txt")) and not (tmp_path / "out" / "ok.txt").exists()


def test_extract_refuses_symlinks(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        safe_extract_zip(buf.getvalue(), tmp_path / "out")
    assert not (tmp_path / "out" / "link").exists()


def _bomb(size: int, declared: int | None = None) -> bytes:
    """``size`` zero bytes deflated; optionally with a lying uncompressed size in both headers."""
    data = bytearray(make_zip({"zeros.bin": bytes(size)}))
    if declared is not None:
        assert data[:4] == b"PK\x03\x04"
        struct.pack_into("<I", data, 22, declared)  # local file header: uncompressed size
        central = data.find(b"PK\x01\x02")
        struct.pack_into("<I", data, central + 24, declared)  # central directory: uncompressed size
    return bytes(data)


def test_extract_refuses_zip_bomb_by_declared_size(tmp_path: Path) -> None:
    bomb = _bomb(50 * 1024**2)
    assert len(bomb) < 200_000  # 50 MB compressed to a tiny upload
    with pytest.raises(DatasetError, match="unpacks to 50.0 MB; at most 10.0 MB"):
        safe_extract_zip(bomb, tmp_path / "out", max_bytes=10 * 1024**2)
    assert not (tmp_path / "out").exists()  # refused before anything was created


def test_extract_refuses_zip_bomb_with_lying_header(tmp_path: Path) -> None:
    bomb = _bomb(50 * 1024**2, declared=1024)
    assert zipfile.ZipFile(io.BytesIO(bomb)).infolist()[0].file_size == 1024
    with pytest.raises(DatasetError):
        safe_extract_zip(bomb, tmp_path / "out", max_bytes=10 * 1024**2)
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == 0  # partial output removed; never more than the declared bytes were read


def test_extract_counts_the_bytes_it_really_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython's zipfile already stops at the declared size (CRC error above); the byte count of our own
    is the independent guard. Simulate a decompressor that yields more than the header says."""
    data = make_zip({"small.bin": b"x" * 100})
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *a, **k: io.BytesIO(bytes(3 * 1024**2)))
    with pytest.raises(DatasetError, match="more bytes than its header declares"):
        safe_extract_zip(data, tmp_path / "out", max_bytes=10 * 1024**2)
    assert not (tmp_path / "out" / "small.bin").exists()


def test_extract_refuses_too_many_files(tmp_path: Path) -> None:
    data = make_zip({f"f{i}.txt": b"x" for i in range(6)})
    with pytest.raises(DatasetError, match="holds 6 files; at most 5"):
        safe_extract_zip(data, tmp_path / "out", max_files=5)
    assert len(safe_extract_zip(data, tmp_path / "ok", max_files=6)) == 6


def test_extract_refuses_non_zip_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a zip archive"):
        safe_extract_zip(b"just some text, not a zip", tmp_path / "out")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    with pytest.raises(DatasetError, match="'photo.jpg' is not a zip archive"):
        safe_extract_zip(tmp_path / "photo.jpg", tmp_path / "out")
    with pytest.raises(DatasetError, match="does not exist"):
        safe_extract_zip(tmp_path / "missing.zip", tmp_path / "out")


# ---------------------------------------------------------------------------------------------- bad uploads
@pytest.mark.parametrize(("filename", "message"), [
    ("random.keras", "not a model file: a .keras model is a zip archive"),
    ("random.h5", "not a model file: a .h5 model is an HDF5 file"),
    ("random.zip", "not a model file"),
])
def test_random_bytes_are_not_a_model(filename: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_user_model(np.random.default_rng(1).bytes(5000), filename)


def test_text_renamed_keras(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    path.write_text("hello, I am a text file\n")
    with pytest.raises(ModelLoadError, match=r"holds text \('hello, I am a text file'"):
        load_user_model(path)


def test_unknown_extension_and_missing_name() -> None:
    with pytest.raises(ModelLoadError, match=r"unsupported file type '\.pt'.*\.keras, \.h5, \.hdf5, \.zip"):
        load_user_model(b"whatever", "model.pt")
    with pytest.raises(ModelLoadError, match="name is needed"):
        load_user_model(b"whatever")
    with pytest.raises(ModelLoadError, match="is empty"):
        load_user_model(b"", "model.h5")


@pytest.mark.parametrize("filename", ["cnn.keras", "cnn.h5"])
def test_truncated_files_are_damaged(files: dict[str, Any], filename: str) -> None:
    data = (files["dir"] / filename).read_bytes()
    with pytest.raises(ModelLoadError, match="damaged"):
        load_user_model(data[: len(data) // 2], filename)


def test_weights_only_h5_and_zip_without_model(files: dict[str, Any]) -> None:
    with pytest.raises(ModelLoadError, match="holds only weights"):
        load_user_model(files["dir"] / "weights_only.h5")
    with pytest.raises(ModelLoadError, match="neither a Keras model .* nor a TensorFlow SavedModel"):
        load_user_model(make_zip({"readme.txt": b"hi"}), "model.zip")


@pytest.mark.parametrize("filename", ["lambda.keras", "lambda.h5", "lambda_sm.zip"])
def test_lambda_layer_is_refused_and_never_runs(files: dict[str, Any], filename: str) -> None:
    marker: Path = files["marker"]
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match="contains a Lambda layer \\('evil_lambda'\\)"):
        load_user_model(files["dir"] / filename)
    assert not marker.exists(), "the Lambda body was executed"


def test_lambda_in_h5_is_stopped_by_safe_mode_even_without_the_scan(
        files: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Second line of defence: Keras ignores safe_mode=True for .h5, so the loader also enters Keras'
    SafeModeScope; with the config scan switched off, the Lambda is still refused and never runs."""
    import xai_core.models.upload as upload

    monkeypatch.setattr(upload, "_check_config", lambda config, filename: None)
    marker: Path = files["marker"]
    marker.unlink(missing_ok=True)
    with pytest.raises(ModelLoadError, match="deserialization of a Lambda layer"):
        load_user_model(files["dir"] / "lambda.h5")
    assert not marker.exists()


@pytest.mark.parametrize("filename", ["lambda.keras", "lambda.h5"])
def test_lambda_marker_proves_keras_would_run_it(files: dict[str, Any], filename: str) -> None:
    """Control: loading the same file with plain Keras (unsafe) runs the body and leaves the marker."""
    marker: Path = files["marker"]
    marker.unlink(missing_ok=True)
    with tf.Graph().as_default():
        tf.keras.models.load_model(files["dir"] / filename, compile=False, safe_mode=False)
    assert marker.exists()
    marker.unlink()


def test_find_lambda_layers_inside_wrappers() -> None:
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "TimeDistributed", "config": {"layer": {"class_name": "Lambda", "config": {"name": "a"}}}},
        {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {"name": "b"}}]}},
        {"class_name": "TFOpLambda", "config": {"name": "tf.math.add"}},
    ]}}
    assert find_lambda_layers(config) == ["a", "b"]
    assert find_lambda_layers({"class_name": "Dense", "config": {"name": "Lambda"}}) == []


def test_model_without_defined_input_is_explained() -> None:
    from xai_core.models.graph import validate_classifier

    with tf.Graph().as_default(), pytest.raises(ModelLoadError, match="no defined input.*keras.Input"):
        validate_classifier(tf.keras.Sequential([L.Dense(3)]))


def test_two_outputs_and_non_image_input(files: dict[str, Any]) -> None:
    with pytest.raises(ModelLoadError, match="2 outputs; XAI Lens needs exactly one output"):
        load_user_model(files["dir"] / "two_outputs.keras")
    with pytest.raises(ModelLoadError, match=r"shape \(None, 20\), not an image batch"):
        load_user_model(files["dir"] / "tabular.keras")


def test_keras_errors_are_wrapped(files: dict[str, Any]) -> None:
    data = bytearray((files["dir"] / "cnn.keras").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries["config.json"] = entries["config.json"].replace(b'"Conv2D"', b'"MyFancyConv"')
    with pytest.raises(ModelLoadError, match="layer types that are not part of Keras: MyFancyConv"):
        load_user_model(make_zip(entries), "custom.keras")
    # a config Keras itself rejects: the original message is appended to ours
    entries["config.json"] = entries["config.json"].replace(b'"MyFancyConv"', b'"Conv2D"').replace(
        b'"kernel_size"', b'"kernel_sighs"')
    with pytest.raises(ModelLoadError, match="Keras could not load the Keras .* Original error: .*kernel_sighs"):
        load_user_model(make_zip(entries), "broken.keras")
    # the same failure in a file written by Keras 3 says why (TensorFlow >= 2.16 saves Keras 3 files)
    entries["metadata.json"] = entries["metadata.json"].replace(b'"2.14.0"', b'"3.3.3"')
    assert b'"3.3.3"' in entries["metadata.json"]
    with pytest.raises(ModelLoadError, match="saved with Keras 3.3.3; XAI Lens runs Keras 2.14"):
        load_user_model(make_zip(entries), "keras3.keras")


def test_bad_preprocessing_choice() -> None:
    with pytest.raises(InvalidParameterError, match="Unknown preprocessing 'imagenet'.*auto, unit"):
        load_user_model(b"never read", "m.keras", preprocessing="imagenet")


# ---------------------------------------------------------------------------------------------- good uploads
@pytest.mark.parametrize(("filename", "fmt"), [("cnn.keras", "keras"), ("cnn.h5", "h5"), ("sm.zip", "savedmodel")])
def test_round_trip_predictions_are_identical(files: dict[str, Any], filename: str, fmt: str) -> None:
    path = files["dir"] / filename
    bundle = load_user_model(path.read_bytes(), filename)  # as from st.file_uploader
    assert bundle.info["format"] == fmt and bundle.source == "upload" and bundle.name == Path(filename).stem
    assert bundle.head == "softmax" and bundle.preprocessing.name == "unit"
    assert bundle.class_names == ["class 0", "class 1", "class 2"]
    np.testing.assert_allclose(bundle.predict(files["x"]), files["ref"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("head", "expected"), [
    ("sigmoid", "sigmoid"), ("softmax_layer", "softmax"), ("activation", "softmax"), ("linear", "none"),
])
def test_heads_are_split_off(files: dict[str, Any], head: str, expected: str) -> None:
    outputs, logits = files[f"head_{head}"]
    bundle = load_user_model(files["dir"] / f"head_{head}.h5")
    assert bundle.head == expected
    x = bundle.preprocess(files["x"])
    np.testing.assert_allclose(bundle.logits(x), logits, rtol=1e-5, atol=1e-5)
    if head == "linear":
        np.testing.assert_allclose(bundle.logits(x), outputs, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(bundle.predict(files["x"]), outputs, rtol=1e-5, atol=1e-6)
        assert type(bundle.model.layers[-1]).__name__ == "Dense"


def test_auto_preprocessing_and_explicit_choice(files: dict[str, Any]) -> None:
    raw = load_user_model(files["dir"] / "rescale.h5")
    assert raw.preprocessing.name == "raw"
    np.testing.assert_allclose(raw.predict(files["x"]), files["ref_rescale"], rtol=1e-5, atol=1e-6)
    caffe = load_user_model(files["dir"] / "cnn.h5", preprocessing="caffe", name="mine")
    assert caffe.preprocessing.name == "caffe" and caffe.name == "mine"
    assert caffe.info["preprocessing_auto"] is False


def test_class_names(files: dict[str, Any]) -> None:
    assert load_user_model(files["dir"] / "k1000.h5").class_names == imagenet_class_names()
    named = load_user_model(files["dir"] / "cnn.h5", class_names=["cat", "dog", "bird"])
    assert named.class_names == ["cat", "dog", "bird"]
    with pytest.raises(ModelLoadError, match="3 outputs but 2 class names"):
        load_user_model(files["dir"] / "cnn.h5", class_names=["cat", "dog"])


# ---------------------------------------------------------------------------------------------- nesting
def test_nested_mobilenet_is_flattened_with_equal_logits(tmp_path: Path) -> None:
    x = images(3, (32, 32, 3), seed=7)
    with eager():
        tf.keras.utils.set_random_seed(3)
        base = tf.keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
        rng = np.random.default_rng(3)
        for layer in base.layers:  # non-trivial BN statistics, so the activations are far from zero
            if isinstance(layer, L.BatchNormalization):
                g, b, mean, var = layer.get_weights()
                layer.set_weights([g, rng.normal(0, 0.5, b.shape).astype(np.float32), mean, var])
        model = tf.keras.Sequential([base, L.GlobalAveragePooling2D(), L.Dense(3, activation="softmax",
                                                                                name="scores")])
        ref_probs = model(x / 255.0).numpy()
        ref_logits = eager_logits(model, x / 255.0)
        inner_names = {layer.name for layer in base.layers}
        model.save(tmp_path / "transfer.h5")
    bundle = load_user_model(tmp_path / "transfer.h5")
    assert bundle.info["flattened"] is True and bundle.head == "softmax"
    assert not any(isinstance(layer, tf.keras.Model) for layer in bundle.model.layers)
    names = {layer.name for layer in bundle.layers}
    assert inner_names - {base.layers[0].name} <= names  # every inner layer is visible (not its Input)
    assert np.abs(ref_logits).max() > 1e-2
    np.testing.assert_allclose(bundle.logits(bundle.preprocess(x)), ref_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bundle.predict(x), ref_probs, rtol=1e-4, atol=1e-6)
    assert bundle.activations(bundle.preprocess(x), "Conv1").shape == (3, 16 * 16 * 32)


def test_nested_twice_with_clashing_names_is_analysable(tmp_path: Path) -> None:
    import innvestigate

    x = images(2, seed=9)
    with eager():
        tf.keras.utils.set_random_seed(4)
        i0 = tf.keras.Input(SHAPE)
        inner = tf.keras.Model(i0, L.BatchNormalization(name="bn")(L.Conv2D(4, 3, name="conv", activation="relu")(i0)),
                               name="inner")
        i1 = tf.keras.Input(SHAPE)
        mid = tf.keras.Model(i1, L.Conv2D(5, 3, name="conv2", activation="relu")(inner(i1, training=False)),
                             name="mid")
        i2 = tf.keras.Input(SHAPE)
        h = L.Conv2D(6, 3, name="conv", activation="relu")(mid(i2))  # same name as the innermost conv
        h = L.Dropout(0.5)(L.GlobalAveragePooling2D()(h))
        outer = tf.keras.Model(i2, L.Dense(3, activation="softmax", name="scores")(h), name="outer")
        ref = outer(x / 255.0).numpy()
        outer.save(tmp_path / "nested.keras")
    bundle = load_user_model(tmp_path / "nested.keras")
    names = [layer.name for layer in bundle.layers]
    assert len(names) == len(set(names)) and {"conv", "outer_conv", "conv2", "bn"} <= set(names)
    np.testing.assert_allclose(bundle.predict(x), ref, rtol=1e-5, atol=1e-6)
    # iNNvestigate sees plain layers (LRP needs a rule for each of them), and several analyzers can be built
    # on one bundle: a BatchNormalization replayed with a static training=False breaks the second one
    # (Keras wraps the FusedBatchNormV3 op that the first analyzer's gradients touch into an op-layer and
    # overwrites the BN output's Keras history; iNNvestigate then loses the path back to the input).
    with bundle.scope():
        for method in ("gradient", "lrp.epsilon", "guided_backprop"):
            analyzer = innvestigate.create_analyzer(method, bundle.model, neuron_selection_mode="index")
            maps = analyzer.analyze(bundle.preprocess(x), neuron_selection=np.array([0, 1]))
            assert maps.shape == (2, *SHAPE) and np.isfinite(maps).all() and np.abs(maps).sum() > 0, method


# ---------------------------------------------------------------------------------------------- layer names
def test_default_layer_names_of_another_process_do_not_clash(tmp_path: Path) -> None:
    """A model saved elsewhere keeps Keras' default names (``input_1``, ``conv2d``, ``conv2d_1`` …) while the
    bundle's fresh graph counts from zero: Integrated Gradients' unnamed reference Input was then called
    ``input_1`` too and failed with 'The name "input_1" is used 2 times in the model' (seen on an uploaded
    ResNet50). Names are now reserved at load time, for any default names."""
    from keras.src import backend

    with eager():
        tf.keras.utils.set_random_seed(5)
        inp = L.Input(SHAPE, name="input_1")
        x = L.Conv2D(4, 3, activation="relu", name="conv2d")(inp)
        x = L.Conv2D(4, 3, activation="relu", name="conv2d_1")(x)
        model = tf.keras.Model(inp, L.Dense(3, name="dense")(L.Flatten(name="flatten")(x)))
        model.save(tmp_path / "defaults.keras")
    bundle = load_user_model(tmp_path / "defaults.keras")
    taken = {layer.name for layer in bundle.model.layers}
    with bundle.scope():
        fresh = [L.InputLayer(SHAPE).name, L.Conv2D(2, 1).name, L.Conv2D(2, 1).name, L.Dense(2).name]
        assert not taken & set(fresh), fresh
        assert backend.get_uid("input") >= 2
    from xai_core.methods import explain

    x = images(3)
    for method in ("gradcam", "gradient", "integrated_gradients"):  # the order that failed
        e = explain(bundle, method, x)
        assert np.isfinite(e.maps).all() and np.abs(e.maps).sum() > 0, method
