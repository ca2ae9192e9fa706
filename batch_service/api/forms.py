"""multipart/form-data read as it arrives (python-multipart), a chunk at a time.

Parsing a whole 60 MB body at once holds the service's event loop for a fifth of a second;
fed chunk by chunk, each step is small and other requests go on between them. Fields are
small text; there is at most one file. Anything malformed or repeated becomes a sentence.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from batch_service.errors import BatchError

MAX_FIELD_BYTES = 1 * 2**20  # parameters as JSON; everything else is far smaller
MAX_FIELDS = 64


@dataclass
class UploadedFile:
    """The one file of a form."""

    filename: str
    body: bytes


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class StreamingForm:
    """Collects a form's fields and its file from chunks; `error` holds the first refusal."""

    def __init__(self, content_type: str) -> None:
        kind, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise BatchError("send multipart/form-data with the file in a part named 'file'")
        self.fields: dict[str, str] = {}
        self.files: dict[str, UploadedFile] = {}
        self.error: BatchError | None = None
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._begin,
                "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._end,
            },
        )

    def write(self, chunk: bytes) -> None:
        """Feed the next chunk (after a refusal, chunks are dropped)."""
        if self.error is not None:
            return
        try:
            self._parser.write(chunk)
        except BatchError as e:
            self.error = e
        except Exception:  # python-multipart raises several types for one meaning
            self.error = BatchError(
                "the upload's form could not be read: a part or file name is malformed"
            )

    def finish(self) -> tuple[dict[str, str], dict[str, UploadedFile]]:
        """The fields and files, or the refusal."""
        if self.error is None:
            try:
                self._parser.finalize()
            except Exception:
                self.error = BatchError("the upload's form ended before its last part")
        if self.error is not None:
            raise self.error
        return self.fields, self.files

    # --- callbacks ----------------------------------------------------------------------
    def _begin(self) -> None:
        self._part = _Part()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._part.headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        disposition, options = parse_options_header(
            self._part.headers.get(b"content-disposition", b"")
        )
        name = options.get(b"name")
        if disposition != b"form-data" or not name:
            raise BatchError("every part of the form needs a name (Content-Disposition)")
        self._part.name = _text(name, "a form field's name")
        if b"filename" in options:
            filename = _text(options[b"filename"], "the file name")
            if any(unicodedata.category(ch) == "Cc" for ch in filename):
                raise BatchError(
                    "the upload's form could not be read: a part or file name is malformed "
                    "(file names may not contain a control character)"
                )
            self._part.filename = filename

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        part.data += data[start:end]
        if part.filename is None and len(part.data) > MAX_FIELD_BYTES:
            raise BatchError(f"the form field {part.name[:64]!r} is longer than 1 MiB")

    def _end(self) -> None:
        part = self._part
        if part.filename is not None:
            if self.files:
                raise BatchError(f"send one file per job, not {len(self.files) + 1}")
            self.files[part.name] = UploadedFile(part.filename, bytes(part.data))
            return
        if part.name in self.fields:
            raise BatchError(f"the form field {part.name[:64]!r} was sent more than once")
        if len(self.fields) >= MAX_FIELDS:
            raise BatchError(f"the form has more than {MAX_FIELDS} fields")
        self.fields[part.name] = _text(bytes(part.data), f"the form field {part.name[:64]!r}")


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BatchError(f"{what} is not UTF-8 text") from None
