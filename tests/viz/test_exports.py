"""Pure helpers behind Visualize's downloads and result grid."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from xai_core.methods import Explanation
from xai_core.viz.exports import maps_npz, predictions_csv, slug, stack_explanations
from xai_core.viz.prediction_charts import predictions_frame
from xai_core.viz.render import VIEWS, compose_grid, map_tiles


def _expl(n: int, value: float) -> Explanation:
    maps = np.full((n, 1, 4, 4), value, np.float32)
    return Explanation("gradient", maps, maps[..., None].repeat(3, -1), np.full((n, 1), 2), None, True, {},
                       labels=[["c2 (class 2)"]] * n)


def test_npz_round_trip_keeps_every_array_per_model():
    data = maps_npz({"Digits CNN": (["a", "b"], stack_explanations([_expl(1, 1.0), _expl(1, 2.0)])),
                     "digits cnn": (["a"], _expl(1, 3.0))}, {"method": "gradient"})
    with np.load(io.BytesIO(data)) as z:
        assert z["digits-cnn/maps"].shape == (2, 1, 4, 4)
        np.testing.assert_array_equal(z["digits-cnn/maps"][:, 0, 0, 0], [1.0, 2.0])
        assert z["digits-cnn/raw"].shape == (2, 1, 4, 4, 3)
        assert list(z["digits-cnn/images"]) == ["a", "b"]
        assert z["digits-cnn_/maps"][0, 0, 0, 0] == 3.0, "a second model with the same slug is kept apart"


def test_predictions_csv_concatenates_models():
    f1 = predictions_frame(np.array([[0.2, 0.8]]), ["x", "y"], 2, ["img"], "m1")
    f2 = predictions_frame(np.array([[0.6, 0.4]]), ["x", "y"], 2, ["img"], "m2")
    df = pd.read_csv(io.BytesIO(predictions_csv([f1, f2])))
    assert list(df["model"]) == ["m1", "m1", "m2", "m2"] and list(df["class_name"]) == ["y", "x", "x", "y"]


def test_slug():
    assert slug("LRP-ε · Digits CNN") == "lrp-digits-cnn"
    assert slug("!!!") == "x"


def test_map_tiles_follow_the_view():
    img = np.zeros((8, 8, 3), np.uint8)
    norm = np.zeros((8, 8), np.float32)
    assert [kind for kind, _ in map_tiles(img, norm, True, "bwr", 0.5, VIEWS[0])] == ["heatmap", "overlay"]
    assert len(map_tiles(img, norm, True, "bwr", 0.5, "overlay")) == 1


def test_compose_grid_is_one_png_with_every_tile():
    tile = np.full((8, 8, 3), 255, np.uint8)
    grid = compose_grid([[tile, tile, tile], [tile]], [["a", "b", "c"], ["d"]], tile=32)
    assert grid.ndim == 3 and grid.shape[2] == 3 and grid.dtype == np.uint8
    assert grid.shape[1] >= 3 * 32 and grid.shape[0] >= 2 * 32
    Image.fromarray(grid)  # encodable
