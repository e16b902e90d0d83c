"""Compare Models in a real browser: a 3-model grid (two digits models and a shapes model, each with its own
classes and input size) renders its images and agreement matrix; a click on a matrix cell picks that pair."""

from __future__ import annotations

import time

from xai_core.data.demo import SHAPE_CLASSES

from .browser_helpers import assert_no_exception, screenshot, wait_for_app


def _loaded(img) -> bool:
    return img.evaluate("el => el.complete && el.naturalWidth > 0")


def test_three_model_grid(page, app_url):
    page.goto(f"{app_url}/compare")
    start = time.monotonic()
    wait_for_app(page, timeout_s=240)
    first_run_s = time.monotonic() - start
    assert_no_exception(page)
    assert page.get_by_role("heading", name="Compare Models").is_visible()

    models = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Models")
    models.locator("input").click()
    page.get_by_role("option", name="Shapes CNN", exact=False).first.click()
    page.keyboard.press("Escape")
    wait_for_app(page, timeout_s=240)
    assert_no_exception(page)

    for name in ("Digits CNN", "Digits ResNet", "Shapes CNN"):  # the grid's column headers
        assert page.locator('[data-testid="stMarkdownContainer"] strong', has_text=name).first.is_visible()
    overlays = page.locator('[data-testid="stImage"]').filter(has_text="%")  # "<class> · <confidence>%" captions
    assert overlays.count() >= 9, "3 images × 3 models"
    assert all(_loaded(overlays.nth(i).locator("img")) for i in range(overlays.count()))
    predicted = [t.strip().split(" · ")[0] for t in overlays.all_inner_texts()]
    assert sum(p in SHAPE_CLASSES for p in predicted) >= 3 and sum(p.isdigit() for p in predicted) >= 6, \
        f"each model shows its own classes: {predicted}"
    grid = page.get_by_text("Image", exact=True).first
    grid.scroll_into_view_if_needed()
    screenshot(page, "compare-three-models-grid")

    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(page, "compare-agreement-matrix")
    pair = page.locator('[data-testid="stSelectbox"]').filter(has_text="Difference of the pair").locator("input")
    assert pair.input_value() == "Digits CNN − Digits ResNet"
    # Click the (Digits ResNet, Shapes CNN) cell of the Spearman heatmap (Vega's SVG marks carry the tooltip text)
    # at its centre, on the value label, as a person would click
    cell = chart.locator('g.mark-rect path[aria-label*="row: Digits ResNet; column: Shapes CNN"]').first
    cell.scroll_into_view_if_needed()
    box = cell.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_for_app(page)
    assert_no_exception(page)
    assert pair.input_value() == "Digits ResNet − Shapes CNN"
    diffs = page.locator('[data-testid="stImage"]').filter(has_text="largest |difference|")  # one per image
    assert diffs.count() == 3 and all(_loaded(diffs.nth(i).locator("img")) for i in range(3))
    diffs.last.scroll_into_view_if_needed()
    screenshot(page, "compare-difference")
    accuracy = page.get_by_role("heading", name="Over a data set")
    accuracy.scroll_into_view_if_needed()
    assert page.get_by_text("where the models disagree", exact=False).first.is_visible()
    page.mouse.wheel(0, 300)
    page.wait_for_timeout(300)
    screenshot(page, "compare-dataset")
    print(f"first compute of the page: {first_run_s:.1f} s")



def test_method_grid(page, app_url):
    page.goto(f"{app_url}/compare")
    wait_for_app(page, timeout_s=240)
    page.get_by_role("radiogroup", name="Compare").get_by_role("radio", name="Method grid").click()
    wait_for_app(page, timeout_s=240)
    assert_no_exception(page)
    for label in ("Gradient (saliency)", "LRP-ε", "Guided Backprop", "Grad-CAM"):
        assert page.locator('[data-testid="stMarkdownContainer"] strong', has_text=label).first.is_visible()
    tiles = page.locator('[data-testid="stImage"]').filter(has_text="Grad-CAM")
    assert tiles.count() >= 3 and all(_loaded(tiles.nth(i).locator("img")) for i in range(3))
    tiles.last.scroll_into_view_if_needed()
    screenshot(page, "compare-method-grid")
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.scroll_into_view_if_needed()
    labels = chart.locator("g.role-axis-label text").evaluate_all("els => els.map(e => e.textContent)")
    assert all(labels.count(m) >= 3 for m in ("LRP-ε", "Guided Backprop")), f"every axis label drawn: {labels}"
    screenshot(page, "compare-method-matrix")
