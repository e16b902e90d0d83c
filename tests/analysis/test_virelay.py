"""The ViRelAy export (xai_core.analysis.virelay) opens with h5py and has the layout ViRelAy reads.

The checks follow ViRelAy 1.0's reader (virelay/model.py at github.com/virelay/virelay, commit 4e87821): which keys
it opens, the shapes and types it expects, and how it indexes them (``AnalysisDatabase.get_analysis``,
``AttributionDatabase.get_attribution``, ``Hdf5Dataset.get_sample``, ``LabelMap``, ``Project``).
"""

from __future__ import annotations

import io
import json
import zipfile

import h5py
import numpy as np
import pandas as pd
import pytest

from xai_core.analysis import strategies as spray
from xai_core.analysis.virelay import membership_frame, virelay_files, virelay_zip, word_net_id


@pytest.fixture(scope="module")
def analysis() -> spray.Strategies:
    rng = np.random.default_rng(0)
    maps = rng.random((40, 16, 16)).astype(np.float32)
    maps[:20, 12:, :4] += 4.0  # a corner strategy
    logits = rng.normal(size=(40, 3)).astype(np.float32)
    cm = spray.ClassMaps(2, "cat", "lrp.epsilon", {"epsilon": 0.1}, True, np.arange(100, 140), maps, logits)
    return spray.find_strategies(cm, grid=4)


def h5(data: bytes) -> h5py.File:
    return h5py.File(io.BytesIO(data), "r")


def test_export_matches_the_layout_virelay_reads(analysis):
    inputs = np.random.default_rng(1).random((40, 16, 16, 3)).astype(np.float32)
    files = virelay_files(analysis, inputs, ["dog", "bird", "cat"], "My CNN", "pets", "LRP-ε")
    stem = "pets-cat"
    assert set(files) == {f"{stem}.input.h5", f"{stem}.attribution.h5", f"{stem}.analysis.h5", "label-map.json",
                          "project.yaml"}
    with h5(files[f"{stem}.input.h5"]) as f:  # Hdf5Dataset: data (samples × channel × h × w), label
        assert f["data"].dtype == np.float32 and f["data"].shape == (40, 3, 16, 16)
        np.testing.assert_array_equal(f["data"][5], inputs[5].transpose(2, 0, 1))
        assert f["label"].dtype == np.uint16 and f["label"].shape == (40,) and set(f["label"][()]) == {2}
    with h5(files[f"{stem}.attribution.h5"]) as f:  # AttributionDatabase
        assert set(f) == {"index", "attribution", "prediction", "label"}
        assert f["index"].dtype == np.uint32 and list(f["index"][()]) == list(range(40))
        att = f["attribution"]
        assert att.dtype == np.float32 and att.shape == (40, 3, 16, 16)
        np.testing.assert_allclose(att[7].sum(axis=0), analysis.maps.maps[7], rtol=1e-6)  # channels sum to the map
        np.testing.assert_array_equal(f["prediction"][()], analysis.maps.logits)
        assert f["label"].dtype == np.uint16
    with h5(files[f"{stem}.analysis.h5"]) as f:  # AnalysisDatabase: every top-level key is a category
        assert list(f) == [word_net_id(2)] == ["00000002"]
        g = f["00000002"]
        assert g["index"].dtype == np.uint32 and g["index"].shape == (40,)
        assert set(g["embedding"]) == {"spectral", "tsne"}
        spectral = g["embedding"]["spectral"]
        assert isinstance(spectral, h5py.Dataset) and spectral.shape[0] == 40
        np.testing.assert_allclose(spectral.attrs["eigenvalue"], analysis.spectral.eigenvalues, rtol=1e-6)
        assert g["embedding"]["tsne"].shape == (40, 2) and g["embedding"]["tsne"].attrs["embedding"] == "spectral"
        names = list(g["cluster"])
        assert names == [f"kmeans-{k:02d}" for k in range(2, max(analysis.labels) + 1)]
        for name in names:
            k = int(g["cluster"][name].attrs["k"])
            np.testing.assert_array_equal(g["cluster"][name][()], analysis.labels[k])
            assert g["cluster"][name].attrs["embedding"] == "spectral"
    label_map = json.loads(files["label-map.json"])
    assert label_map[2] == {"index": 2, "word_net_id": "00000002", "name": "cat"}
    project = files["project.yaml"].decode()
    for line in ('  label_map: "label-map.json"', '    type: "hdf5"', f'    path: "{stem}.input.h5"',
                 '    attribution_strategy: "true_label"', f'      - "{stem}.attribution.h5"',
                 '    - analysis_method: "Spectral"', f'        - "{stem}.analysis.h5"', "    input_width: 16"):
        assert line in project.splitlines(), line


def test_zip_holds_the_project_and_the_membership_csv(analysis):
    ids = [f"img{i}" for i in range(200)]
    data = virelay_zip(analysis, np.zeros((40, 16, 16, 1), np.float32), ["dog", "bird", "cat"], "m", "pets", "LRP",
                       ids)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert "project.yaml" in zf.namelist() and "clusters.csv" in zf.namelist()
        csv = pd.read_csv(zf.open("clusters.csv"))
        with h5py.File(io.BytesIO(zf.read("pets-cat.attribution.h5")), "r") as f:
            assert f["attribution"].shape == (40, 2, 16, 16)  # one input channel: split over two (ViRelAy's renderer)
    assert list(csv["id"]) == ids[100:140]
    frame = membership_frame(analysis, ids)
    assert (csv["k=2"].to_numpy() == analysis.labels[2]).all()
    assert list(frame.columns[-1:]) == [f"k={max(analysis.labels)}"]
