"""The ports besides the public one: the hub's API, the proxy's API and the batch service.

Left null in the values file, each follows from hub.bind_url's port (8000 gives the familiar
8081, 8001 and 10101), so a second batchhub on one machine needs only another bind_url; a port
that is already taken is swapped for a free one. On Kubernetes each pod has its own ports, and
the chart's Services name fixed ones, so null means the fixed default there. The ports in use
are written to <state>/batchhub.json, where tools (and people) find them.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Offsets from the public port, chosen so that 8000 gives the long-standing defaults.
OFFSETS = {"hub": 81, "proxy_api": 1, "batch": 2101}
FIXED = {"hub": 8081, "proxy_api": 8001, "batch": 10101}


@dataclass(frozen=True)
class Ports:
    """The ports one batchhub uses, and how each was chosen."""

    public: int
    hub: int
    proxy_api: int
    batch: int
    chosen: dict[str, str]


def public_port(bind_url: str) -> int:
    """The port people connect to."""
    parts = urlsplit(bind_url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the system says is free now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def resolve_ports(
    bind_url: str, configured: dict[str, int | None], hosts: dict[str, str], kubernetes: bool
) -> Ports:
    """Each port: as configured, else derived from the public port, else free-picked."""
    public = public_port(bind_url)
    taken = {public}
    result: dict[str, int] = {}
    chosen: dict[str, str] = {}
    for name in ("hub", "proxy_api", "batch"):
        port = configured.get(name)
        if port:
            result[name], chosen[name] = port, "set in the values file"
        elif kubernetes:
            result[name], chosen[name] = FIXED[name], "the chart's fixed port"
        else:
            derived = public + OFFSETS[name]
            if derived <= 65535 and derived not in taken and is_free(derived, hosts[name]):
                result[name], chosen[name] = derived, f"public port + {OFFSETS[name]}"
            else:
                result[name] = free_port(hosts[name])
                chosen[name] = f"free port (public port + {OFFSETS[name]} was taken)"
        taken.add(result[name])
    return Ports(public, result["hub"], result["proxy_api"], result["batch"], chosen)


def write_endpoints(path: Path, ports: Ports, urls: dict[str, str]) -> None:
    """Where tools find this batchhub: its URLs and ports (no secrets)."""
    data: dict[str, Any] = {"urls": urls, "ports": asdict(ports)}
    path.write_text(json.dumps(data, indent=2) + "\n")
    path.chmod(0o644)
