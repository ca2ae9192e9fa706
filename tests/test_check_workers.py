"""The worker processes that check uploads: every answer reaches its own caller, and a worker
that dies (the kernel's out-of-memory killer, a stray kill) costs only the upload it was on,
never the service's next submissions."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from batch_service.checks import CheckPool
from batch_service.errors import BatchError
from bench._cpu import children
from tests.batch import Batch, notebook
from tests.hub import HubProcess

BIG_OUTPUT = "x" * (24 * 2**20)  # a notebook of ~24 MiB: many pipe-fulls each way


def workers_of(parent: int) -> list[int]:
    """The check workers `parent` started."""
    return children(parent, b"batch_service.check_worker")


async def test_each_answer_reaches_its_own_caller_big_uploads_included() -> None:
    pool = CheckPool(2)
    try:
        uploads = [notebook("y = 1", parameters=f"p{n} = {n}") for n in range(40)]
        uploads[7] = notebook(f"big = {BIG_OUTPUT!r}", parameters="p7 = 7")
        found = await asyncio.gather(
            *(
                pool.check_upload(f"nb{n}.ipynb", body, None, 10, 2**20)
                for n, body in enumerate(uploads)
            )
        )
        for n, checked in enumerate(found):
            assert checked.name == f"nb{n}.ipynb" and checked.content == uploads[n]
            assert [p.name for p in checked.parameters or []] == [f"p{n}"]
        # A refusal comes back as the refusal, with its status and message.
        with pytest.raises(BatchError, match="not valid JSON|not a notebook") as refused:
            await pool.check_notebook(b"{nope", "broken.ipynb")
        assert refused.value.status == 400
    finally:
        pool.shutdown()
    assert workers_of(os.getpid()) == [], "shutdown left check workers running"


async def test_a_worker_that_dies_fails_only_the_check_it_was_on() -> None:
    pool = CheckPool(1)
    try:
        await pool.check_notebook(notebook("a = 1"), "warm.ipynb")
        [pid] = workers_of(os.getpid())
        # Stopped, the worker holds the two calls below without beginning either; then killed.
        os.kill(pid, signal.SIGSTOP)
        first = asyncio.ensure_future(pool.check_notebook(notebook("b = 2"), "first.ipynb"))
        second = asyncio.ensure_future(
            pool.check_upload("second.ipynb", notebook("c = 3"), None, 10, 2**20)
        )
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BatchError, match="stopped before it finished") as stopped:
            await first
        assert stopped.value.status == 500 and "nothing was stored" in stopped.value.message
        # The call behind it goes to the worker started in its place.
        assert (await asyncio.wait_for(second, 60)).name == "second.ipynb"
        [fresh] = workers_of(os.getpid())
        assert fresh != pid
        await pool.check_notebook(notebook("d = 4"), "after.ipynb")
    finally:
        pool.shutdown()


def test_the_service_takes_submissions_after_its_check_workers_are_killed(
    hub: HubProcess,
) -> None:
    batch = Batch(hub.ready_user("checkers-killed"))
    service = hub.service_pid()
    killed = workers_of(service)
    assert killed, "the service has no check workers"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    # The service notices at once and starts others in their place.
    deadline = time.monotonic() + 30
    while len(set(workers_of(service)) - set(killed)) < len(killed):
        assert time.monotonic() < deadline, "no check workers were started again"
        time.sleep(0.1)
    answers = [batch.submit(f"after{n}.ipynb", notebook(f"n = {n}")) for n in range(3)]
    assert [r.status_code for r in answers] == [201, 201, 201], [r.text for r in answers]
    for r in answers:
        batch.call("POST", f"jobs/{r.json()['id']}/cancel")


async def test_small_uploads_never_wait_behind_a_big_one() -> None:
    pool = CheckPool(2)
    try:
        pool.warm_up()
        await asyncio.gather(*(pool.check_notebook(notebook("w = 0"), "w.ipynb") for _ in range(2)))
        finished: list[str] = []

        async def check(name: str, body: bytes) -> None:
            await pool.check_upload(name, body, None, 10, 2**20)
            finished.append(name)

        big = asyncio.ensure_future(check("big.ipynb", notebook(f"big = {BIG_OUTPUT!r}")))
        await asyncio.sleep(0)  # handed over first
        await asyncio.gather(*(check(f"small{n}.ipynb", notebook(f"s = {n}")) for n in range(12)))
        await big
        # Every small check went to the other worker, none behind the big one.
        assert finished[-1] == "big.ipynb", finished
    finally:
        pool.shutdown()
