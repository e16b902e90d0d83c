"""Export a strategies analysis as a ViRelAy project (HDF5 + YAML + label map), and cluster membership as CSV.

ViRelAy (Fraunhofer HHI) opens a project file that names three HDF5 databases. The layout written here is the one
ViRelAy 1.0's reader uses (``virelay/model.py``: ``Hdf5Dataset``, ``AttributionDatabase``, ``AnalysisDatabase``)
and its own example pipeline writes (``docs/examples/meta_analysis.py``, ``make_test_data.py``):

* ``<name>.input.h5`` — ``data`` float32 *samples × channel × height × width* (the model input, preprocessing
  applied), ``label`` uint16 *samples*;
* ``<name>.attribution.h5`` — ``index`` uint32 *samples* (rows of the input file), ``attribution`` float32
  *samples × channel × height × width*, ``prediction`` float32 *samples × classes* (the logits), ``label`` uint16
  *samples*. Our maps are channel-summed: each is split evenly over max(C, 2) channels, so their sum is the map
  (ViRelAy 1.0's heatmap renderer sums channels only when there is more than one, and fails on a single one);
* ``<name>.analysis.h5`` — one group per category (the class, named by its label-map ``word_net_id``) with
  ``name``, ``index`` uint32 (rows of the attribution file), ``embedding/spectral`` float32 *samples × eigenvalues*
  with attribute ``eigenvalue``, ``embedding/tsne`` float32 *samples × 2* (attributes ``embedding`` = "spectral",
  ``index``), and ``cluster/kmeans-NN`` int *samples* per number of clusters (attributes ``embedding``, ``k``,
  ``index``);
* ``label-map.json`` (``index``, ``word_net_id``, ``name``) and ``project.yaml``.

ViRelAy's prose *database specification* (``docs/source/contributors-guide/database-specification.rst``) draws
the analysis file differently (``clustering/<name>/root``, ``embedding/<name>/root`` groups); its reader does not
read that form, so the reader's layout is written here (see docs/strategies.md).

Ref. Anders et al. (2022), *Finding and removing Clever Hans*, Information Fusion 77:261–295 (ViRelAy / CoRelAy).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Sequence

import h5py
import numpy as np
import pandas as pd

from xai_core.analysis.strategies import Strategies, image_frame
from xai_core.viz.exports import slug

ANALYSIS_METHOD = "Spectral"


def word_net_id(class_index: int) -> str:
    """The label-map id of a class without a WordNet id (ViRelAy's example pipeline uses the same form)."""
    return f"{int(class_index):08d}"


def _h5(write: Callable[[h5py.File], None]) -> bytes:
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        write(f)
    return buf.getvalue()


def _yaml(value: object, indent: int = 0) -> str:
    """A small YAML emitter for the project file (mappings, lists of mappings, scalars; strings JSON-quoted)."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                lines.append(f"{pad}{k}:\n{_yaml(v, indent + 1)}")
            else:
                lines.append(f"{pad}{k}: {json.dumps(v)}")
        return "\n".join(lines)
    if isinstance(value, list):
        items = []
        for v in value:
            body = _yaml(v, indent + 1) if isinstance(v, (dict, list)) else f"{'  ' * (indent + 1)}{json.dumps(v)}"
            items.append(f"{pad}- {body.lstrip()}")
        return "\n".join(items)
    return f"{pad}{json.dumps(value)}"


def virelay_files(s: Strategies, inputs: np.ndarray, class_names: Sequence[str], model_name: str,
                  dataset_name: str, method_label: str, ks: Sequence[int] | None = None) -> dict[str, bytes]:
    """The files of a ViRelAy project for one class's strategies.

    Parameters
    ----------
    inputs : float32 ``(M, H, W, C)`` model input of the analysed images, in the order of ``s.maps.index``.
    ks : numbers of clusters to export (default: every k from 2 to the most computed).
    """
    cm = s.maps
    m = len(cm)
    if len(inputs) != m:
        raise ValueError(f"{len(inputs)} inputs for {m} maps.")
    name = slug(f"{dataset_name}-{cm.class_name}") or "strategies"
    h, w = cm.maps.shape[1:]
    x = np.asarray(inputs, np.float32).transpose(0, 3, 1, 2)
    maps = cm.maps
    if (h, w) != x.shape[2:]:  # maps kept at a reduced size: repeat each value back to the input's size
        fy, fx = x.shape[2] // h, x.shape[3] // w
        maps = np.repeat(np.repeat(maps, fy, axis=1), fx, axis=2)
        maps = np.pad(maps, ((0, 0), (0, x.shape[2] - maps.shape[1]), (0, x.shape[3] - maps.shape[2])))
    labels = np.full(m, cm.class_index, np.uint16)
    ks = [k for k in (ks or range(2, max(s.labels) + 1)) if k in s.labels]
    category = word_net_id(cm.class_index)
    eig = s.spectral

    def input_file(f: h5py.File) -> None:
        f["data"] = x
        f["label"] = labels

    def attribution_file(f: h5py.File) -> None:
        f["index"] = np.arange(m, dtype=np.uint32)
        channels = max(x.shape[1], 2)
        f["attribution"] = np.repeat(maps[:, None] / channels, channels, axis=1).astype(np.float32)
        f["prediction"] = cm.logits.astype(np.float32)
        f["label"] = labels

    def analysis_file(f: h5py.File) -> None:
        g = f.require_group(category)
        g["name"] = f"{cm.class_name}: {method_label}, {s.relevance} relevance on a {s.grid}×{s.grid} grid"
        g["index"] = np.arange(m, dtype=np.uint32)
        emb = g.require_group("embedding")
        emb["spectral"] = eig.vectors.astype(np.float32)
        emb["spectral"].attrs["eigenvalue"] = eig.eigenvalues.astype(np.float32)
        emb["tsne"] = s.xy.astype(np.float32)
        emb["tsne"].attrs["embedding"] = "spectral"
        emb["tsne"].attrs["index"] = np.arange(min(eig.vectors.shape[1], max(s.labels) + 1), dtype=np.uint32)
        clusters = g.require_group("cluster")
        for k in ks:
            key = f"kmeans-{k:02d}"
            clusters[key] = s.labels[k].astype(np.int64)
            clusters[key].attrs["embedding"] = "spectral"
            clusters[key].attrs["k"] = k
            clusters[key].attrs["index"] = np.arange(k, dtype=np.uint32)

    label_map = [{"index": i, "word_net_id": word_net_id(i), "name": n} for i, n in enumerate(class_names)]
    project = {"project": {
        "name": f"XAI Lens strategies: {cm.class_name}",
        "model": model_name,
        "label_map": "label-map.json",
        "dataset": {"name": dataset_name, "type": "hdf5", "path": f"{name}.input.h5", "input_width": int(x.shape[3]),
                    "input_height": int(x.shape[2]), "up_sampling_method": "none", "down_sampling_method": "none"},
        "attributions": {"attribution_method": method_label, "attribution_strategy": "true_label",
                         "sources": [f"{name}.attribution.h5"]},
        "analyses": [{"analysis_method": ANALYSIS_METHOD, "sources": [f"{name}.analysis.h5"]}],
    }}
    return {
        f"{name}.input.h5": _h5(input_file),
        f"{name}.attribution.h5": _h5(attribution_file),
        f"{name}.analysis.h5": _h5(analysis_file),
        "label-map.json": json.dumps(label_map, indent=2).encode(),
        "project.yaml": (_yaml(project) + "\n").encode(),
    }


def membership_frame(s: Strategies, ids: Sequence[str], ks: Sequence[int] | None = None) -> pd.DataFrame:
    """Cluster membership: one row per image, ``index``, ``id``, ``score``, ``predicted``, ``x``, ``y`` and one
    column ``k=N`` per number of clusters (default: 2 to the most computed)."""
    frame = image_frame(s, 1, ids).drop(columns="cluster")
    for k in ks or range(2, max(s.labels) + 1):
        frame[f"k={k}"] = s.labels[k]
    return frame


def virelay_zip(s: Strategies, inputs: np.ndarray, class_names: Sequence[str], model_name: str, dataset_name: str,
                method_label: str, ids: Sequence[str]) -> bytes:
    """A zip of :func:`virelay_files` plus ``clusters.csv`` (:func:`membership_frame`): open ``project.yaml`` with
    ``virelay``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for fname, data in virelay_files(s, inputs, class_names, model_name, dataset_name, method_label).items():
            zf.writestr(fname, data)
        zf.writestr("clusters.csv", membership_frame(s, ids).to_csv(index=False))
    return buf.getvalue()
