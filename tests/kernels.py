"""Run code in a kernel of a running single-user server, over the Jupyter REST and websocket APIs.

What a notebook in the browser does, without the browser: start a kernel (or attach to one),
send an execute_request on its channels websocket and collect stdout and any error.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


@dataclass
class Execution:
    """What one execute_request produced."""

    stdout: str = ""
    error_name: str | None = None
    error_value: str | None = None
    results: list[str] = field(default_factory=list)


def start_kernel(server_url: str, token: str, name: str = "python3") -> str:
    """Start a kernel on the server (server_url ends with /user/<name>/<server>/)."""
    r = requests.post(
        f"{server_url}api/kernels",
        json={"name": name},
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()["id"]


async def execute(server_url: str, token: str, kernel_id: str, code: str) -> Execution:
    """Execute code in kernel_id and return its output (wrap in asyncio.timeout to bound it)."""
    ws_url = server_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
    request = HTTPRequest(ws_url, headers={"Authorization": f"token {token}"})
    conn = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    conn.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "version": "5.3",
                    "date": "",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    result = Execution()
    try:
        while True:
            raw = await conn.read_message()
            if raw is None:
                raise ConnectionError("kernel websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                result.stdout += content["text"]
            elif kind == "execute_result":
                result.results.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                result.error_name, result.error_value = content["ename"], content["evalue"]
            elif kind == "status" and content.get("execution_state") == "idle":
                return result
    finally:
        conn.close()
