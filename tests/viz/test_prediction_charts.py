"""The predictions chart and its click selection (xai_core.viz.prediction_charts, xai_core.viz.selection)."""

from __future__ import annotations

import numpy as np

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
