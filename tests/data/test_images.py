"""Pure helpers: image decoding/fitting, map normalisation/colouring/overlays, Altair chart builders."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from xai_core.data.images import MAX_PIXELS, fit_to_model, load_image, to_display
from xai_core.errors import ImageLoadError
from xai_core.viz.prediction_charts import PREDICTION_SELECTION, predictions_chart, predictions_frame, selected_class
from xai_core.viz.render import colorize, normalize, overlay, png_bytes, upscale
from xai_core.viz.selection import selected_values


def _encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


# --------------------------------------------------------------------------- images
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "LA", "CMYK"])
def test_every_mode_becomes_rgb_uint8(mode):
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray((rng.random((20, 30)) * 65535).astype(np.uint16), mode="I;16")
    else:
        img = Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    loaded = load_image(_encode(img, fmt), "x")
    assert loaded.pixels.shape == (20, 30, 3) and loaded.pixels.dtype == np.uint8
    assert loaded.original_size == (30, 20)


def test_sixteen_bit_is_rescaled_not_clipped():
    ramp = np.linspace(1000, 3000, 40 * 40).reshape(40, 40).astype(np.uint16)
    loaded = load_image(_encode(Image.fromarray(ramp, mode="I;16")), "ramp.png")
    assert loaded.pixels.min() == 0 and loaded.pixels.max() == 255, "full 8-bit range after rescaling"
    assert "rescaled" in loaded.note


def test_transparent_pixels_become_white():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent
    loaded = load_image(_encode(Image.fromarray(rgba, mode="RGBA")), "t.png")
    assert np.all(loaded.pixels == 255)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"this is not an image at all", "not an image"),
    (_encode(Image.new("RGB", (64, 64), "red"))[:60], "damaged or truncated"),
    (_encode(Image.new("RGB", (1, 1))), "at least"),
])
def test_bad_images_raise_readable_errors(data, message):
    with pytest.raises(ImageLoadError, match=message):
        load_image(data, "bad.png")


def test_huge_image_is_refused_before_decoding():
    side = int(np.sqrt(MAX_PIXELS)) + 100
    data = _encode(Image.new("1", (side, side)))  # 1-bit PNG: a few KB on disk, huge when decoded
    with pytest.raises(ImageLoadError, match="MP"):
        load_image(data, "huge.png")


def test_decompression_bomb_guard_is_a_readable_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's own guard, triggered by a smaller image
    with pytest.raises(ImageLoadError, match="decompression-bomb"):
        load_image(_encode(Image.new("RGB", (100, 100))), "bomb.png")


@pytest.mark.parametrize("mode", ["center-crop", "pad", "stretch"])
def test_fit_to_model_sizes_and_channels(mode):
    pixels = np.full((50, 100, 3), 200, np.uint8)
    out = fit_to_model(pixels, (32, 32), 3, mode)
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    gray = fit_to_model(pixels, (28, 20), 1, mode)
    assert gray.shape == (28, 20, 1)


def test_pad_keeps_everything_and_crop_keeps_no_border():
    pixels = np.full((50, 100, 3), 200, np.uint8)
    padded = fit_to_model(pixels, (32, 32), 3, "pad")
    cropped = fit_to_model(pixels, (32, 32), 3, "center-crop")
    assert padded[0, 16].max() == 0 and padded[16, 16].min() > 150  # black bars top/bottom
    assert cropped.min() > 150


def test_to_display():
    assert to_display(np.full((4, 4, 1), 300.0)).shape == (4, 4, 3)
    assert to_display(np.full((4, 4, 1), 300.0)).max() == 255


# --------------------------------------------------------------------------- render
def test_normalize_signed_keeps_sign_and_zero():
    m = np.array([[-2.0, 0.0], [1.0, 4.0]])
    out = normalize(m, signed=True)
    np.testing.assert_allclose(out, [[-0.5, 0], [0.25, 1]])
    assert np.all(normalize(np.zeros((3, 3)), signed=True) == 0)


def test_normalize_unsigned_drops_negatives_and_percentile_clips():
    m = np.arange(100, dtype=float).reshape(10, 10) - 10
    out = normalize(m, signed=False)
    assert out.min() == 0 and out.max() == 1 and out[0, 0] == 0
    clipped = normalize(m, signed=False, mode="percentile", percentile=50)
    assert (clipped == 1).sum() >= 49


def test_percentile_normalisation_keeps_sparse_maps_visible():
    sparse = np.zeros((20, 20))
    sparse[3, 4] = 0.5  # 1 pixel in 400: the 99th percentile is 0
    out = normalize(sparse, signed=True, mode="percentile", percentile=99)
    assert out[3, 4] == 1.0


def test_normalize_per_map_or_shared():
    maps = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 4.0)])
    assert np.allclose(normalize(maps, signed=True), 1.0)
    np.testing.assert_allclose(normalize(maps, signed=True, shared=True)[0], 0.25)


def test_colorize_centres_signed_maps_at_zero():
    white_ish = colorize(np.zeros((1, 1)), signed=True, cmap="bwr")[0, 0]
    assert white_ish.min() > 240  # bwr is white at 0
    assert colorize(np.ones((1, 1)), signed=True, cmap="bwr")[0, 0, 0] > 200  # red for positive
    assert colorize(-np.ones((1, 1)), signed=True, cmap="bwr")[0, 0, 2] > 200  # blue for negative


def test_overlay_leaves_irrelevant_pixels_untouched():
    img = np.full((4, 4, 3), 100, np.uint8)
    norm = np.zeros((4, 4))
    norm[0, 0] = 1.0
    out = overlay(img, norm, signed=False, cmap="jet", alpha=0.5)
    assert np.all(out[1:, :] == 100) and not np.all(out[0, 0] == 100)


def test_upscale_and_png():
    assert upscale(np.zeros((32, 32, 3), np.uint8), 224).shape == (224, 224, 3)
    assert png_bytes(np.zeros((8, 8, 3), np.uint8))[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- charts
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
