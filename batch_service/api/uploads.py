"""Streamed request bodies with a size limit: refused at the limit, never read beyond it."""

from __future__ import annotations

from typing import Any

from tornado.httputil import HTTPFile, HTTPInputError, parse_body_arguments

from batch_service.bounded import parse_json
from batch_service.errors import BatchError, TooLarge

# Room for the multipart envelope and the form's small fields around the file itself.
ENVELOPE_BYTES = 64 * 1024
# Bodies up to this many times the limit are read and dropped so that the 413 arrives intact.
DISCARD_FACTOR = 16


class StreamedUploadMixin:
    """Collect a body up to the configured limit; over it, answer 413 and keep nothing."""

    request: Any
    settings: dict[str, Any]
    streams_body = True
    # Set once the whole body arrived (tornado then calls the method).
    body_complete = False

    def on_body_complete(self) -> None:
        """The body is in: an answer now leaves the connection usable."""
        self.body_complete = True

    def start_upload(self) -> None:
        """Check the declared length and bound what the connection will accept."""
        limit = self.settings["batch_max_upload_bytes"]
        self._upload_limit = limit + ENVELOPE_BYTES
        self._chunks: list[bytes] = []
        self._received = 0
        self._overflow = False
        declared = self.request.headers.get("Content-Length")
        size = int(declared) if declared and declared.isdigit() else 0
        if size > DISCARD_FACTOR * self._upload_limit:
            # Far over the limit: answer at once and let the connection drop.
            raise TooLarge(self._too_large_message())
        if size > self._upload_limit:
            # Read and drop it (bounded memory) so the answer reaches the client through proxies.
            self._overflow = True
        self.request.connection.set_max_body_size(max(size, self._upload_limit) + 1)

    def _too_large_message(self) -> str:
        limit = self.settings["batch_max_upload_bytes"]
        return f"the upload is larger than the limit of {limit} bytes ({limit / 2**20:.1f} MiB)"

    def data_received(self, chunk: bytes) -> None:
        """Keep chunks until the limit; after it, count and drop."""
        self._received += len(chunk)
        if self._overflow or self._received > self._upload_limit:
            self._overflow = True
            self._chunks.clear()
            return
        self._chunks.append(chunk)

    def upload_form(self) -> tuple[dict[str, str], dict[str, HTTPFile]]:
        """The parsed multipart form: plain fields and files."""
        if self._overflow:
            raise TooLarge(self._too_large_message())
        body = b"".join(self._chunks)
        self._chunks.clear()
        content_type = self.request.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise BatchError("send multipart/form-data with the file in a part named 'file'")
        arguments: dict[str, list[bytes]] = {}
        files: dict[str, list[HTTPFile]] = {}
        try:
            parse_body_arguments(content_type, body, arguments, files)
        except HTTPInputError:
            raise BatchError(
                "the upload's form could not be read: a part or file name is malformed "
                "(file names may not contain a control character)"
            ) from None
        fields = {}
        for name, values in arguments.items():
            if len(values) > 1:
                raise BatchError(f"the form field {name[:64]!r} was sent {len(values)} times")
            try:
                fields[name] = values[0].decode("utf-8")
            except UnicodeDecodeError:
                raise BatchError(f"the form field {name[:64]!r} is not UTF-8 text") from None
        parts = [part for named in files.values() for part in named]
        if len(parts) > 1:
            raise BatchError(f"send one file per job, not {len(parts)}")
        return fields, {name: named[0] for name, named in files.items()}

    def upload_json(self) -> Any:
        """The body as JSON (for requests without a file)."""
        if self._overflow:
            raise TooLarge(self._too_large_message())
        return parse_json(b"".join(self._chunks) or b"{}")

    def uploaded_file(self, files: dict[str, HTTPFile]) -> HTTPFile:
        """The one file part, checked against the size limit."""
        upload = files.get("file")
        if upload is None:
            raise BatchError("no file: send it in a form part named 'file'")
        if len(upload.body) > self.settings["batch_max_upload_bytes"]:
            raise TooLarge(self._too_large_message())
        return upload
