"""Suggest's Strategies view in a real browser, on the bias demo: pick the tagged shapes and their model, see the
tagged circles as a cluster, click a t-SNE point and a cluster bar, and open an image in Visualize."""

from __future__ import annotations

from .browser_helpers import (
    assert_no_exception,
    assert_opened_in_visualize,
    open_tagged_circles,
    screenshot,
    wait_for_app,
)


def test_strategies_of_the_tagged_circles(page, app_url):
    open_tagged_circles(page, app_url)
    assert_no_exception(page)
    text = page.get_by_text("records which images carry the tag", exact=False).first.inner_text()
    assert "98% tagged images" in text, text
    page.get_by_text("Eigengap", exact=False).first.scroll_into_view_if_needed()
    screenshot(page, "suggest-strategies-clusters")

    tsne = page.locator('[data-testid="stVegaLiteChart"]').filter(
        has=page.locator('path[aria-label^="image "]'))
    points = tsne.locator('path[aria-label^="image "]')
    assert points.count() == 100
    points.nth(3).scroll_into_view_if_needed()
    points.nth(3).click(force=True)
    wait_for_app(page)
    page.get_by_text("1 selected image", exact=True).wait_for()
    assert_no_exception(page)
    screenshot(page, "suggest-strategies-tsne-click")

    bars = page.locator('[data-testid="stVegaLiteChart"]').filter(has_text="images").locator("g.mark-rect path")
    bar = bars.last
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 4)
    wait_for_app(page)
    assert_no_exception(page)
    page.get_by_text("Check the shortcut", exact=False).first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot(page, "suggest-strategies-shortcut-check")
    assert page.get_by_text("Masking the hot region", exact=False).count() >= 1
    assert_opened_in_visualize(page, page.get_by_role("button", name="Explain").first)
