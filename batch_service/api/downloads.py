"""Sending stored files: in chunks from the file store, named for the browser's download."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from tornado import web

CHUNK = 1 << 20


def attachment(name: str) -> str:
    """A Content-Disposition that keeps any file name intact and harmless (RFC 6266)."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def send_file(
    handler: web.RequestHandler, path: Path, name: str, media: str = "application/octet-stream"
) -> None:
    """Stream a file to the client, flushing each chunk (memory stays flat for big files)."""
    handler.set_header("Content-Type", media)
    handler.set_header("Content-Disposition", attachment(name))
    handler.set_header("X-Content-Type-Options", "nosniff")
    with path.open("rb") as f:
        handler.set_header("Content-Length", str(os.fstat(f.fileno()).st_size))
        while chunk := f.read(CHUNK):
            handler.write(chunk)
            await handler.flush()
    handler.finish()
