"""Map rendering (xai_core.viz.render): normalisation, colouring, overlays, upscaling, PNG."""

from __future__ import annotations

import numpy as np
import pytest

from xai_core.viz.render import colorize, normalize, overlay, png_bytes, upscale


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


@pytest.mark.parametrize("shape", [(8, 800), (800, 8), (9, 9000), (9000, 9), (8, 8), (300, 200), (1, 100)])
def test_square_thumbnail_has_its_size_for_any_aspect_ratio(shape):
    """Issue: a 4000×8 upload crashed the page (``st.image`` computed a 0-px-high thumbnail)."""
    from xai_core.viz.render import square_thumbnail

    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    thumb = square_thumbnail(image, 100)
    assert thumb.shape == (100, 100, 3) and thumb.dtype == np.uint8
    assert thumb.std() > 0, "the image is in it, not only the grey letterbox"


@pytest.mark.parametrize(("signed", "mode", "shared"), [(True, "max-abs", False), (True, "percentile", True),
                                                        (False, "percentile", False), (False, "max-abs", True)])
def test_normalization_scale_is_what_normalize_divides_by(signed, mode, shared):
    """The report writes "1 = <scale>" under each map: that value times the drawn map gives the map back wherever
    normalisation did not clip."""
    from xai_core.viz.render import normalization_scale

    maps = np.random.default_rng(1).normal(size=(3, 12, 12)).astype(np.float32) * np.array([1, 5, 0.1])[:, None, None]
    maps[2] = -np.abs(maps[2])  # an unsigned method spreading a negative score: drawn by magnitude
    norm = normalize(maps, signed, mode, 97.0, shared)
    scale = normalization_scale(maps, signed, mode, 97.0, shared)
    assert scale.shape == ((1, 1, 1) if shared else (3, 1, 1)) and np.all(scale > 0)
    drawn = maps if signed else np.where(maps.max(axis=None if shared else (1, 2), keepdims=True) <= 0, -maps, maps)
    inside = (np.abs(norm) < 1) & (norm != 0)
    np.testing.assert_allclose((norm * scale)[inside], drawn[inside], rtol=1e-5)
