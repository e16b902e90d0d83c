"""Caches of the Strategies view (SpRAy): the maps of a class (with a progress bar, in the server-wide store of long
computations), the clustering and t-SNE (keyed without the number of clusters: changing it recomputes nothing), the
shortcut check and the exports."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import Any

import numpy as np
import streamlit as st

from ui.cache import computed, get_model, params_key
from xai_core.analysis import shortcut as sc
from xai_core.analysis import strategies as spray
from xai_core.analysis.virelay import membership_frame, virelay_zip
from xai_core.data.dataset import Dataset
from xai_core.data.images import FitMode
from xai_core.methods import get_method


@dataclass(frozen=True)
class MapsKey:
    """What identifies a class's maps: model, data set, class, method (at its default parameters), fit."""

    model_key: str
    dataset_key: str
    class_index: int
    method_id: str
    params: str
    fit: FitMode


def maps_key(model_key: str, dataset: Dataset, class_index: int, method_id: str, fit: FitMode) -> MapsKey:
    return MapsKey(model_key, dataset.key, int(class_index), method_id,
                   params_key(get_method(method_id).initial_params()), fit)


def class_maps(key: MapsKey, dataset: Dataset, index: np.ndarray, logits: np.ndarray) -> spray.ClassMaps:
    """:func:`xai_core.analysis.strategies.class_maps` once per ``key`` for the whole server, with a progress bar."""
    bundle, spec = get_model(key.model_key), get_method(key.method_id)
    params: dict[str, Any] = spec.initial_params()
    what = f"{spec.label} maps of the '{bundle.class_names[key.class_index]}' images"
    return computed(("spray-maps", *astuple(key)), what, lambda update: spray.class_maps(
        bundle, dataset, key.class_index, index, logits, key.method_id, params, key.fit, progress=update), keep=16)


@st.cache_resource(show_spinner="Clustering the maps (spectral) and drawing them (t-SNE) …", max_entries=16)
def find_strategies(key: MapsKey, grid: int, relevance: str, neighbours: int | None,
                    _maps: spray.ClassMaps) -> spray.Strategies:
    """:func:`xai_core.analysis.strategies.find_strategies` per (maps, grid, relevance, neighbours): every number of
    clusters at once, so choosing another one is a look-up."""
    return spray.find_strategies(_maps, grid, relevance, neighbours)  # type: ignore[arg-type]


@st.cache_resource(show_spinner="Masking and pasting the hot region …", max_entries=32)
def shortcut_check(key: MapsKey, grid: int, relevance: str, neighbours: int | None, k: int, cluster: int,
                   area: float, _dataset: Dataset, _strategies: spray.Strategies,
                   _others: np.ndarray) -> sc.ShortcutCheck:
    """:func:`xai_core.analysis.shortcut.shortcut_check`, once per analysis, cluster and area."""
    return sc.shortcut_check(get_model(key.model_key), _dataset, _strategies, k, cluster, _others, area, key.fit)


@st.cache_data(show_spinner="Writing the ViRelAy project …", max_entries=8)
def virelay_export(key: MapsKey, grid: int, relevance: str, neighbours: int | None, _dataset: Dataset,
                   _strategies: spray.Strategies) -> bytes:
    """The ViRelAy project zip (:func:`xai_core.analysis.virelay.virelay_zip`) of an analysis."""
    bundle, s = get_model(key.model_key), _strategies
    images = _dataset.model_images(s.maps.index, bundle.input_size, bundle.channels, key.fit)
    inputs = bundle.preprocess(np.stack([images[int(i)] for i in s.maps.index]))
    return virelay_zip(s, inputs, bundle.class_names, bundle.name, _dataset.name, get_method(key.method_id).label,
                       _dataset.ids)


@st.cache_data(show_spinner=False, max_entries=8)
def membership_csv(key: MapsKey, grid: int, relevance: str, neighbours: int | None, _dataset: Dataset,
                   _strategies: spray.Strategies) -> bytes:
    """Cluster membership of every image for every number of clusters, as CSV."""
    return membership_frame(_strategies, _dataset.ids).to_csv(index=False).encode()
