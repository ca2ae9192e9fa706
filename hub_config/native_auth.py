"""NativeAuthenticator for JupyterHub 6: sign-up with admin approval and hashed passwords.

nativeauthenticator 1.3's login handler still times logins with the hub's statsd client,
which JupyterHub 6 removed; this subclass gives that handler a do-nothing timer and is
otherwise the upstream authenticator unchanged.
"""

from __future__ import annotations

from typing import Any

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler


class _NoTimer:
    def timer(self, name: str) -> _NoTimer:
        return self

    def start(self) -> _NoTimer:
        return self

    def stop(self, send: bool = True) -> None:
        return None


class BatchhubLoginHandler(LoginHandler):
    """The upstream login handler without statsd timing."""

    statsd = _NoTimer()


class BatchhubNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator whose login handler runs on JupyterHub 6."""

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        """Upstream handlers, with the login handler swapped."""
        return [
            (path, BatchhubLoginHandler if handler is LoginHandler else handler)
            for path, handler in super().get_handlers(app)
        ]
