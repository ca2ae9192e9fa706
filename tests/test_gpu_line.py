"""The one GPU line end to end: a live kernel yields its GPU when others wait; admin weights."""

from __future__ import annotations

import time

from tests.batch import Batch, notebook
from tests.hub import HubProcess


def test_a_live_kernel_gives_its_gpu_back_when_someone_waits(hub: HubProcess) -> None:
    owner, other, late = (hub.ready_user(n) for n in ("line-ann", "line-ben", "line-cat"))
    ann = Batch(owner)
    done = ann.wait(ann.submit("gpu.ipynb", notebook("kept = 1"), profile="gpu-1").json()["id"])
    assert done["state"] == "succeeded" and done["live"] is True
    r = other.start_server("g", {"profile": "gpu-1"})  # the second (last) fake GPU
    assert r.status_code in (201, 202), r.text
    try:
        cat = Batch(late)
        waiting = cat.submit("wait.ipynb", notebook("x = 1"), profile="gpu-1").json()
        # The line cuts ann's live window to the grace period and tells her why.
        deadline = time.monotonic() + 30
        seen = ann.job(done["id"])
        while time.monotonic() < deadline and "others wait" not in seen["reason"]:
            time.sleep(0.5)
            seen = ann.job(done["id"])
        assert "others wait for this GPU type" in seen["reason"]
        assert seen["live_until"] < done["live_until"]
        # After the grace period her server stops and cat's job gets the GPU.
        finished = cat.wait(waiting["id"], timeout=90)
        assert finished["state"] == "succeeded"
        assert ann.job(done["id"])["live"] is False
        cat.call("POST", f"jobs/{waiting['id']}/release")
    finally:
        other.stop_server("g")


def test_admins_set_fair_share_weights(hub: HubProcess) -> None:
    admin, person = Batch(hub.admin()), Batch(hub.ready_user("line-dan"))
    r = person.call("PUT", "weights", json={"kind": "user", "name": "line-dan", "weight": 5})
    assert r.status_code == 403
    bad = admin.call("PUT", "weights", json={"kind": "user", "name": "line-dan", "weight": -1})
    assert bad.status_code == 400 and "above 0" in bad.json()["message"]
    ok = admin.call("PUT", "weights", json={"kind": "group", "name": "staff", "weight": 3})
    assert ok.status_code == 200 and ok.json()["group"]["staff"] == 3.0
    assert person.call("GET", "weights").json()["group"]["staff"] == 3.0


def test_a_gpu_server_in_line_starts_when_the_live_kernel_before_it_is_released(
    hub: HubProcess,
) -> None:
    owner, holder, waiter = (hub.ready_user(n) for n in ("line-eve", "line-fay", "line-gus"))
    eve = Batch(owner)
    done = eve.wait(eve.submit("gpu.ipynb", notebook("kept = 1"), profile="gpu-1").json()["id"])
    assert done["live"] is True
    assert holder.start_server("g", {"profile": "gpu-1"}).status_code in (201, 202)
    try:
        path = f"/hub/api/users/{waiter.name}/servers/w"
        # Waits in the line (the hub answers 202 after ten seconds, 201 if the turn came first).
        r = waiter.api("POST", path, json={"profile": "gpu-1"})
        assert r.status_code in (201, 202), r.text
        time.sleep(1)
        # Released by hand, or already cut to the grace period because gus waits: either
        # way the live kernel's server stops while gus's turn is due.
        released = eve.call("POST", f"jobs/{done['id']}/release")
        assert released.status_code == 200 or "no live kernel" in released.json()["message"]
        # The turn comes once the live kernel's server has really let its GPU go; the
        # start then finds it free (never "only 0 of 1 are free now") and keeps its place.
        waiter.wait_server("w", ready=True, timeout=90)
        assert owner.server_model(done["server_name"]) is None
    finally:
        for person, server in ((waiter, "w"), (holder, "g")):
            if person.server_model(server):
                person.stop_server(server)
