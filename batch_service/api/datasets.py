"""API: datasets — create, list, get, complete, delete — and storage quotas."""

from __future__ import annotations

import asyncio

from batch_service.datasets import DatasetService
from batch_service.errors import BatchError
from batch_service.handlers import BaseHandler
from batch_service.quotas import QuotaService

DATASET = r"(?P<name>[^/]+)"


class DatasetBase(BaseHandler):
    """Handlers over the dataset service."""

    @property
    def datasets(self) -> DatasetService:
        """The dataset service."""
        return self.settings["batch_datasets"]


class DatasetsHandler(DatasetBase):
    """GET: datasets the caller may read (and their own unfinished ones). POST: create one."""

    def get(self) -> None:
        """Name, size, owner, readers, created, sha256 of each."""
        self.write_json(self.datasets.list(self.identity))

    def post(self) -> None:
        """{"name", "readers": "owner"|"group"|"everyone", "group", "description"} -> 201."""
        created = self.datasets.create(self.identity, self.body_json())
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{created['name']}")
        self.write_json(created, 201)


class DatasetHandler(DatasetBase):
    """GET one dataset; DELETE it (its owner or an admin): the space is free again."""

    def get(self, name: str) -> None:
        """The dataset (with its uploads while unfinished)."""
        self.write_json(self.datasets.get(self.identity, name))

    def delete(self, name: str) -> None:
        """Remove it with its files."""
        self.datasets.delete(self.identity, name)
        self.set_status(204)
        self.finish()


class DatasetCompleteHandler(DatasetBase):
    """POST: every upload is in; make the dataset ready (visible at /data/<name>)."""

    async def post(self, name: str) -> None:
        """Unpacking and moving happen off the event loop."""
        identity = self.identity
        self.write_json(await asyncio.to_thread(self.datasets.complete, identity, name))


class QuotasHandler(BaseHandler):
    """GET the caller's quotas and usage; PUT a user's or group's quota (admins)."""

    @property
    def quotas(self) -> QuotaService:
        """The quota service."""
        return self.settings["batch_quotas"]

    def get(self) -> None:
        """Used and allowed bytes, for the caller and their groups (admins: every setting)."""
        self.write_json(self.quotas.view(self.identity))

    def put(self) -> None:
        """{"kind": "user"|"group", "name": ..., "bytes": n or null}."""
        body = self.body_json()
        if not isinstance(body, dict) or set(body) != {"kind", "name", "bytes"}:
            raise BatchError('send {"kind": "user" or "group", "name": ..., "bytes": n or null}')
        self.quotas.set(self.identity, body["kind"], body["name"], body["bytes"])
        self.get()


routes = [
    (r"datasets", DatasetsHandler),
    (rf"datasets/{DATASET}/complete", DatasetCompleteHandler),
    (rf"datasets/{DATASET}", DatasetHandler),
    (r"quotas", QuotasHandler),
]
