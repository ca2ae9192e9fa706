"""The hub's own pages with batch jobs about: Home and Admin list interactive servers, batch
servers are one count; their tokens are folded apart; stopped ones go; an ended kernel says so.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from jupyterhub._data import DATA_FILES_PATH

from tests.batch import Batch
from tests.hub import ROOT, HubProcess
from tests.test_embedded_browser import log_in


def hub_templates() -> jinja2.Environment:
    """The hub's template lookup: batchhub's templates, then JupyterHub's own."""
    hub = f"{DATA_FILES_PATH}/templates"
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(str(ROOT / "hub_config" / "templates")),
                jinja2.PrefixLoader({"templates": jinja2.FileSystemLoader(hub)}),
                jinja2.FileSystemLoader(hub),
            ]
        ),
        autoescape=True,
    )


PAGE = {"no_spawner_check": True, "static_url": lambda *a, **k: "", "base_url": "/hub/"}


def test_a_gone_batch_server_says_its_kernel_ended_and_links_the_executed_notebook() -> None:
    page = hub_templates().get_template("not_running.html")
    html = page.render(server_name="batch-k3j9x2m4qp", spawn_url="/hub/spawn/x", **PAGE)
    assert "This live kernel has ended" in html and "Launch" not in html
    assert 'href="/hub/../services/batch/jobs/k3j9x2m4qp"' in html
    # Any other server keeps the hub's own page, with its Launch button.
    other = page.render(server_name="work", spawn_url="/hub/spawn/x", **PAGE)
    assert "Launch" in other and "has ended" not in other


def test_home_lists_interactive_servers_and_counts_batch_servers() -> None:
    def server(name: str, active: bool) -> SimpleNamespace:
        return SimpleNamespace(
            name=name,
            active=active,
            ready=active,
            display_name="",
            last_activity=None,
            pending=None,
        )

    user = SimpleNamespace(
        name="ana",
        json_escaped_name="ana",
        all_spawners=lambda include_default: [
            server("batch-aaaaaaaaaa", True),
            server("batch-bbbbbbbbbb", False),  # stopped: neither counted nor listed
            server("work", False),
        ],
        server_url=lambda name: f"/user/ana/{name}/",
    )
    html = (
        hub_templates()
        .get_template("home.html")
        .render(
            user=user,
            default_server=SimpleNamespace(active=False),
            allow_named_servers=True,
            named_server_limit_per_user=0,
            url="/hub/spawn",
            **PAGE,
        )
    )
    assert re.findall(r'data-server-name="([^"]*)"', html) == ["work"]
    assert "1 batch server running" in " ".join(html.split())


def test_batch_server_tokens_are_folded_apart_on_the_token_page() -> None:
    def token(note: str) -> SimpleNamespace:
        return SimpleNamespace(
            note=note, scopes=[], last_activity=None, created=datetime(2026, 1, 1),
            expires_at=None, api_id="a1",
        )  # fmt: skip

    html = (
        hub_templates()
        .get_template("token.html")
        .render(
            api_tokens=[token("for my laptop"), token("Server at /user/ana/batch-aaaaaaaaaa/")],
            oauth_clients=[],
            token_expires_in_options_html="",
            **PAGE,
        )
    )
    main, folded = html.split('id="batchhub-batch-tokens"')
    assert "for my laptop" in main and "batch-aaaaaaaaaa" not in main
    assert "/user/ana/batch-aaaaaaaaaa/" in folded


@pytest.mark.browser
def test_batch_servers_stay_off_home_and_admin_and_go_after_a_restart(
    fresh_hub: HubProcess, browser
) -> None:
    hub = fresh_hub.start()
    admin = hub.admin()
    user = hub.ready_user("hp-ana")
    batch = Batch(user)
    job = batch.wait(batch.submit("live.py", b"x = 1\n").json()["id"])
    assert job["live"] is True
    assert user.start_server("work", {"profile": "cpu"}).status_code in (201, 202)
    home = user.session.get(f"{hub.url}/hub/home").text
    assert re.findall(r'data-server-name="([^"]*)"', home) == ["work"]
    assert "1 batch server running" in " ".join(home.split())
    tokens = user.session.get(f"{hub.url}/hub/token").text
    main, folded = tokens.split('id="batchhub-batch-tokens"')
    assert job["server_name"] not in main and job["server_name"] in folded
    # The admin's React page: the user's interactive server, none of the batch servers.
    ctx = browser.new_context()
    page = ctx.new_page()
    log_in(page, hub, admin.name)
    page.goto(f"{hub.url}/hub/admin")
    page.wait_for_selector("[data-testid='user-row-hp-ana-work']", timeout=30_000)
    assert page.locator("[data-testid^='user-row-hp-ana-batch-']").count() == 0
    assert "Batch page" in page.inner_text("#batchhub-admin-note")
    ctx.close()
    # A restart stops every server but the hub would keep listing them: batch ones go.
    hub.stop()
    hub.start()

    def listed() -> set[str]:
        r = admin.api("GET", "/hub/api/users/hp-ana?include_stopped_servers=1")
        return set(r.json()["servers"])

    deadline = time.monotonic() + 60
    while any(name.startswith("batch-") for name in listed()) and time.monotonic() < deadline:
        time.sleep(1)
    assert listed() - {""} == {"work"}  # "" is the default server's (stopped) entry
    # Its live kernel went with it, and its link says so.
    user.login()
    ended = user.session.get(f"{hub.url}/services/batch/jobs/{job['id']}/live")
    assert ended.status_code == 410 and "has ended" in ended.text


@pytest.mark.browser
def test_the_spawn_page_tells_when_a_waiting_gpu_servers_turn_comes(
    hub: HubProcess, browser
) -> None:
    from tests.test_batch_pages import SHOTS, SPY, switch_on

    holder = hub.ready_user("sp-hold")
    for server in ("g1", "g2"):  # both fake GPUs
        assert holder.start_server(server, {"profile": "gpu-1"}).status_code in (201, 202)
    waiter = hub.ready_user("sp-wait")
    ctx = browser.new_context(permissions=["notifications"])
    ctx.add_init_script(SPY)
    page = ctx.new_page()
    log_in(page, hub, waiter.name)
    page.wait_for_url("**/hub/**")
    try:
        page.goto(f"{hub.url}/hub/spawn/{waiter.name}/g")
        page.check("#profile-gpu-1")
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_selector("#batchhub-line:not([hidden])", timeout=60_000)
        page.wait_for_function("document.title.startsWith('#1 in line')", timeout=30_000)
        if SHOTS:  # the waiting spawn page, to look at (desktop and phone width)
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900})
                page.screenshot(
                    path=str(Path(SHOTS) / f"spawn-waiting-{width}.png"), full_page=True
                )
            page.set_viewport_size({"width": 1280, "height": 900})
        switch_on(page)
        holder.stop_server("g1")
        page.wait_for_function(
            "window.__notes.some(n => n.title.startsWith('Your turn'))", timeout=90_000
        )
        waiter.wait_server("g", ready=True, timeout=120)
    finally:
        ctx.close()
        for person, server in ((holder, "g1"), (holder, "g2"), (waiter, "g")):
            if person.server_model(server):
                person.stop_server(server)
