"""The predictions chart and its click selection (xai_core.viz.prediction_charts, xai_core.viz.selection)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from xai_core.viz.prediction_charts import PREDICTION_SELECTION, predictions_chart, predictions_frame, selected_class
from xai_core.viz.selection import selected_values


def test_predictions_frame_is_top_k_in_order():
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    df = predictions_frame(probs, ["a", "b", "c"], k=2, image_names=["x", "y"])
    assert list(df["class_name"]) == ["b", "c", "a", "c"]
    assert list(df["rank"]) == [1, 2, 1, 2]
    assert predictions_frame(probs, ["a", "b", "c"], k=99).shape[0] == 6


def test_predictions_chart_has_named_click_selection():
    df = predictions_frame(np.array([[0.1, 0.6, 0.3]]), ["a", "b", "c"], k=3)
    spec = predictions_chart(df, selected=2).to_dict()
    params = spec.get("params", []) + [p for layer in spec["layer"] for p in layer.get("params", [])]
    assert any(p["name"] == PREDICTION_SELECTION and p["select"]["fields"] == ["class_index"] for p in params)
    assert len(spec["datasets"][next(iter(spec["datasets"]))]) == 3


def test_selection_event_to_class():
    assert selected_class(None) is None
    assert selected_class({"selection": {}}) is None
    assert selected_class({"selection": {PREDICTION_SELECTION: [{"class_index": 7}]}}) == 7
    assert selected_values({"selection": {"brush": {"x": [1, 2]}}}, "brush", "x") == [1, 2]


def test_predictions_grid_chart_has_a_panel_per_image_and_model_with_its_own_classes():
    from xai_core.viz.prediction_charts import predictions_grid_chart

    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    df = pd.concat([predictions_frame(probs, ["a", "b", "c"], k=2, image_names=["x", "y"], model_name=m)
                    for m in ("M1", "M2")], ignore_index=True)
    spec = predictions_grid_chart(df, selected=2).to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert [r["panel"] for r in rows[:4]] == ["x · M1", "x · M1", "y · M1", "y · M1"]
    assert spec["facet"]["field"] == "panel" and spec["facet"]["sort"] == ["x · M1", "y · M1", "x · M2", "y · M2"]
    assert spec["resolve"]["scale"]["y"] == "independent"  # each panel lists its own top classes
    # "min": the only order Vega-Lite keeps when the layers' domains are unioned (else it sorts by name)
    assert spec["spec"]["layer"][0]["encoding"]["y"]["sort"] == {"field": "rank", "op": "min", "order": "ascending"}
    assert [r["is_target"] for r in rows if r["panel"] == "x · M1"] == [False, True]  # class 2 is "c"
    one_model = predictions_grid_chart(predictions_frame(probs, ["a", "b", "c"], k=2, image_names=["x", "y"])).to_dict()
    assert one_model["facet"]["sort"] == ["x", "y"]
