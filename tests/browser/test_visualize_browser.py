"""Visualize in a real browser: upload an image through the file uploader, pick Grad-CAM, see the overlay."""

from __future__ import annotations

import re

import numpy as np
from PIL import Image, ImageDraw

from .browser_helpers import assert_no_exception, screenshot, wait_for_app


def _digit_like_png(path) -> None:
    img = Image.new("L", (96, 96), 0)
    ImageDraw.Draw(img).ellipse((24, 12, 72, 84), outline=255, width=10)  # a "0"
    img.save(path)


def test_upload_pick_gradcam_see_overlay(page, app_url, tmp_path):
    photo = tmp_path / "my_zero.png"
    _digit_like_png(photo)
    page.goto(f"{app_url}/visualize")
    wait_for_app(page)
    assert_no_exception(page)

    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Upload images")
    uploader.locator('input[type="file"]').set_input_files(str(photo))
    wait_for_app(page)
    assert page.get_by_text("my_zero.png (input 32×32)").first.is_visible()

    page.get_by_role("radiogroup", name="Method family").get_by_role("radio", name=re.compile(r"^CAM ·")).click()
    wait_for_app(page)
    assert page.get_by_text("Why? Grad-CAM for", exact=False).first.is_visible()
    overlays = page.locator('[data-testid="stImage"]').filter(has_text="overlay")
    assert overlays.count() >= 2, "one overlay per image (gallery default + the upload)"
    img = overlays.last.locator("img")
    assert img.evaluate("el => el.complete && el.naturalWidth > 0"), "overlay image did not load"
    assert_no_exception(page)
    screenshot(page, "visualize-gradcam-controls")
    img.scroll_into_view_if_needed()  # Streamlit scrolls inside its own container: bring the result grid into view
    screenshot(page, "visualize-gradcam-upload")


def test_bad_upload_shows_error_and_page_keeps_working(page, app_url, tmp_path):
    bad = tmp_path / "broken.png"
    good = tmp_path / "fine.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(good)
    bad.write_bytes(good.read_bytes()[:60])
    page.goto(f"{app_url}/visualize")
    wait_for_app(page)
    page.locator('[data-testid="stFileUploader"]').filter(has_text="Upload images").locator(
        'input[type="file"]').set_input_files([str(bad), str(good)])
    wait_for_app(page)
    assert page.locator('[data-testid="stAlertContentError"]').filter(has_text="broken.png").count() == 1
    assert page.get_by_text("fine.png (input 32×32)").first.is_visible()
    assert_no_exception(page)
    screenshot(page, "visualize-bad-upload", full_page=True)


def test_extreme_aspect_ratio_uploads_show_no_exception_box(page, app_url, tmp_path):
    """Issue: uploading a 4000×8 (or 1000×9) image to Visualize or Compare Models showed an exception box
    (``height and width must be > 0`` from a thumbnail) and the good images uploaded with it were lost."""
    files = []
    for w, h in ((4000, 8), (1000, 9), (9, 1000), (800, 8)):
        path = tmp_path / f"strip_{w}x{h}.png"
        Image.fromarray(np.random.default_rng(w).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        files.append(str(path))
    _digit_like_png(tmp_path / "good.png")
    files.append(str(tmp_path / "good.png"))
    for route in ("visualize", "compare"):
        page.goto(f"{app_url}/{route}")
        wait_for_app(page)
        uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Upload images")
        uploader.locator('input[type="file"]').set_input_files(files)
        wait_for_app(page, timeout_s=240)
        assert_no_exception(page)
        assert page.get_by_text("good.png", exact=False).count() >= 1, "the good image is still there"
        screenshot(page, f"{route}-extreme-aspect")


def test_upload_keras3_resnet50_shows_the_converted_line_and_its_maps(page, app_url):
    """Issue 24: a ResNet50 saved by Keras 3 (model.save('ResNet50.keras'), tests/keras3_zoo.py) uploaded under
    "Use your own model": the page says the file was converted, and explains the model."""
    import keras3_zoo

    path = keras3_zoo.build() / "keras3" / "ResNet50.keras"
    converted = "Keras 3.15.1 file, converted: 177 layers, 25.6 M weights"
    page.goto(f"{app_url}/visualize")
    wait_for_app(page)
    page.get_by_text("Use your own model").first.click()
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Model file")
    uploader.locator('input[type="file"]').set_input_files(str(path))
    wait_for_app(page, timeout_s=300)
    assert_no_exception(page)
    success = page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Loaded")
    assert success.count() == 1 and converted in success.inner_text()
    assert page.get_by_text(converted, exact=False).count() >= 2, "the success box and the model's summary"
    assert page.locator('[data-testid="stImage"]').filter(has_text="ResNet50 (input 64×64)").count() == 1
    overlays = page.locator('[data-testid="stImage"]').filter(has_text="overlay")
    assert overlays.count() == 2, "one overlay per model: the demo CNN's and the uploaded ResNet50's (last)"
    img = overlays.last.locator("img")
    img.scroll_into_view_if_needed()
    assert img.evaluate("el => el.complete && el.naturalWidth > 0"), "map image did not load"
    screenshot(page, "visualize-keras3-resnet50-maps")
    page.get_by_text(converted, exact=False).first.scroll_into_view_if_needed()
    screenshot(page, "visualize-keras3-resnet50-converted")
