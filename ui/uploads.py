"""Uploaded model files, kept in memory per server and keyed by content (no TensorFlow here: loading one is
:func:`ui.cache.uploaded_model`'s job)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import streamlit as st

from xai_core.data.inputs import content_key
from xai_core.errors import ModelLoadError
from xai_core.models.upload import AUTO

MAX_UPLOADS = 8  # uploaded model files kept in memory
_LOCK = threading.RLock()


@st.cache_resource(show_spinner=False)
def _upload_store() -> dict[str, tuple[bytes, str, str, tuple[str, ...] | None]]:  # data, name, preprocessing, classes
    return {}


def register_upload(data: bytes, filename: str, preprocessing: str = AUTO,
                    class_names: Sequence[str] | None = None) -> str:
    """Keep an uploaded model file in memory; returns its model key (content hash + options) for get_model."""
    classes = tuple(class_names) if class_names else None
    ckey = content_key("\n".join(classes).encode()) if classes else "-"
    key = f"upload:{content_key(data)}:{preprocessing}:{ckey}"
    with _LOCK:
        store = _upload_store()
        store[key] = (bytes(data), filename, preprocessing, classes)
        while len(store) > MAX_UPLOADS:
            store.pop(next(iter(store)))
    return key


@st.cache_resource(show_spinner=False)
def _upload_keys() -> OrderedDict[tuple[str, str, tuple[str, ...] | None], str]:
    return OrderedDict()


def register_uploaded_file(file: Any, preprocessing: str = AUTO, class_names: Sequence[str] | None = None) -> str:
    """:func:`register_upload` of a Streamlit ``UploadedFile``, hashed once per upload: every rerun of a page
    with an uploaded model passes through here, and hashing a 98 MB ResNet50 file took 0.12 s of each."""
    ident = (str(file.file_id), preprocessing, tuple(class_names) if class_names else None)
    with _LOCK:
        known = _upload_keys().get(ident)
        if known is not None and known in _upload_store():
            return known
    key = register_upload(file.getvalue(), file.name, preprocessing, class_names)
    with _LOCK:
        keys = _upload_keys()
        keys[ident] = key
        while len(keys) > 4 * MAX_UPLOADS:
            keys.popitem(last=False)
    return key


def uploads() -> dict[str, tuple[str, str]]:
    """Model key → ``(file name, preprocessing)`` of the uploaded models in memory."""
    with _LOCK:
        return {key: (filename, pre) for key, (_, filename, pre, _) in _upload_store().items()}


def upload_of(key: str) -> tuple[bytes, str, str, tuple[str, ...] | None]:
    """``(bytes, file name, preprocessing, class names)`` of the upload under model key ``key``."""
    try:
        with _LOCK:
            return _upload_store()[key]
    except KeyError:
        raise ModelLoadError("That uploaded model is no longer in memory: upload the file again.") from None
