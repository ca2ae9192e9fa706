"""A person in Chromium: sign up, get approved, log in, start a CPU server, JupyterLab loads."""

from __future__ import annotations

import re

import pytest

from tests.hub import DEFAULT_PASSWORD, HubProcess

pytestmark = pytest.mark.browser


def log_in(page, hub: HubProcess, name: str, password: str = DEFAULT_PASSWORD) -> None:
    """Use the login form."""
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")


def test_sign_up_approval_login_and_jupyterlab(hub: HubProcess, browser) -> None:
    admin = hub.admin()  # the first admin signs up like anyone, approved at once
    person = browser.new_context()
    page = person.new_page()
    page.goto(f"{hub.url}/hub/signup")
    page.fill("#username_input", "browseruser")
    page.fill("#password_input", DEFAULT_PASSWORD)
    page.fill("#password_confirmation_input", DEFAULT_PASSWORD)
    page.click("#signup_submit")
    assert "sent to the admin" in page.locator(".alert").inner_text()

    log_in(page, hub, "browseruser")
    page.wait_for_selector("text=/not been authorized/i", timeout=15_000)

    # the admin approves from the authorization page
    admin_ctx = browser.new_context()
    admin_page = admin_ctx.new_page()
    log_in(admin_page, hub, admin.name)
    admin_page.goto(f"{hub.url}/hub/authorize")
    row = admin_page.locator("tr", has_text="browseruser")
    row.get_by_role("button", name="Authorize").click()
    admin_page.wait_for_load_state()
    admin_ctx.close()

    log_in(page, hub, "browseruser")
    page.wait_for_url(re.compile(r"/hub/(spawn|home)"))
    page.goto(f"{hub.url}/hub/home")
    assert page.locator("#batchhub-nav-batch").get_attribute("href").endswith("/services/batch/")
    page.goto(f"{hub.url}/hub/spawn")
    page.check("#profile-cpu")
    assert "1 CPU, 2 GiB memory" in page.inner_text("form")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(re.compile(r"/user/browseruser/lab"), timeout=90_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
    assert "JupyterLab" in page.title()
    person.close()
    r = admin.api("DELETE", "/hub/api/users/browseruser/server")
    assert r.status_code in (202, 204)
