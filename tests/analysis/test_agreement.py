"""Agreement measures on hand-made maps with known answers, map resizing, and the Compare page's charts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from xai_core.analysis.agreement import (
    MEAN,
    accuracy_frame,
    agreement_frame,
    difference_map,
    disagreement_frame,
    display_size,
    matrix_frame,
    mean_table,
    normalize_set,
    rank,
    resize_maps,
    short_names,
    spearman,
    top_k_iou,
    top_k_mask,
)
from xai_core.errors import InvalidParameterError
from xai_core.viz.agreement_charts import AGREEMENT_SELECTION, accuracy_chart, agreement_chart, selected_pair

RAMP = np.arange(64, dtype=np.float32).reshape(8, 8)


# --------------------------------------------------------------------------- Spearman
def test_identical_maps_correlate_perfectly():
    assert spearman(RAMP, RAMP) == pytest.approx(1.0)


def test_any_increasing_transform_keeps_rank_correlation_one():
    assert spearman(RAMP, np.exp(RAMP / 10.0) - 3.0, by="signed") == pytest.approx(1.0)


def test_reversed_ranks_give_minus_one():
    assert spearman(RAMP, -RAMP, by="signed") == pytest.approx(-1.0)


def test_by_abs_ignores_the_sign():
    """|−x| ranks like |x|: the same pixels matter, only the direction of evidence flipped."""
    assert spearman(RAMP, -RAMP, by="abs") == pytest.approx(1.0)


def test_ties_get_average_ranks_and_match_the_textbook_value():
    assert rank(np.array([5.0, 1.0, 5.0, 3.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    # x = [1,2,3,4], y = [1,3,2,2]: ranks y = [1, 4, 2.5, 2.5] → ρ = Pearson(ranks) = 0.6325 (computed by hand)
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    y = np.array([[1.0, 3.0], [2.0, 2.0]])
    rx, ry = np.array([1, 2, 3, 4.0]) - 2.5, np.array([1, 4, 2.5, 2.5]) - 2.5
    assert spearman(x, y, "signed") == pytest.approx(rx @ ry / math.sqrt((rx @ rx) * (ry @ ry)))


def test_constant_map_has_no_rank_correlation():
    assert math.isnan(spearman(RAMP, np.zeros_like(RAMP)))
    assert math.isnan(spearman(np.full((4, 4), 2.0), np.full((4, 4), 2.0)))


def _object_maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two maps that are zero on a shared background and independent random on one 8×8 object."""
    rng = np.random.default_rng(seed)
    a, b = np.zeros((32, 32), np.float32), np.zeros((32, 32), np.float32)
    a[4:12, 4:12] = rng.uniform(0.1, 1.0, (8, 8))
    b[4:12, 4:12] = rng.uniform(0.1, 1.0, (8, 8))
    return a, b


def test_a_shared_empty_background_does_not_make_unrelated_maps_agree():
    """Issue: digits_cnn vs shapes_cnn scored ρ = 0.78 with a top-10 % IoU of 0.08, because every background pixel
    (zero in both maps) counted as agreement. Ranked over the pixels that carry relevance, independent maps score
    about 0, while ranking every pixel (the old way) still calls them strongly correlated."""
    a, b = _object_maps()
    assert spearman(a, b, share=None) > 0.6, "the inflated number the issue reports"
    assert abs(spearman(a, b)) < 0.3
    assert spearman(a, a * 3.0) == pytest.approx(1.0), "the same object ranking is still perfect agreement"


def test_maps_on_disjoint_objects_disagree():
    a = np.zeros((32, 32), np.float32)
    b = np.zeros((32, 32), np.float32)
    a[2:10, 2:10], b[20:28, 20:28] = 1.0, 1.0
    assert abs(spearman(a, b, share=None)) < 0.1, "all-pixel ranking: the shared background hides the conflict"
    assert spearman(a, b) == pytest.approx(-1.0), "each map's relevant pixels are the other's empty ones"
    assert top_k_iou(a, b, 5) == 0.0  # 5 % = 52 pixels, inside each 64-pixel object


def test_maps_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="resize"):
        spearman(RAMP, np.zeros((4, 4)))


# --------------------------------------------------------------------------- top-k IoU
def test_identical_maps_share_their_top_pixels():
    assert top_k_iou(RAMP, RAMP, 10) == 1.0


def test_disjoint_top_k_gives_zero():
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[0, :2] = 1.0  # top 12.5 % = 2 pixels in the first row
    b[3, 2:] = 1.0  # … and in the last row
    a[1, 1] = b[1, 1] = 0.1  # not constant elsewhere, irrelevant for the top 2
    assert top_k_iou(a, b, 12.5) == 0.0


