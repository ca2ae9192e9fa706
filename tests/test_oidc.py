"""Login through a real OpenID Connect provider; a member of the batch admin group administers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from oidc_provider_mock import run_server_in_thread

from tests.hub import HubProcess, free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def provider() -> Iterator[str]:
    """An OpenID Connect provider on loopback, with two people and their groups."""
    with run_server_in_thread(port=free_port()) as server:
        issuer = f"http://localhost:{server.server_port}"
        for sub, groups in (("olga", ["ml", "batch-admins"]), ("pete", ["ml"])):
            r = requests.put(
                f"{issuer}/users/{sub}",
                json={"preferred_username": sub, "email": f"{sub}@example.org", "groups": groups},
                timeout=10,
            )
            r.raise_for_status()
        yield issuer


def log_in_with_provider(context, hub: HubProcess, sub: str):  # type: ignore[no-untyped-def]
    page = context.new_page()
    page.goto(f"{hub.url}/hub/oauth_login")
    page.wait_for_selector("input[name=sub]")
    page.fill("input[type=text][name=sub]", sub)
    page.locator("input[type=text][name=sub]").press("Enter")
    page.wait_for_url(f"{hub.url}/hub/**", timeout=30_000)
    return page


def test_oidc_login_and_batch_admin_by_group(fresh_hub: HubProcess, provider: str, browser) -> None:
    hub = fresh_hub
    hub.values["auth"] = {
        "type": "oauth",
        "oauth": {
            "issuer": provider,
            "client_id": "batchhub",
            "client_secret": "not-a-secret",
            "callback_url": f"{hub.url}/hub/oauth_callback",
            "scope": ["openid", "profile", "email"],
            "groups_claim": "groups",
            "batch_admin_groups": ["batch-admins"],
        },
    }
    hub.start()
    for sub, is_batch_admin in (("olga", True), ("pete", False)):
        context = browser.new_context()
        page = log_in_with_provider(context, hub, sub)
        page.goto(f"{hub.url}/services/batch/")
        page.wait_for_selector("#jobs-table")
        assert page.locator("#admin-panel").count() == (1 if is_batch_admin else 0)
        assert (page.locator("#queue-toggle").count() == 1) is is_batch_admin
        page.goto(f"{hub.url}/hub/home")
        assert sub in page.inner_text("nav")  # logged in as the provider's preferred_username
        context.close()
