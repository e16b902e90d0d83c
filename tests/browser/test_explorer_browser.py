"""Dataset Explorer in a real browser: click a confusion cell and see its images; click a t-SNE point.

Streamlit draws Vega-Lite charts as SVG; every cell of the heatmap is one ``path`` whose ``aria-label`` names its
encoded fields ("predicted class: 2; true class: 1; ..."), so the test clicks the cell by what it shows, not by
pixel arithmetic.
"""

from __future__ import annotations

from .browser_helpers import assert_no_exception, assert_opened_in_visualize, screenshot, wait_for_app


def open_tab(page, name: str) -> None:
    """Switch tabs: they track state, so the page reruns and only the open tab is computed."""
    page.get_by_role("tab", name=name).click()
    wait_for_app(page)


def cell(page, true: str, predicted: str):
    chart = page.locator('[data-testid="stVegaLiteChart"]').filter(
        has=page.locator('g.mark-rect path[aria-label*="true class:"]'))
    return chart.locator(f'g.mark-rect path[aria-label^="predicted class: {predicted}; true class: {true};"]')


def test_click_confusion_cell_shows_its_images(page, app_url):
    page.goto(f"{app_url}/explorer")
    wait_for_app(page)
    assert_no_exception(page)
    open_tab(page, "Confusion")
    wrong = cell(page, "1", "2")  # the demo CNN's one mistake on the digits test set: a 1 read as a 2
    assert wrong.count() == 1
    assert "images: 1;" in wrong.get_attribute("aria-label")
    wrong.scroll_into_view_if_needed()
    wrong.click(force=True)  # at the centre, where the count is written: what a person clicks
    wait_for_app(page)
    heading = page.get_by_text("True 1, predicted 2: 1 image", exact=True)
    heading.wait_for()
    assert_no_exception(page)
    panel = page.locator('[data-testid="stTabPanel"]:visible')
    thumbs = panel.locator('[data-testid="stImage"] img')
    assert thumbs.count() == 1
    assert thumbs.first.evaluate("el => el.complete && el.naturalWidth > 0"), "thumbnail did not load"
    assert cell(page, "1", "2").get_attribute("stroke") == "#d6336c", "the clicked cell is outlined"
    heading.scroll_into_view_if_needed()
    page.mouse.move(800, 450)
    page.mouse.wheel(0, -250)  # lower half of the matrix above the images
    page.wait_for_timeout(300)
    screenshot(page, "explorer-confusion-click")

    right = cell(page, "3", "3")  # a diagonal cell: 37 correct threes, most confident first
    right.scroll_into_view_if_needed()
    right.click(force=True)
    wait_for_app(page)
    page.get_by_text("True 3, predicted 3: 37 images", exact=True).wait_for()
    assert panel.locator('[data-testid="stImage"] img').count() == 24, "the first 24 of 37"
    assert panel.get_by_role("button", name="Explain").count() == 24
    assert_opened_in_visualize(page, panel.get_by_role("button", name="Explain").first)  # with the image and model


def test_tsne_point_click_and_every_tab(page, app_url):
    page.goto(f"{app_url}/explorer")
    wait_for_app(page)
    screenshot(page, "explorer-accuracy")
    open_tab(page, "t-SNE")
    points = page.locator('[data-testid="stVegaLiteChart"] g.mark-symbol.role-mark path')
    assert points.count() == 360
    points.nth(100).scroll_into_view_if_needed()
    assert points.nth(100).get_attribute("aria-label").startswith("image 100: true ")
    points.nth(100).click(force=True)
    wait_for_app(page)
    page.get_by_text("1 selected image", exact=True).wait_for()
    assert page.get_by_text("digits/test/", exact=False).count() >= 1
    assert_no_exception(page)
    points.nth(200).hover(force=True)
    page.locator("#vg-tooltip-element img").first.wait_for(state="attached")  # the thumbnail in the tooltip
    screenshot(page, "explorer-tsne-click")
    for tab in ("Activations", "Max activating"):
        open_tab(page, tab)
        page.locator('[data-testid="stTabPanel"]:visible [data-testid="stImage"]').last.scroll_into_view_if_needed()
        screenshot(page, f"explorer-{tab.lower().replace(' ', '-')}")
    open_tab(page, "Deep dream")
    page.get_by_role("button", name="Dream: maximise", exact=False).click()
    wait_for_app(page)
    page.get_by_text("Mean activation", exact=True).wait_for()
    download = page.get_by_role("button", name="Download PNG")
    assert download.count() == 1
    assert_no_exception(page)
    download.scroll_into_view_if_needed()
    screenshot(page, "explorer-deep-dream")