def test_half_overlap_gives_one_third():
    a = np.zeros((2, 2))
    b = np.zeros((2, 2))
    a[0, 0], a[0, 1] = 1.0, 0.9
    b[0, 0], b[1, 1] = 1.0, 0.9
    assert top_k_iou(a, b, 50) == pytest.approx(1 / 3)  # |{00}| / |{00, 01, 11}|


def test_signed_choice_picks_positive_evidence_abs_picks_magnitude():
    m = np.array([[-5.0, 1.0], [0.0, 2.0]])
    assert top_k_mask(m, 25, "abs").tolist() == [[True, False], [False, False]]
    assert top_k_mask(m, 25, "signed").tolist() == [[False, False], [False, True]]
    assert top_k_iou(m, -m, 25, "abs") == 1.0 and top_k_iou(m, -m, 25, "signed") == 0.0


def test_top_k_counts_a_percentage_of_pixels():
    assert top_k_mask(RAMP, 10).sum() == 7  # ceil(6.4)
    assert top_k_mask(RAMP, 0.1).sum() == 1  # at least one pixel
    assert top_k_mask(RAMP, 100).all()
    assert top_k_mask(RAMP, 10)[-1, -1], "the largest value is in the top"
    with pytest.raises(InvalidParameterError):
        top_k_mask(RAMP, 0)


def test_top_k_of_a_constant_map_is_undefined():
    assert math.isnan(top_k_iou(np.zeros((4, 4)), RAMP[:4, :4]))


# --------------------------------------------------------------------------- resizing
def test_resize_keeps_shape_batch_axes_and_value_range():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(3, 1, 32, 32)).astype(np.float32)
    big = resize_maps(maps, (64, 64))
    small = resize_maps(maps, (20, 20))
    assert big.shape == (3, 1, 64, 64) and small.shape == (3, 1, 20, 20) and big.dtype == np.float32
    for out in (big, small):
        assert out.min() >= maps.min() - 1e-5 and out.max() <= maps.max() + 1e-5, "bilinear never overshoots"
    assert np.array_equal(resize_maps(maps, (32, 32)), maps)


def test_resize_keeps_where_relevance_is():
    m = np.zeros((32, 32), np.float32)
    m[:8, :8] = 1.0  # top-left quarter of a quarter
    big = resize_maps(m, (224, 224))
    assert big[:50, :50].mean() > 0.95 and big[70:, :].max() == 0.0 and big[:, 70:].max() == 0.0
    assert spearman(resize_maps(big, (32, 32)), m, share=None) > 0.8


def test_display_size_is_the_largest_input():
    assert display_size([(32, 32), (224, 224), (64, 64)]) == (224, 224)


# --------------------------------------------------------------------------- frames
def test_agreement_frame_per_image_and_mean():
    maps = {"A": [RAMP, RAMP], "B": [RAMP, -RAMP], "C": [np.zeros_like(RAMP), None]}
    df = agreement_frame(maps, ["one", "two"], k_percent=10, by="signed")
    assert list(df.columns) == ["image", "a", "b", "metric", "value", "images"]
    ab = df[(df.a == "A") & (df.b == "B") & (df.metric == "spearman")].set_index("image")["value"]
    assert ab["one"] == pytest.approx(1.0) and ab["two"] == pytest.approx(-1.0) and ab[MEAN] == pytest.approx(0.0)
    ac = df[(df.a == "A") & (df.b == "C") & (df.image == MEAN)]
    assert ac["value"].isna().all() and (ac["images"] == 0).all(), "a constant map is n/a and not averaged"
    assert not ((df.b == "C") & (df.image == "two")).any(), "a failed map gives no row"


def test_matrix_frame_is_symmetric_with_unit_diagonal():
    df = agreement_frame({"A": [RAMP], "B": [-RAMP]}, ["x"], by="signed")
    mat = matrix_frame(df, ["A", "B"])
    sp = mat[mat.metric == "spearman"].set_index(["a", "b"])["value"]
    assert sp[("A", "B")] == sp[("B", "A")] == pytest.approx(-1.0)
    assert sp[("A", "A")] == sp[("B", "B")] == 1.0
    assert set(mat["label"]) >= {"-1.00", "1.00"}


def test_mean_table_keeps_pair_order_and_metric_columns():
    table = mean_table(agreement_frame({"B": [RAMP], "A": [-RAMP], "C": [RAMP.T]}, ["x"], by="signed"))
    assert list(table.columns) == ["row", "column", "Spearman ρ", "top-k IoU"]
    assert list(zip(table["row"], table["column"])) == [("B", "A"), ("B", "C"), ("A", "C")]
    assert table.iloc[0]["Spearman ρ"] == pytest.approx(-1.0) and table.iloc[0]["top-k IoU"] == 0.0


