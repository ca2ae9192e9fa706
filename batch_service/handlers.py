"""The base handler: who is asking (hub OAuth cookie or API token), and errors as JSON.

Every API error becomes `{"status": <code>, "message": "<what to do>"}` in one `write_error`;
a BatchError's message is meant for people, anything unexpected is a 500 with a generic line.
The caller is identified before any body is parsed, and a cookie-authenticated change must
carry the XSRF token (a token-authenticated one carries no ambient credential).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed
from tornado import web

from batch_service.bounded import parse_json
from batch_service.errors import BatchError
from batch_service.identity import Identity
from batch_service.jobs import JobService

log = logging.getLogger("batchhub.web")

# A streamed body up to this size that is refused before it was read (no login, no right) is
# read and dropped first: answering at once closes the connection with bytes unread, which
# resets it, and a proxy still sending the body then reports its own 503 instead of the answer.
DRAIN_REFUSED_BODY_BYTES = 1 << 20


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Identity, JSON helpers and one error writer for pages and the API."""

    json_errors = True
    # Bodies of plain JSON calls (uploads stream and bound themselves).
    max_json_bytes = 1 * 2**20

    @property
    def jobs(self) -> JobService:
        """The job service shared by all handlers."""
        return self.settings["batch_jobs"]

    @property
    def app(self) -> Any:
        """The BatchServiceApp."""
        return self.settings["batch_app"]

    async def prepare(self) -> None:
        """Identify the caller (HubAuth's async path), then check XSRF and, for the API, that
        the caller may use the service at all: all before any body is read or parsed."""
        self._hub_auth_user_cache = None
        model = await self.hub_auth.get_user(self, sync=False)
        if model:
            try:
                self._hub_auth_user_cache = self.check_hub_user(model)
            except UserNotAllowed:
                self._hub_auth_user_cache = None
                self._not_allowed = model
        if (
            self.json_errors
            and not getattr(self, "allow_all", False)
            and self.request.method != "OPTIONS"  # discovery (tus) carries no credentials
        ):
            # 401/403 now, before the body is looked at.
            if not self.identity.uses_batch:
                raise web.HTTPError(
                    403,
                    "this token may not use batch jobs: it lacks the scope custom:batch:submit "
                    "(create a token without restricting its scopes on the hub's Token page)",
                )
        if model and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            # A change by someone the hub's cookie identified must carry the XSRF token;
            # HubAuth skips the check only for a request its token authenticated.
            self.hub_auth.check_xsrf_cookie(self)

    def check_xsrf_cookie(self) -> None:
        """Tornado asks before `prepare` knows the caller: the real check runs in prepare."""

    @property
    def identity(self) -> Identity:
        """The caller, or a 401/403 for the API."""
        model = self.current_user
        if not model:
            if getattr(self, "_not_allowed", None):
                raise web.HTTPError(403, "your hub account may not use the batch service")
            raise web.HTTPError(401, "log in to the hub, or send a hub API token")
        return Identity.from_model(model)

    def body_json(self) -> Any:
        """The request body parsed as JSON within bounds, or a 4xx saying why not."""
        return parse_json(self.request.body or b"{}", max_bytes=self.max_json_bytes)

    def write_json(self, body: Any, status: int = 200) -> None:
        """Answer with JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[no-untyped-def]
        """Refusals are not server errors: log them briefly."""
        if isinstance(value, BatchError):
            log.info("%s %s -> %s: %s", self.request.method, self.request.path, value.status, value)
            return
        super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """One place that turns exceptions into answers."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = None
        field = None
        if isinstance(exc, BatchError):
            status_code, message, field = exc.status, exc.message, exc.field
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        if message is None:
            message = "something went wrong on the server" if status_code >= 500 else (self._reason)
        self.set_status(status_code)
        # @web.stream_request_body marks a handler class with _stream_request_body.
        if self._streams_unread_body():
            # Refused before the body was read: tornado drops the connection after answering,
            # so tell the proxy not to send another request on it (it would be reset).
            self.set_header("Connection", "close")
        if self.json_errors:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            answer: dict[str, Any] = {"status": status_code, "message": message}
            if field:
                answer["field"] = field
            self.finish(json.dumps(answer))
        else:
            self.finish(self.render_page("error.html", status_code=status_code, message=message))

    def _streams_unread_body(self) -> bool:
        streams = getattr(self, "streams_body", False) or getattr(self, "_stream_request_body", 0)
        return bool(streams) and not getattr(self, "body_complete", False)

    def _drain_then_refuse(self, e: BaseException) -> bool:
        """Answer a refusal of a small, still unread body once it has arrived (dropped)."""
        status = e.status if isinstance(e, BatchError) else getattr(e, "status_code", 500)
        declared = self.request.headers.get("Content-Length", "")
        body_arrived = getattr(self.request, "_body_future", None)  # tornado's, per request
        if (
            status >= 500
            or self._finished
            or body_arrived is None
            or body_arrived.done()
            or not self._streams_unread_body()
            or not (declared.isdigit() and len(declared) < 10)
            or int(declared) > DRAIN_REFUSED_BODY_BYTES
        ):
            return False
        self.log_exception(type(e), e, e.__traceback__)
        # The handler's own reader never sees these bytes.
        self.data_received = lambda chunk: None  # type: ignore[method-assign]
        self.request.connection.set_max_body_size(int(declared) + 1)

        def answer(arrived: Any) -> None:
            if arrived.cancelled() or arrived.exception() is not None or self._finished:
                return  # the client went away
            self.body_complete = True
            self.send_error(status, exc_info=(type(e), e, e.__traceback__))

        body_arrived.add_done_callback(answer)
        return True

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, (BatchError, web.HTTPError)) and self._drain_then_refuse(e):
            return
        if isinstance(e, BatchError):
            # Refusals are answers, not failures: no traceback in the log.
            self.log_exception(type(e), e, e.__traceback__)
            if not self._finished:
                self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def render_page(self, name: str, **context: Any) -> str:
        """Render a page template (implemented by the pages module's environment)."""
        return self.settings["batch_render"](self, name, **context)
