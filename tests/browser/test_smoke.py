"""Smoke test: the app starts in a real browser and shows its home page without an exception."""

from .browser_helpers import assert_no_exception, screenshot, wait_for_app


def test_home_page_renders(page, app_url):
    page.goto(app_url)
    wait_for_app(page)

    assert_no_exception(page)
    assert page.get_by_role("heading", name="XAI Lens").first.is_visible()
    nav = page.locator('[data-testid="stSidebarNav"]')
    assert nav.is_visible(), "sidebar navigation is not rendered"
    assert nav.locator('[data-testid="stSidebarNavLink"]').count() >= 2
    screenshot(page, "smoke-home")
