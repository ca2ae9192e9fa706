"""API: who holds the GPUs (everyone: counts and times; names for batch readers), and an
admin's way to end a holder."""

from __future__ import annotations

from batch_service.errors import BatchError, NotFound
from batch_service.gpu_view import INTERACTIVE, LIVE, RUN
from batch_service.handlers import BaseHandler
from batch_service.hub_client import HubError, HubUnreachable


class GpusHandler(BaseHandler):
    """GET each GPU and its holder, as of the scheduler's last look at the hub."""

    async def get(self) -> None:
        """The GPU view for the caller."""
        scheduler = self.app.scheduler
        self.write_json(
            await self.app.gpu_view.view(self.identity, scheduler.hub_servers, scheduler.seen_at)
        )


class GpuHolderEndHandler(BaseHandler):
    """POST {"owner", "server"}: end what holds GPUs (cancel the run, release the live
    kernel, or stop the interactive server). Batch admins only."""

    async def post(self) -> None:
        """End one holder; answers what was done."""
        identity = self.identity
        if not identity.is_admin:
            raise BatchError("only batch admins may end what holds a GPU", status=403)
        body = self.body_json()
        if not isinstance(body, dict) or set(body) != {"owner", "server"}:
            raise BatchError('send {"owner": <user name>, "server": <server name>}')
        owner, server = body["owner"], body["server"]
        holders = self.app.gpu_view.holders(self.app.scheduler.hub_servers)
        holder = next((h for h in holders if (h["owner"], h["server"]) == (owner, server)), None)
        if holder is None:
            raise NotFound(f"no server {server!r} of {owner!r} holds GPUs now")
        if holder["kind"] == RUN:
            job, stop = self.jobs.cancel(identity, holder["job_id"])
        elif holder["kind"] == LIVE:
            job, stop = self.jobs.release(identity, holder["job_id"])
        else:
            job, stop = None, None
            self.app.warm.forget(owner, server)  # an idle server takes no run from now on
            try:
                await self.app.hub.stop_server(owner, server)
            except (HubError, HubUnreachable) as e:
                raise BatchError(f"the hub did not stop the server: {e}", status=502) from None
        if stop is not None:
            await self.app.stop_server_soon(stop)
        what = {
            RUN: "cancelled the run",
            LIVE: "released the live kernel",
            INTERACTIVE: "stopped the server",
        }.get(holder["kind"], "stopped it")
        self.write_json({"ended": what, "owner": owner, "server": server, "job": job})


routes = [
    (r"gpus", GpusHandler),
    (r"gpus/end", GpuHolderEndHandler),
]
