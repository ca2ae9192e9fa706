"""A real batchhub for tests: JupyterHub from hub_config/ behind a real configurable-http-proxy.

`HubProcess` starts `jupyterhub -f hub_config/jupyterhub_config.py` with a values file written
for the test (free loopback ports, its own state folder), so the hub starts the real batch
service too. `HubUser` signs up, gets approved, logs in and holds a hub API token, all over
real HTTP, the way a person and the `batchhub` CLI do.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
HUB_CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"
DEFAULT_PASSWORD = "correct-horse-battery-9"


def remove_accounts(prefix: str) -> None:
    """Delete the system accounts (and dataset groups) whose names start with prefix."""
    import grp
    import pwd

    for entry in pwd.getpwall():
        if entry.pw_name.startswith(prefix):
            subprocess.run(["userdel", entry.pw_name], capture_output=True)
    for group in grp.getgrall():
        if group.gr_name.startswith(prefix):
            subprocess.run(["groupdel", group.gr_name], capture_output=True)


# Warnings every run or server start logs, which say nothing about a failure.
ROUTINE_WARNINGS = (
    "is not trusted",
    "'extra_template_paths' was found in both",
)


def _noise(line: str) -> bool:
    return any(words in line for words in ROUTINE_WARNINGS)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def deep_update(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge override into base in place (mappings merge, anything else replaces)."""
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def wait_for_http(url: str, timeout: float = 60, ok: tuple[int, ...] = (200, 302)) -> None:
    """Poll url until it answers with one of the ok status codes."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, allow_redirects=False, timeout=5)
            if r.status_code in ok:
                return
            last = r.status_code
        except requests.ConnectionError as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout}s (last: {last})")


@dataclass
class HubProcess:
    """One running batchhub (hub + proxy + batch service + culler)."""

    state_dir: Path
    values: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @classmethod
    def configure(cls, state_dir: Path, overrides: Mapping[str, Any] | None = None) -> HubProcess:
        """A hub on free ports with the test's values overrides."""
        port, hub_port, api_port, batch_port = (free_port() for _ in range(4))
        values: dict[str, Any] = {
            "hub": {
                "bind_url": f"http://127.0.0.1:{port}",
                "hub_port": hub_port,
                "proxy_api_port": api_port,
                "admin_users": ["admin"],
                "log_level": "DEBUG",
            },
            # A server per run unless a test keeps servers warm (tests/test_warm_servers.py):
            # most tests watch a run's server stop as its run ends.
            "batch": {"port": batch_port, "scheduler_interval": 0.5, "warm_idle": 0},
            # Running, but it culls nothing within a test (another hub service with a token).
            "culler": {"enabled": True, "timeout": 86400, "every": 3600},
        }
        deep_update(values, overrides or {})
        return cls(state_dir=state_dir, values=values)

    @property
    def url(self) -> str:
        """Public URL (the proxy), no trailing slash."""
        return self.values["hub"]["bind_url"].rstrip("/")

    @property
    def values_path(self) -> Path:
        return self.state_dir / "test-values.yaml"

    def start(self, timeout: float = 90, wait_service: bool = True) -> HubProcess:
        """Start the hub and wait until the hub and the batch service answer."""
        self.launch()
        try:
            wait_for_http(f"{self.url}/hub/api/", timeout=timeout)
            if wait_service:
                wait_for_http(
                    f"{self.url}/services/batch/api/v1/", timeout=timeout, ok=(200, 401, 403)
                )
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"hub did not start; log:\n{self.log_tail()}") from None
        return self

    def launch(self) -> HubProcess:
        """Start the hub's process (in a session of its own, like a terminal's job)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.values_path.write_text(yaml.safe_dump(self.values))
        env = dict(os.environ)
        env.update(
            BATCHHUB_VALUES=str(self.values_path),
            BATCHHUB_STATE_DIR=str(self.state_dir / "state"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env)
        self.log_path = self.state_dir / "hub.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(HUB_CONFIG)],
            cwd=self.state_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def service_pid(self) -> int:
        """The PID of this hub's batch service (found by its config path on the command line)."""
        config = str(self.state_dir / "state" / "batch" / "service_config.json").encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if config in (entry / "cmdline").read_bytes():
                        return int(entry.name)
                except OSError:
                    continue
        raise AssertionError("batch service process not found")

    def service_token(self, service: str) -> str:
        """The hub API token of one of this hub's managed services (read as root would)."""
        api_url = f"JUPYTERHUB_API_URL=http://127.0.0.1:{self.values['hub']['hub_port']}/"
        wanted = f"JUPYTERHUB_SERVICE_NAME={service}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if wanted in environ and any(v.startswith(api_url.encode()) for v in environ):
                for item in environ:
                    if item.startswith(b"JUPYTERHUB_API_TOKEN="):
                        return item.split(b"=", 1)[1].decode()
        raise AssertionError(f"no running service {service!r} of this hub")

    def log_tail(self, lines: int = 80) -> str:
        """The last lines of the hub's log (hub, proxy, service), without the proxy's errors
        about a hub not listening yet (they would push the hub's own words out of view)."""
        if not self.log_path or not self.log_path.exists():
            return ""
        kept: list[str] = []
        in_proxy_error = False
        for line in self.log_path.read_text(errors="replace").splitlines():
            if "[ConfigProxy]" in line and "ECONNREFUSED" in line:
                in_proxy_error = True
                continue
            if in_proxy_error and (line[:1].isspace() or line.startswith("}")):
                continue
            in_proxy_error = False
            kept.append(line)
        return "\n".join(kept[-lines:])

    def warnings_tail(self, lines: int = 60) -> str:
        """The last warnings, errors and tracebacks in the hub's log: what a failed test's
        report shows, so a failure on a machine nobody can log into still says why."""
        if not self.log_path or not self.log_path.exists():
            return ""
        kept: list[str] = []
        in_traceback = False
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback"):
                in_traceback = True
            elif in_traceback and not line[:1].isspace():
                in_traceback = False
                kept.append(line)  # the exception's own line ends the traceback
                continue
            if in_traceback or (line.startswith(("[W ", "[E ", "[C ")) and not _noise(line)):
                kept.append(line)
        return "\n".join(kept[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Stop the hub like Ctrl-C does; it stops the proxy, services and servers."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)

    def user(self, name: str, password: str = DEFAULT_PASSWORD) -> HubUser:
        """A browser-less person on this hub."""
        return HubUser(self, name, password)

    def ready_user(self, name: str, admin: HubUser | None = None) -> HubUser:
        """A user who signed up, was approved by the admin, logged in and holds a token."""
        admin = admin or self.admin()
        person = self.user(name)
        person.signup()
        admin.approve(name)
        person.login()
        person.create_token()
        return person

    _admin: HubUser | None = None

    def admin(self) -> HubUser:
        """The admin (signed up and logged in on first use)."""
        if self._admin is None:
            admin = self.user("admin")
            admin.signup()
            admin.login()
            admin.create_token()
            self._admin = admin
        return self._admin


class HubUser:
    """A person using the hub over HTTP: cookies for pages, a token for the REST API."""

    def __init__(self, hub: HubProcess, name: str, password: str) -> None:
        self.hub = hub
        self.name = name
        self.password = password
        self.session = requests.Session()
        self.token: str | None = None

    def _xsrf(self, path: str) -> str:
        r = self.session.get(f"{self.hub.url}{path}")
        r.raise_for_status()
        token = self.session.cookies.get("_xsrf")
        if token:
            return token
        match = re.search(r'name="_xsrf" value="([^"]+)"', r.text)
        return match.group(1) if match else ""

    def signup(self) -> requests.Response:
        """Fill in the sign-up form."""
        xsrf = self._xsrf("/hub/signup")
        return self.session.post(
            f"{self.hub.url}/hub/signup",
            data={
                "username": self.name,
                "signup_password": self.password,
                "signup_password_confirmation": self.password,
                "_xsrf": xsrf,
            },
        )

    def login(self, password: str | None = None, check: bool = True) -> requests.Response:
        """Fill in the login form; with check, fail unless it logged in."""
        xsrf = self._xsrf("/hub/login")
        r = self.session.post(
            f"{self.hub.url}/hub/login",
            data={"username": self.name, "password": password or self.password, "_xsrf": xsrf},
            allow_redirects=False,
        )
        if check and r.status_code != 302:
            raise AssertionError(f"{self.name} could not log in: {r.status_code} {r.text[:500]}")
        return r

    def approve(self, username: str) -> None:
        """As admin: authorize a pending sign-up from the /hub/authorize page."""
        r = self.session.get(f"{self.hub.url}/hub/authorize/{username}")
        r.raise_for_status()

    def create_token(self, note: str = "tests") -> str:
        """Ask the hub for an API token, as the token page does."""
        xsrf = self.session.cookies.get("_xsrf") or self._xsrf("/hub/token")
        r = self.session.post(
            f"{self.hub.url}/hub/api/users/{self.name}/tokens",
            # no expiry: the session's hub outlives an hour of tests
            json={"note": note},
            headers={"X-XSRFToken": xsrf, "Referer": f"{self.hub.url}/hub/token"},
        )
        if r.status_code != 201:
            raise AssertionError(f"token request failed: {r.status_code} {r.text}")
        self.token = r.json()["token"]
        return self.token

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the hub REST API (/hub/api/...) or any URL path with this user's token."""
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"token {self.token}"
        url = path if path.startswith("http") else f"{self.hub.url}{path}"
        return requests.request(method, url, headers=headers, timeout=60, **kwargs)

    def start_server(
        self, server: str = "", options: dict | None = None, timeout: float = 90
    ) -> requests.Response:
        """Start a (named) server through the REST API and wait until it is ready."""
        path = f"/hub/api/users/{self.name}/servers/{server}"
        r = self.api("POST", path, json=options or {})
        if r.status_code not in (201, 202):
            return r
        self.wait_server(server, ready=True, timeout=timeout)
        return r

    def server_model(self, server: str = "") -> dict | None:
        """The hub's model of one of this user's servers, or None."""
        user = self.api("GET", f"/hub/api/users/{self.name}").json()
        return user.get("servers", {}).get(server)

    def wait_server(self, server: str = "", ready: bool = True, timeout: float = 90) -> None:
        """Wait until the server is ready (or gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.server_model(server)
            if ready and model and model.get("ready"):
                return
            if not ready and not model:
                return
            if ready and model is None:
                raise AssertionError(f"server {server!r} of {self.name} went away while starting")
            time.sleep(0.3)
        raise TimeoutError(f"server {server!r} of {self.name} not {'ready' if ready else 'gone'}")

    def stop_server(self, server: str = "", timeout: float = 60) -> None:
        """Stop (and for named servers remove) a server."""
        path = f"/hub/api/users/{self.name}/servers/{server}"
        body = {"remove": True} if server else None
        r = self.api("DELETE", path, json=body)
        assert r.status_code in (202, 204), r.text
        self.wait_server(server, ready=False, timeout=timeout)
