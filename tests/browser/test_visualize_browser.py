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
