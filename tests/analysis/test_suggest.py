"""Suggest: histogram bins hold exactly the right images, selection events map to the right ids, consensus
numbers on hand-made predictions, neuron values point at the right neurons."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core.analysis.dataset_pass import LayerStats
from xai_core.analysis.suggest import (
    DISAGREE,
    consensus_frame,
    histogram_frame,
    images_in_bins,
    neuron_values,
    rankings,
)
from xai_core.errors import InvalidParameterError
from xai_core.viz.suggest_charts import (
    BIN_SELECTION,
    POINT_SELECTION,
    histogram_chart,
    scatter_chart,
    selected_bins,
    selected_points,
)


def test_every_image_is_in_exactly_its_bin():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=500), [np.nan, np.inf]])
    index = np.arange(1000, 1502)
    bins_df, images_df = histogram_frame(values, index, bins=17)
    counts, _ = np.histogram(values[:500], bins=17)
    assert bins_df["count"].tolist() == counts.tolist()
    assert len(images_df) == 500 and images_df["index"].is_unique  # non-finite values dropped
    assert images_df.groupby("bin").size().reindex(range(17), fill_value=0).tolist() == counts.tolist()
    for b in range(17):
        start, end = bins_df.loc[b, ["start", "end"]]
        members = images_df[images_df["bin"] == b]
        assert ((members["value"] >= start) & ((members["value"] < end) | (b == 16))).all()
    top = images_df["value"].idxmax()
    assert images_df.loc[top, "bin"] == 16  # the maximum lands in the last (closed) bin


def test_bin_selection_event_maps_to_exact_ids():
    values = np.array([0.0, 0.1, 0.9, 1.0, 0.55, 0.45])
    bins_df, images_df = histogram_frame(values, np.array([10, 11, 12, 13, 14, 15]), bins=2)
    event = {"selection": {BIN_SELECTION: [{"bin": 1}]}}
    assert selected_bins(event) == [1]
    assert images_in_bins(images_df, selected_bins(event))["index"].tolist() == [13, 12, 14]  # highest first
    both = {"selection": {BIN_SELECTION: [{"bin": 1}, {"bin": 0}, {"bin": 1}]}}
    assert sorted(images_in_bins(images_df, selected_bins(both))["index"]) == [10, 11, 12, 13, 14, 15]
    assert selected_bins(None) == [] and selected_bins({"selection": {}}) == []
    spec = histogram_chart(bins_df, "value").to_dict()
    assert spec["params"][0]["name"] == BIN_SELECTION


def _probs(*rows):
    return np.array(rows, dtype=np.float64)


def test_consensus_known_answers():
    # three models, four images, classes a, b, c; labels: a, b, c, unknown
    m1 = _probs([0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.4, 0.3, 0.3])
    m2 = _probs([0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.9, 0.05, 0.05], [0.1, 0.5, 0.4])
    m3 = _probs([0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.7, 0.2, 0.1], [0.2, 0.2, 0.6])
    df = consensus_frame([m1, m2, m3], np.array([5, 6, 7, 8]), ["a", "b", "c"], np.array([0, 1, 2, -1]))
    assert df["consistency"].tolist() == pytest.approx([1.0, 1 / 3, 1.0, 1 / 3])
    assert df["agreed"].tolist() == ["a", DISAGREE, "a", DISAGREE]
    assert df["confidence"].tolist() == pytest.approx([0.8, (0.7 + 0.6 + 0.7) / 3, 0.8, (0.4 + 0.5 + 0.6) / 3])
    mean0 = (m1[0] + m2[0] + m3[0]) / 3
    assert df.loc[0, "distance"] == pytest.approx(np.linalg.norm(mean0 - [1, 0, 0]))
    assert np.isnan(df.loc[3, "distance"]) and np.isnan(df.loc[3, "wrong"])
    assert df["wrong"].tolist()[:3] == pytest.approx([0.0, 2 / 3, 1.0])
    assert df["correct"].tolist() == [True, False, False, False]
    ranked = rankings(df)
    assert ranked["confidently wrong"]["index"].tolist() == [7]
    assert set(ranked["most disagreed"]["index"]) == {6, 8}
    assert ranked["least confident"]["index"].tolist()[0] == 8
    # ties in votes go to the class with the higher mean probability
    # (image 1: one vote each for a, b, c; mean probabilities a 0.3, b 0.4, c 0.3 → b)
    assert df.loc[1, "vote"] == 1


def test_consensus_refuses_different_class_counts():
    with pytest.raises(InvalidParameterError, match="same classes"):
        consensus_frame([np.ones((2, 3)) / 3, np.ones((2, 4)) / 4], np.arange(2), ["a", "b", "c"])


def test_scatter_point_selection_roundtrip():
    df = consensus_frame([_probs([0.9, 0.1]), _probs([0.2, 0.8])], np.array([42]), ["x", "y"]).assign(id=["f.png"])
    spec = scatter_chart(df).to_dict()
    assert spec["params"][0]["name"] == POINT_SELECTION
    assert selected_points({"selection": {POINT_SELECTION: [{"index": 42, "confidence": 0.85}]}}) == [42]


def _spatial_stats() -> LayerStats:
    rng = np.random.default_rng(1)
    acts = rng.random((4, 3, 2, 5)).astype(np.float32)  # 4 images, 3×2 positions, 5 channels
    flat = acts.reshape(4, 6, 5)
    return LayerStats("conv", (3, 2, 5), acts.mean((1, 2, 3)), flat.mean(1), flat.max(1),
                      flat.argmax(1).astype(np.int32), acts.reshape(4, -1))


def test_neuron_values_point_at_the_neuron_they_plot():
    s = _spatial_stats()
    values, neurons = neuron_values(s, 3, "max")
    np.testing.assert_allclose(s.full[np.arange(4), neurons], values)  # the strongest position of channel 3
    assert (neurons % 5 == 3).all()
    values, neurons = neuron_values(s, 4, "unit", position=(2, 1))
    assert (neurons == (2 * 2 + 1) * 5 + 4).all()
    np.testing.assert_allclose(values, s.full[:, neurons[0]])
    with pytest.raises(InvalidParameterError, match="outside"):
        neuron_values(s, 0, "unit", position=(3, 0))
    with pytest.raises(InvalidParameterError, match="channels 0–4"):
        neuron_values(s, 5)
    s.full = None
    with pytest.raises(InvalidParameterError, match="too large"):
        neuron_values(s, 0, "unit")