def test_difference_map_of_identical_maps_is_zero_and_signs_point_to_the_stronger_map():
    assert np.all(difference_map(RAMP, 3 * RAMP) == 0), "the same map at another scale: no difference"
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[0, 0], b[3, 3] = 1.0, 1.0
    d = difference_map(a, b)
    assert d[0, 0] > 0 and d[3, 3] < 0 and d.min() >= -1 and d.max() <= 1
    mixed = difference_map(-a, b, signed_a=True, signed_b=False)  # one map unsigned: compared by magnitude
    assert mixed[0, 0] == pytest.approx(1.0) and mixed[3, 3] == pytest.approx(-1.0)


def test_normalize_set_keeps_failed_maps_and_shares_a_scale_on_request():
    out = normalize_set([RAMP, None, 2 * RAMP], signed=True)
    assert out[1] is None and out[0].max() == out[2].max() == 1.0
    shared = normalize_set([RAMP, None, 2 * RAMP], signed=True, shared=True)
    assert shared[0].max() == pytest.approx(0.5) and shared[2].max() == 1.0


def test_short_names_drop_suffixes_only_when_they_stay_distinct():
    assert short_names(["Digits CNN (plain)", "Digits ResNet (BN)"]) == ["Digits CNN", "Digits ResNet"]
    assert short_names(["Net (a)", "Net (b)"]) == ["Net (a)", "Net (b)"]
    assert short_names(["x", "x"]) == ["x", "x #2"]


def test_accuracy_and_disagreements():
    labels = np.array([0, 1, 2, 1])
    predicted = {"A": np.array([0, 1, 2, 2]), "B": np.array([0, 2, 2, 0]), "C": np.array([0, 1, 2, -1])}
    acc = accuracy_frame(predicted, labels).set_index("model")
    assert acc.loc["A", "accuracy"] == 0.75 and acc.loc["B", "accuracy"] == 0.5
    assert acc.loc["C", "images"] == 3 and acc.loc["C", "accuracy"] == 1.0, "images not run are left out"
    dis = disagreement_frame(predicted, labels, ["i0", "i1", "i2", "i3"], ["zero", "one", "two"])
    assert list(dis["id"]) == ["i1"], "i3 has a missing prediction; i0 and i2 agree"
    assert dis.loc[0, "true"] == "one" and dis.loc[0, "B"] == "two" and dis.loc[0, "wrong"] == 1


# --------------------------------------------------------------------------- charts
def test_agreement_chart_has_the_named_click_selection_and_value_labels():
    df = agreement_frame({"A": [RAMP], "B": [-RAMP], "C": [RAMP.T]}, ["x"])
    spec = agreement_chart(matrix_frame(df, ["A", "B", "C"])).to_dict()
    params = spec.get("params", []) + spec["spec"].get("params", [])
    sel = [p for p in params if p["name"] == AGREEMENT_SELECTION]
    assert sel and sel[0]["select"]["type"] == "point" and sel[0]["select"]["fields"] == ["a", "b"]
    layers = spec["spec"]["layer"]
    assert [layer["mark"]["type"] for layer in layers] == ["rect", "text", "rect"]
    assert sel[0]["views"] == [layers[2]["name"]], "the top (click) layer owns the selection"
    assert layers[0]["encoding"]["opacity"]["condition"][0]["param"] == AGREEMENT_SELECTION, "selected cell highlighted"
    assert spec["spec"]["layer"][1]["encoding"]["text"]["field"] == "label"
    assert spec["facet"]["column"]["field"] == "metric_name"


@pytest.mark.parametrize("event, pair", [
    ({"selection": {AGREEMENT_SELECTION: [{"a": "CNN", "b": "ResNet"}]}}, ("CNN", "ResNet")),
    ({"selection": {AGREEMENT_SELECTION: [{"a": "x", "b": "y"}, {"a": "B", "b": "A"}]}}, ("B", "A")),
    ({"selection": {AGREEMENT_SELECTION: [{"a": "A", "b": "A"}]}}, None),  # diagonal: nothing to compare
    ({"selection": {AGREEMENT_SELECTION: []}}, None),
    ({"selection": {"other": [{"a": "A", "b": "B"}]}}, None),
    (None, None),
])
def test_selection_event_to_pair(event, pair):
    assert selected_pair(event) == pair


def test_accuracy_chart_labels_each_bar():
    acc = pd.DataFrame({"model": ["A", "B"], "accuracy": [0.75, 0.5], "correct": [3, 2], "images": [4, 4]})
    spec = accuracy_chart(acc).to_dict()
    texts = [v["label"] for v in next(iter(spec["datasets"].values()))]
    assert texts == ["75.0% (3/4)", "50.0% (2/4)"]
