"""Charts of the Strategies view: named selections, and the selection events read back as clusters / images."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xai_core.viz import strategies_charts as charts
from xai_core.viz.explore_charts import TSNE_BRUSH, TSNE_PICK, tsne_selection


def frame() -> pd.DataFrame:
    return pd.DataFrame({"index": [10, 11, 12, 13], "x": [0.0, 1.0, 5.0, 6.0], "y": [0.0, 1.0, 5.0, 6.0],
                         "cluster": [0, 0, 1, 1], "score": [1.0, 2.0, 3.0, 4.0], "id": list("abcd"),
                         "tagged": [True, True, False, False]})


def test_embedding_chart_has_the_explorer_selections_and_shapes_the_recorded_tag():
    spec = charts.embedding_chart(frame(), 2).to_dict()
    assert {p["name"] for p in spec["params"]} == {TSNE_PICK, TSNE_BRUSH}
    assert spec["encoding"]["shape"]["field"] == "recorded"
    assert spec["encoding"]["color"]["scale"]["domain"] == ["0", "1"]
    event = {"selection": {TSNE_PICK: [{"index": 12}]}}
    assert list(tsne_selection(event, frame())) == [12]
    brush = {"selection": {TSNE_BRUSH: {"x": [4, 7], "y": [4, 7]}}}
    assert list(tsne_selection(brush, frame())) == [12, 13]


def test_cluster_chart_selection_is_a_cluster():
    table = pd.DataFrame({"cluster": [0, 1], "size": [30, 10], "share": [0.75, 0.25], "where": ["centre", "bottom"],
                          "concentration": [0.2, 0.8], "score": [3.0, 9.0], "right": [0.9, 1.0]})
    spec = charts.cluster_chart(table, 2, selected=1).to_dict()
    params = spec["params"]  # Altair lifts a layer's selection to the top level
    assert params[0]["name"] == charts.CLUSTER_PICK and params[0]["value"] == [{"cluster": 1}]
    assert charts.selected_cluster({"selection": {charts.CLUSTER_PICK: [{"cluster": 1}]}}) == 1
    assert charts.selected_cluster({"selection": {}}) is None
    assert charts.selected_cluster(None) is None


def test_eigen_and_shortcut_charts_draw_their_frames():
    eigen = pd.DataFrame({"k": [1, 2, 3], "eigenvalue": [0.0, 0.05, 0.4], "gap": [0.05, 0.35, np.nan],
                          "chosen": [False, True, False]})
    assert charts.eigen_chart(eigen).to_dict()["layer"][1]["mark"]["type"] == "point"
    long = pd.DataFrame({"index": [1, 1], "group": ["g", "g"], "condition": ["original", "hot region masked"],
                         "score": [5.0, 1.0]})
    spec = charts.shortcut_chart(long, ["g"], ["original", "hot region masked"]).to_dict()
    assert spec["facet"]["column"]["field"] == "group"
