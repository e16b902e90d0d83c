"""Image decoding and fitting (xai_core.data.images): every PIL mode, bad and huge files, fit to the model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from xai_core.data.images import MAX_PIXELS, fit_to_model, load_image, to_display
from xai_core.errors import ImageLoadError


def _encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "LA", "CMYK"])
def test_every_mode_becomes_rgb_uint8(mode):
    rng = np.random.default_rng(0)
    if mode == "I;16":
        img = Image.fromarray((rng.random((20, 30)) * 65535).astype(np.uint16))
        assert img.mode == "I;16"
    else:
        img = Image.fromarray((rng.random((20, 30, 3)) * 255).astype(np.uint8)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    loaded = load_image(_encode(img, fmt), "x")
    assert loaded.pixels.shape == (20, 30, 3) and loaded.pixels.dtype == np.uint8
    assert loaded.original_size == (30, 20)


def test_sixteen_bit_is_rescaled_not_clipped():
    ramp = np.linspace(1000, 3000, 40 * 40).reshape(40, 40).astype(np.uint16)
    loaded = load_image(_encode(Image.fromarray(ramp)), "ramp.png")
    assert loaded.pixels.min() == 0 and loaded.pixels.max() == 255, "full 8-bit range after rescaling"
    assert "rescaled" in loaded.note


def test_transparent_pixels_become_white():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 255  # red, fully transparent
    loaded = load_image(_encode(Image.fromarray(rgba)), "t.png")
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


@pytest.mark.parametrize(("w", "h"), [(4000, 8), (1000, 9), (8, 4000), (8000, 100), (5000, 5000)])
def test_downscaling_never_makes_an_image_too_small(w, h):
    """Issue: the 1,024-px downscale turned 4000×8 into 1024×2, past the "at least 8×8" check made before it."""
    from xai_core.data.images import MIN_SIDE
    from xai_core.data.inputs import shrink

    pixels = np.zeros((h, w, 3), np.uint8)
    out, note = shrink(pixels, 1024)
    assert min(out.shape[:2]) >= MIN_SIDE
    assert max(out.shape[:2]) <= max(1024, max(w, h) * MIN_SIDE // min(w, h))
    if max(w, h) > 1024 and min(w, h) * 1024 / max(w, h) >= MIN_SIDE:
        assert max(out.shape[:2]) == 1024 and note.startswith("downscaled")
