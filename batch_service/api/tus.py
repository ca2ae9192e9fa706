"""API: resumable uploads (tus 1.0.0) at `uploads` and `uploads/<id>`.

The protocol's state lives in batch_service.tus_uploads; these handlers read the headers,
stream PATCH bodies to it and answer with the tus headers on every response, errors included.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tornado import web

from batch_service.errors import BatchError
from batch_service.handlers import BaseHandler
from batch_service.tus_uploads import (
    CHECKSUMS,
    EXTENSIONS,
    TUS_VERSION,
    Patch,
    UploadService,
    upload_view,
)

# Past a refusal, bytes still arriving are read and dropped up to this much, so the client gets
# the answer; beyond it the connection is closed after the answer.
DISCARD_LIMIT = 64 * 2**20


class TusBase(BaseHandler):
    """tus headers on every answer; version check; OPTIONS needs no login."""

    @property
    def uploads(self) -> UploadService:
        """The upload service."""
        return self.settings["batch_uploads"]

    def clear(self) -> None:
        """Errors clear headers: put the protocol's back."""
        super().clear()
        self.set_header("Tus-Resumable", TUS_VERSION)
        self.set_header("Cache-Control", "no-store")

    def check_version(self) -> None:
        """Every request but OPTIONS names the protocol version."""
        if self.request.method != "OPTIONS":
            version = self.request.headers.get("Tus-Resumable")
            if version != TUS_VERSION:
                self.set_header("Tus-Version", TUS_VERSION)
                raise BatchError(f"send Tus-Resumable: {TUS_VERSION}", status=412)

    def options(self, *args: Any, **kwargs: Any) -> None:
        """What this server supports."""
        self.set_header("Tus-Version", TUS_VERSION)
        self.set_header("Tus-Extension", EXTENSIONS)
        self.set_header("Tus-Checksum-Algorithm", ",".join(CHECKSUMS))
        self.set_status(204)
        self.finish()

    def expires(self, moment: float) -> None:
        """Upload-Expires in HTTP date form."""
        from email.utils import formatdate

        self.set_header("Upload-Expires", formatdate(moment, usegmt=True))


class UploadsHandler(TusBase):
    """POST: create an upload (tus creation, creation-defer-length)."""

    async def prepare(self) -> None:
        """Identity, then the protocol version."""
        await super().prepare()
        self.check_version()

    def post(self) -> None:
        """201 with the new upload's Location."""
        headers = self.request.headers
        upload = self.uploads.create(
            self.identity,
            headers.get("Upload-Length"),
            headers.get("Upload-Defer-Length"),
            headers.get("Upload-Metadata", ""),
        )
        self.set_header("Location", f"{self.request.path.rstrip('/')}/{upload.id}")
        self.expires(upload.expires_at)
        self.set_status(201)
        self.finish()


@web.stream_request_body
class UploadHandler(TusBase):
    """HEAD: the offset. PATCH: append. DELETE: terminate."""

    patch_state: Patch | None = None

    async def prepare(self) -> None:
        """For a PATCH, every check happens before its body is read."""
        await super().prepare()
        self.check_version()
        if self.request.method != "PATCH":
            return
        headers = self.request.headers
        self.patch_state = self.uploads.begin_patch(
            self.identity,
            self.path_kwargs["upload_id"],
            headers.get("Upload-Offset"),
            headers.get("Content-Type", ""),
            headers.get("Upload-Checksum"),
            headers.get("Upload-Length"),
        )
        remaining = self.patch_state.room - self.patch_state.offset
        self.request.connection.set_max_body_size(remaining + DISCARD_LIMIT + 1)

    def data_received(self, chunk: bytes) -> None:
        """Append; after a refusal, drop (and hang up if far too much keeps coming)."""
        state = self.patch_state
        if state is None:
            return
        self.uploads.chunk(state, chunk)
        if state.refused is not None and state.discarded > DISCARD_LIMIT:
            self.patch_state = None
            self.send_error(exc_info=(type(state.refused), state.refused, None))

    def head(self, upload_id: str) -> None:
        """Upload-Offset (and Upload-Length once known)."""
        upload = self.uploads.find(self.identity, upload_id)
        view = upload_view(upload)
        self.set_header("Upload-Offset", str(view["offset"]))
        if view["length"] is None:
            self.set_header("Upload-Defer-Length", "1")
        else:
            self.set_header("Upload-Length", str(view["length"]))
        self.expires(upload.expires_at)
        self.set_status(200)
        self.finish()

    async def patch(self, upload_id: str) -> None:
        """The PATCH's bytes are in: verify, save, and check the whole file if complete."""
        state, self.patch_state = self.patch_state, None
        assert state is not None
        # Its fsync waits for the disk (seconds for a big PATCH): not on the event loop.
        whole = await asyncio.to_thread(self.uploads.end_patch, state)
        if whole:
            await asyncio.to_thread(self.uploads.finish_upload, upload_id)
        self.set_header("Upload-Offset", str(state.offset))
        upload = self.uploads.find(self.identity, upload_id)
        self.expires(upload.expires_at)
        self.set_status(204)
        self.finish()

    def delete(self, upload_id: str) -> None:
        """tus termination."""
        self.uploads.terminate(self.identity, upload_id)
        self.set_status(204)
        self.finish()

    def on_connection_close(self) -> None:
        """A dropped connection mid-PATCH: keep what arrived, resumable."""
        if self.patch_state is not None:
            state, self.patch_state = self.patch_state, None
            self.uploads.interrupted(state)

    def on_finish(self) -> None:
        """An error answered before the body ended: release the upload."""
        self.on_connection_close()


routes = [
    (r"uploads", UploadsHandler),
    (r"uploads/(?P<upload_id>[^/]+)", UploadHandler),
]
