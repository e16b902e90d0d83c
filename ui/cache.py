"""Every Streamlit cache of the app, in one place. Models: ``st.cache_resource`` (one bundle per model for the whole
server, within the memory budget); data: ``st.cache_data`` with explicit string keys (``_`` arguments are not hashed:
the keys before them identify them); long computations that draw a progress bar: a server-wide LRU store
(:func:`computed`), because ``st.cache_data`` would replay the bar."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from ui.feedback import Progress, progress
from ui.run import pin, pinned
from ui.uploads import upload_of
from xai_core import runtime
from xai_core.analysis.dataset_pass import DatasetPass, dataset_pass
from xai_core.analysis.explore.embedding import Embedding, tsne
from xai_core.analysis.explore.metrics import Predictions
from xai_core.data.dataset import Dataset, demo_dataset, extraction_folder, open_folder, open_zip
from xai_core.data.gallery import GalleryImage, demo_images, photos
from xai_core.data.images import FitMode, fit_to_model, to_display
from xai_core.data.inputs import ImageItem, content_key, decode_uploads, fit_key
from xai_core.errors import ModelLoadError, WeightsUnavailableError, XaiLensError
from xai_core.methods import Explanation, Target, explain, get_method
from xai_core.models.applications import load_application
from xai_core.models.bundle import ModelBundle
from xai_core.models.demo import load_demo_model
from xai_core.models.memory import Ledger, budget_bytes, build_cost, load_cost, release_memory, rss_bytes
from xai_core.models.upload import load_user_model
from xai_core.quality import SanityResult, TrustReport, cascading_randomization, dataset_metrics, trust_report
from xai_core.quality.scale import localisation_leaderboard

MAX_UPLOAD_SIDE = 1024  # uploaded photos are downscaled to this once; models take a few hundred pixels at most
APP_RETRY_S = 60.0  # a failed ImageNet weights download is not retried on every rerun
DATASET_DIR = Path(tempfile.gettempdir()) / "xai-lens-datasets"
#: Guards every store shared by all sessions (uploads, download failures, sanity flags, long computations): each
#: session's script runs in its own thread, and a dict changed while another thread iterates over it raises.
STORES_LOCK = threading.RLock()


# ------------------------------------------------------------------------------------------- models
@st.cache_resource(show_spinner="Loading the demo model …")  # bounded by the memory budget
def demo_model(model_id: str) -> ModelBundle:
    return load_demo_model(model_id)


def get_model(key: str) -> ModelBundle:
    """A loaded model by key: ``demo:<id>``, ``app:<Name>`` (a ``keras.applications`` network with ImageNet
    weights) or ``upload:...`` (a user's model registered with :func:`register_upload`). A model not loaded yet
    first gets room in the memory budget (:func:`make_room`). Every model comes from here, so the process-wide setup
    (:func:`xai_core.runtime.install`) runs here: after the page drew its title (TensorFlow takes seconds to start)."""
    runtime.install()
    ledger = memory_ledger()
    pin(key)
    with STORES_LOCK:
        known = key in ledger.entries
    if known:
        with STORES_LOCK:
            ledger.touch(key)
        return _load(key)
    make_room(key, load_cost(_weight_bytes(key)), "Loading this model")
    before = rss_bytes()
    bundle = _load(key)
    with STORES_LOCK:
        ledger.charge(key, max(rss_bytes() - before, load_cost(4 * bundle.num_params)))
        _loaded()[key] = bundle
    return bundle


def _load(key: str) -> ModelBundle:
    source, _, name = key.partition(":")
    if source == "demo":
        return demo_model(name)
    if source == "app":
        return application_model(name)
    if source == "upload":
        return uploaded_model(key)
    raise XaiLensError(f"Unknown model '{key}'.")


# ------------------------------------------------------------------------------------------- memory budget
@st.cache_resource(show_spinner=False)
def memory_ledger() -> Ledger:
    """The server's memory accounting (:mod:`xai_core.models.memory`); budget from XAI_LENS_MEMORY_BUDGET_MB."""
    return Ledger(budget_bytes())


@st.cache_resource(show_spinner=False)
def _loaded() -> dict[str, ModelBundle]:  # the bundles the ledger accounts for, to close when unloaded
    return {}


def _weight_bytes(key: str) -> int:
    """Bytes of weights a model will hold, estimated before it is loaded (an upload: its file size)."""
    source = key.partition(":")[0]
    if source == "upload":
        try:
            return len(upload_of(key)[0])
        except ModelLoadError:
            return 0
    if source == "app":
        return 600 * 1024**2  # up to VGG16's 553 MB of weights: assume the worst until the weights are known
    return 4 * 1024**2  # the demo models hold well under a million parameters


def unload(key: str) -> None:
    """Close a model's session, drop its graph and its cache entry, so its memory really comes back."""
    source, _, name = key.partition(":")
    with STORES_LOCK:
        bundle = _loaded().pop(key, None)
        memory_ledger().forget(key)
    {"demo": lambda: demo_model.clear(name), "app": lambda: _application.clear(name),
     "upload": lambda: uploaded_model.clear(key)}.get(source, lambda: None)()
    if bundle is not None:
        bundle.close()


def make_room(key: str, need: int, what: str) -> list[str]:
    """Unload least recently used models until ``need`` more bytes for ``key`` fit the budget, and say so in the
    page; raises :class:`~xai_core.models.memory.MemoryBudgetError` when ``key`` cannot fit at all."""
    ledger = memory_ledger()
    with STORES_LOCK:
        evict = [str(k) for k in ledger.plan(key, need, what, protect=pinned())]
    for other in evict:
        unload(other)
    if evict:
        release_memory()
        names = ", ".join(k.split(":", 1)[-1][:40] for k in evict)
        st.info(f"Unloaded {len(evict)} model(s) used least recently ({names}) to stay within this server's memory "
                f"budget of {ledger.budget / 1024**3:.1f} GB; they load again when you choose them.",
                icon=":material/memory:")
    return evict


def reserve_build(model_key: str, bundle: ModelBundle) -> None:
    """Room for one more analyzer of ``bundle`` (see :func:`xai_core.models.memory.build_cost`)."""
    need = build_cost(4 * bundle.num_params, bundle.input_size[0] * bundle.input_size[1])
    make_room(model_key, need, f"Building an explanation for {bundle.name}")


def charge_build(model_key: str, nbytes: int) -> None:  # what a build really added to the model's memory
    with STORES_LOCK:
        if model_key in memory_ledger().entries:
            memory_ledger().charge(model_key, nbytes)


@st.cache_resource(show_spinner=False)
def _download_failures() -> dict[str, tuple[float, str]]:  # network name → (when, why) its weights failed
    return {}


@st.cache_resource(show_spinner="Building the Keras network (first use only) …")  # bounded by the memory budget
def _application(name: str) -> ModelBundle:
    return load_application(name)


def application_model(name: str) -> ModelBundle:
    """``keras.applications.<name>`` with ImageNet weights; offline the download error is remembered briefly."""
    with STORES_LOCK:
        failed = _download_failures().get(name)
    if failed and time.monotonic() - failed[0] < APP_RETRY_S:
        raise WeightsUnavailableError(failed[1])
    try:
        return _application(name)
    except WeightsUnavailableError as exc:
        with STORES_LOCK:
            _download_failures()[name] = (time.monotonic(), str(exc))
        raise


@st.cache_resource(show_spinner="Loading your model …")  # bounded by the memory budget
def uploaded_model(key: str) -> ModelBundle:
    data, filename, preprocessing, classes = upload_of(key)
    return load_user_model(data, filename, preprocessing=preprocessing,
                           class_names=list(classes) if classes else None)


# ------------------------------------------------------------------------------------------- images
@lru_cache(maxsize=1)
def gallery() -> dict[str, GalleryImage]:
    """The offline gallery: photos, then two test images per class of each demo data set."""
    return {g.key: g for g in (*photos(), *demo_images("digits"), *demo_images("shapes"))}


@st.cache_data(show_spinner="Reading the uploaded images …", max_entries=64)
def decoded_uploads(file_keys: tuple[str, ...], _files: tuple[tuple[str, bytes], ...],
                    ) -> tuple[list[ImageItem], list[str]]:
    """:func:`xai_core.data.inputs.decode_uploads` of ``_files`` (identified by ``file_keys``)."""
    return decode_uploads(_files, max_side=MAX_UPLOAD_SIDE)


@st.cache_data(show_spinner=False, max_entries=512)
def _fitted(key: str, size: tuple[int, int], channels: int, mode: FitMode, _pixels: np.ndarray) -> np.ndarray:
    return fit_to_model(_pixels, size, channels, mode)[None]


def model_input(item: ImageItem, bundle: ModelBundle, mode: FitMode) -> tuple[str, np.ndarray]:
    """``(cache key, float32 (1, H, W, C))`` of ``item`` fitted to ``bundle``'s input with fit ``mode``."""
    key = fit_key(item.key, bundle.input_size, bundle.channels, mode)
    return key, _fitted(key, bundle.input_size, bundle.channels, mode, item.pixels)


def display_input(item: ImageItem, size: tuple[int, int], mode: FitMode) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` of ``item`` fitted to ``size`` (the picture a compare grid draws maps over)."""
    return to_display(_fitted(fit_key(item.key, size, 3, mode), size, 3, mode, item.pixels)[0])


# ------------------------------------------------------------------------------------------- maps
@st.cache_data(show_spinner=False, max_entries=512)
def predictions(model_key: str, image_key: str, _images: np.ndarray) -> np.ndarray:
    """Probabilities ``(N, classes)`` of ``_images`` (identified by ``image_key``) under model ``model_key``."""
    return get_model(model_key).predict(_images)


def params_key(params: dict[str, Any]) -> str:  # a stable key of a parameter dict
    return repr(sorted(params.items()))


@st.cache_data(show_spinner=False, max_entries=256)
def _explanation(model_key: str, method_id: str, image_key: str, target: Target, params_key: str,
                 _images: np.ndarray, _params: dict[str, Any]) -> Explanation:
    return explain(get_model(model_key), method_id, _images, target, _params)


def explanation(model_key: str, method_id: str, image_key: str, target: Target, params: dict[str, Any],
                images: np.ndarray) -> Explanation:
    """Maps of ``images`` (identified by ``image_key``), cached per model, method, target and parameters."""
    return _explanation(model_key, method_id, image_key, target, params_key(params), images, params)


# ------------------------------------------------------------------------------------------- data sets
@st.cache_resource(show_spinner="Reading the data set …", max_entries=8)
def demo_data(name: str, split: str) -> Dataset:
    return demo_dataset(name, split)


@st.cache_resource(show_spinner="Unpacking and checking the archive …", max_entries=4)
def _zip_dataset(digest: str, name: str, _data: bytes) -> Dataset:
    return open_zip(_data, DATASET_DIR, name=name)


def zip_dataset(data: bytes, name: str) -> Dataset:
    """The data set in an uploaded zip, unpacked once per content (again if the disk budget's clean-up removed
    it to make room for other archives)."""
    if not (extraction_folder(data, DATASET_DIR) / ".complete").exists():
        _zip_dataset.clear(content_key(data), name, data)
    return _zip_dataset(content_key(data), name, data)


@st.cache_resource(show_spinner="Scanning the folder …", max_entries=4)
def folder_dataset(path: str) -> Dataset:
    return open_folder(path)


def rescan_folders() -> None:  # forget every scanned folder (after its files changed)
    folder_dataset.clear()


# ------------------------------------------------------------------------------------------- long computations
@st.cache_resource(show_spinner=False)
def _computed_store() -> OrderedDict[Hashable, Any]:
    """Long computations by explicit key (LRU). Not ``st.cache_data``: these draw a progress bar in a slot made
    outside the function, and cache_data's replay of that bar on a hit raises ``CacheReplayClosureError``."""
    return OrderedDict()


def computed(key: Hashable, text: str, compute: Callable[[Progress], Any], keep: int = 48) -> Any:
    """``compute(progress)`` once per ``key`` for the whole server, with a progress bar while it runs."""
    store = _computed_store()
    with STORES_LOCK:
        if key in store:
            store.move_to_end(key)
            return store[key]
    with progress(text) as update:  # outside the lock: a long computation must not block other sessions
        value = compute(update)  # stored only when it completed (a rerun that interrupts it stores nothing)
    with STORES_LOCK:
        store[key] = value
        while len(store) > keep:
            store.popitem(last=False)
    return value


def dataset_stats(model_key: str, dataset: Dataset, layers: Sequence[str] = (),
                  fit: FitMode = "center-crop") -> DatasetPass:
    """:func:`xai_core.analysis.dataset_pass.dataset_pass`, once per (model, data set, layers, fit), with a
    progress bar while it runs."""
    bundle = get_model(model_key)
    return computed(("pass", model_key, dataset.key, tuple(layers), fit), f"{bundle.name} over {dataset.name}",
                    lambda update: dataset_pass(bundle, dataset, tuple(layers), fit=fit, progress=update), keep=32)


def dataset_predictions(model_key: str, dataset: Dataset, fit: FitMode = "center-crop") -> np.ndarray:
    """Predicted class of every image of ``dataset`` (int64 ``(N,)``, −1 where unreadable)."""
    return dataset_stats(model_key, dataset, (), fit).predicted_by_position(len(dataset))


@st.cache_data(show_spinner="Computing the t-SNE map (PCA, then t-SNE) …", max_entries=16)
def tsne_embedding(model_key: str, dataset_key: str, layer: str, fit: str, perplexity: float,
                   _features: np.ndarray, _pred: Predictions) -> Embedding:
    """:func:`xai_core.analysis.explore.embedding.tsne` of a pass's layer, per (model, data set, layer, perplexity)."""
    return tsne(_features, _pred, perplexity=perplexity)


# ------------------------------------------------------------------------------------------- quality checks
@st.cache_data(show_spinner="Checking the maps (deletion / insertion, axioms) …", max_entries=128)
def quality_report(model_key: str, method_id: str, image_key: str, target_key: str, params_key: str, steps: int,
                   names: tuple[str, ...], _images: np.ndarray, _maps: np.ndarray, _targets: np.ndarray,
                   _params: dict[str, Any]) -> TrustReport:
    """:func:`xai_core.quality.trust_report` of maps already computed (``image_key``/``target_key``/``params_key``
    identify the arrays)."""
    return trust_report(get_model(model_key), method_id, _images, _maps, _targets, _params, list(names), steps=steps)


@st.cache_resource(show_spinner=False)
def _sanity_flags() -> dict[tuple[str, str], SanityResult]:
    return {}


def sanity_flags() -> dict[tuple[str, str], SanityResult]:
    """Sanity checks run in this server: ``(model key, method id)`` → latest result (Methods page, Visualize); a
    snapshot, safe to iterate while other sessions add results."""
    with STORES_LOCK:
        return dict(_sanity_flags())


def sanity_check(model_key: str, method_id: str, params: dict[str, Any], image_key: str, images: np.ndarray,
                 max_steps: int | None = None) -> SanityResult:
    """Cascading randomisation of ``method_id`` on ``model_key``, once per (model, method, parameters, images,
    steps), recorded in :func:`sanity_flags`."""
    result: SanityResult = computed(
        ("sanity", model_key, method_id, params_key(params), image_key, max_steps),
        f"{get_method(method_id).label}: randomised models",
        lambda update: cascading_randomization(get_model(model_key), method_id, images, params,
                                               max_steps=max_steps, progress=update))
    with STORES_LOCK:
        _sanity_flags()[(model_key, method_id)] = result
    return result


def quality_frame(model_key: str, dataset: Dataset, methods: Sequence[str], metrics: Sequence[str], n: int,
                  seed: int = 0, fit: FitMode = "center-crop", target: str = "predicted", steps: int = 20,
                  ) -> pd.DataFrame:
    """:func:`xai_core.quality.dataset_metrics`, once per (model, data set, settings)."""
    key = ("dataset", model_key, dataset.key, tuple(methods), tuple(metrics), int(n), int(seed), fit, target,
           int(steps))
    return computed(key, f"Scoring {len(methods)} method(s) on {n:,} images (maps, then metrics)",
                    lambda update: dataset_metrics(get_model(model_key), dataset, list(methods), list(metrics), n=n,
                                                   seed=seed, fit=fit, target=target, steps=steps, progress=update))


def localisation_frame(model_key: str, methods: Sequence[str], n: int, seed: int = 0, margin: int = 4) -> pd.DataFrame:
    """:func:`xai_core.quality.scale.localisation_leaderboard` on the demo shapes set, once per settings."""
    return computed(("localisation", model_key, tuple(methods), int(n), int(seed), int(margin)),
                    f"Explaining {n:,} shapes with {len(methods)} method(s)",
                    lambda update: localisation_leaderboard(get_model(model_key), list(methods), n=n, seed=seed,
                                                            margin=margin, progress=update))
