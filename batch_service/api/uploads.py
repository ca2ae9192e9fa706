"""Streamed request bodies with a size limit: refused at the limit, never read beyond it."""

from __future__ import annotations

from typing import Any

from batch_service.api.forms import StreamingForm, UploadedFile
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
        content_type = self.request.headers.get("Content-Type", "")
        # A form is read as it arrives; anything else (JSON) is small and kept whole.
        self._form: StreamingForm | None = None
        if content_type.startswith("multipart/"):
            self._form = StreamingForm(content_type)
        declared = self.request.headers.get("Content-Length")
        size = int(declared) if declared and declared.isdigit() and len(declared) < 20 else 0
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
        """Take chunks until the limit; after it, count and drop."""
        self._received += len(chunk)
        if self._overflow or self._received > self._upload_limit:
            self._overflow = True
            self._chunks.clear()
            self._form = None
            return
        if self._form is not None:
            self._form.write(chunk)
        else:
            self._chunks.append(chunk)

    def upload_form(self) -> tuple[dict[str, str], dict[str, UploadedFile]]:
        """The multipart form read so far: plain fields and the file."""
        if self._overflow:
            raise TooLarge(self._too_large_message())
        if self._form is None:
            raise BatchError("send multipart/form-data with the file in a part named 'file'")
        return self._form.finish()

    def upload_json(self) -> Any:
        """The body as JSON (for requests without a file)."""
        if self._overflow:
            raise TooLarge(self._too_large_message())
        return parse_json(b"".join(self._chunks) or b"{}")

    def uploaded_file(self, files: dict[str, UploadedFile]) -> UploadedFile:
        """The one file part, checked against the size limit."""
        upload = files.get("file")
        if upload is None:
            raise BatchError("no file: send it in a form part named 'file'")
        if len(upload.body) > self.settings["batch_max_upload_bytes"]:
            raise TooLarge(self._too_large_message())
        return upload
