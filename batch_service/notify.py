"""Telling people beyond the browser: e-mail over SMTP and webhooks, per user.

Each user keeps an e-mail address, a webhook URL and the moments they want (a job starts, a job
ends, their GPU server's turn comes) in the store. The Notifier listens to batch_service.events
and sends what each user asked for. Sending never holds up the service: e-mail goes through the
standard library's smtplib in a worker thread, webhooks through tornado's client, both with
timeouts; a failure is logged and dropped.

Webhook addresses are the user's choice, so they are checked like any hostile input: http or
https only, no credentials in the URL, and (unless the admin allows it) no address on loopback,
private, link-local or otherwise reserved networks, checked again when sending. Redirects are
not followed. Bodies are signed: `X-Batchhub-Signature: sha256=<HMAC of the body>` with the
user's own secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import smtplib
import socket
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Bool, Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from batch_service.clock import now
from batch_service.errors import BatchError
from batch_service.events import JOB_ENDED, JOB_STARTED, TURN_ADMITTED, Moment
from batch_service.identity import Identity
from batch_service.store import NotificationSetting, Store

log = logging.getLogger("batchhub.notify")
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+"
)
WANTS = {JOB_STARTED: "on_start", JOB_ENDED: "on_end", TURN_ADMITTED: "on_turn"}
STATE_WORDS = {"timed_out": "timed out"}


class Notifier(LoggingConfigurable):
    """Sends e-mail and webhook calls for the moments each user asked to hear about."""

    public_url = Unicode(
        "http://127.0.0.1:8000/",
        help="The hub's public URL, for links in messages (e-mail readers are elsewhere).",
    ).tag(config=True)
    smtp_host = Unicode(
        "", help="SMTP server that sends batchhub's e-mail; empty: no e-mail is offered."
    ).tag(config=True)
    smtp_port = Integer(587, help="Port of the SMTP server.").tag(config=True)
    smtp_starttls = Bool(
        True, help="Switch the SMTP connection to TLS with STARTTLS before logging in."
    ).tag(config=True)
    smtp_ssl = Bool(False, help="Connect to the SMTP server over TLS from the start.").tag(
        config=True
    )
    smtp_username = Unicode("", help="SMTP login name; empty: send without logging in.").tag(
        config=True
    )
    smtp_password = Unicode(help="SMTP password (default: $BATCHHUB_SMTP_PASSWORD).").tag(
        config=True
    )
    from_address = Unicode("batchhub@localhost", help="The From address of batchhub's e-mail.").tag(
        config=True
    )
    webhooks = Bool(True, help="Let users give a webhook URL that batchhub calls.").tag(config=True)
    webhook_allow_private = Bool(
        False,
        help="""Allow webhook URLs on loopback, private and link-local networks. Off by
        default: a user's URL must not reach the machines behind the service.""",
    ).tag(config=True)
    timeout = Float(10.0, help="Seconds a send may take before it is given up.").tag(config=True)
    max_sending = Integer(8, help="Most messages on their way at once.").tag(config=True)

    @default("smtp_password")
    def _default_password(self) -> str:
        return os.environ.get("BATCHHUB_SMTP_PASSWORD", "")

    def __init__(self, store: Store | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store
        self._sending = asyncio.Semaphore(self.max_sending)

    @property
    def email(self) -> bool:
        """E-mail is offered when an SMTP server is set."""
        return bool(self.smtp_host)

    # --- settings ---------------------------------------------------------------------
    def settings_view(self, row: NotificationSetting | None) -> dict[str, Any]:
        """The API form of one user's settings (and what the service offers)."""
        return {
            "email": row.email if row else "",
            "webhook_url": row.webhook_url if row else "",
            "webhook_secret": row.webhook_secret if row else "",
            "on_start": row.on_start if row else False,
            "on_end": row.on_end if row else True,
            "on_turn": row.on_turn if row else True,
            "email_available": self.email,
            "webhooks_available": self.webhooks,
        }

    def get_settings(self, identity: Identity) -> dict[str, Any]:
        """The caller's settings."""
        assert self.store is not None
        with self.store.session() as session:
            return self.settings_view(session.get(NotificationSetting, identity.name))

    async def put_settings(self, identity: Identity, body: Any) -> dict[str, Any]:
        """Check and store the caller's settings (keys left out keep their value); bad input
        stores nothing."""
        assert self.store is not None
        allowed = {"email", "webhook_url", "on_start", "on_end", "on_turn"}
        if not isinstance(body, dict) or not set(body) <= allowed:
            raise BatchError(f"send an object with some of: {', '.join(sorted(allowed))}")
        changes: dict[str, Any] = {}
        if "email" in body:
            email = body["email"]
            if not isinstance(email, str) or len(email) > 254:
                raise BatchError("email must be an address of at most 254 characters")
            email = email.strip()
            if email and not self.email:
                raise BatchError("this batchhub sends no e-mail (no SMTP server is set up)")
            if email and not EMAIL.fullmatch(email):
                raise BatchError(f"{email!r} is not an e-mail address")
            changes["email"] = email
        if "webhook_url" in body:
            url = body["webhook_url"]
            if not isinstance(url, str) or len(url) > 2048:
                raise BatchError("webhook_url must be a URL of at most 2048 characters")
            url = url.strip()
            if url:
                if not self.webhooks:
                    raise BatchError("webhooks are switched off on this batchhub")
                await self.check_webhook(url)
            changes["webhook_url"] = url
        for name in ("on_start", "on_end", "on_turn"):
            if name in body:
                if not isinstance(body[name], bool):
                    raise BatchError(f"{name} must be true or false")
                changes[name] = body[name]
        with self.store.session() as session:
            row = session.get(NotificationSetting, identity.name)
            if row is None:
                defaults = self.settings_view(None)
                row = NotificationSetting(
                    owner=identity.name,
                    webhook_secret=secrets.token_hex(32),
                    **{k: defaults[k] for k in ("email", "webhook_url", *WANTS.values())},
                )
                session.add(row)
            for name, value in {**changes, "updated_at": now()}.items():
                setattr(row, name, value)
            session.flush()
            return self.settings_view(row)

    async def check_webhook(self, url: str) -> None:
        """Refuse a webhook URL the service must not call; the message says why."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise BatchError("webhook_url is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BatchError("webhook_url must be an http:// or https:// address")
        if parts.username or parts.password:
            raise BatchError("webhook_url must not carry a user name or password")
        if self.webhook_allow_private:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                parts.hostname, port or 443, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError):
            raise BatchError(f"webhook_url: the host {parts.hostname!r} is not found") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0].split("%")[0])
            if not address.is_global or address.is_multicast:
                raise BatchError(
                    f"webhook_url: {parts.hostname} is on a private or reserved network "
                    f"({address}); batchhub calls only public addresses"
                )

    # --- sending ----------------------------------------------------------------------
    async def __call__(self, moment: Moment) -> None:
        """The events listener: send what this moment's owner asked for."""
        assert self.store is not None
        with self.store.session() as session:
            row = session.get(NotificationSetting, moment.owner)
            if row is None or not getattr(row, WANTS[moment.kind]):
                return
            email, url, secret = row.email, row.webhook_url, row.webhook_secret
        subject, text, payload = self.compose(moment)
        sends = []
        if email and self.email:
            sends.append(self._guarded(self.send_email(email, subject, text)))
        if url and self.webhooks:
            sends.append(self._guarded(self.send_webhook(url, secret, payload)))
        # Not awaited: the events worker goes on to the next moment.
        for send in sends:
            asyncio.ensure_future(send)

    async def _guarded(self, send: Any) -> None:
        async with self._sending:
            try:
                await asyncio.wait_for(send, self.timeout + 5)
            except Exception as e:
                log.warning("a notification could not be sent: %s", e)

    def link(self, path: str) -> str:
        """An absolute link into batchhub."""
        return self.public_url.rstrip("/") + "/" + path.lstrip("/")

    def compose(self, moment: Moment) -> tuple[str, str, dict[str, Any]]:
        """Subject, text and webhook body of one moment."""
        s = moment.subject
        if moment.kind == TURN_ADMITTED:
            server = s["server"] or "default"
            subject = f"[batchhub] Your turn: GPU server {server!r} is starting"
            text = (
                f"The GPUs your server {server!r} (profile {s['profile']}) waited for are yours; "
                f"it is starting now.\n\n{self.link('hub/home')}\n"
            )
            payload = {"event": moment.kind, "user": moment.owner, "server": s}
            return subject, text, payload
        url = self.link(f"services/batch/jobs/{s['id']}")
        job = {**s, "url": url}
        if moment.kind == JOB_STARTED:
            subject = f"[batchhub] Job {s['id']} started: {s['input_name']}"
            text = f"Your job {s['id']} ({s['input_name']}) is running on {s['profile']}.\n\n"
        else:
            state = STATE_WORDS.get(s["state"], s["state"])
            subject = f"[batchhub] Job {s['id']} {state}: {s['input_name']}"
            text = f"Your job {s['id']} ({s['input_name']}) {state}.\n"
            if s["error"]:
                text += f"\n{s['error']}\n"
            if s["reason"]:
                text += f"\n{s['reason']}\n"
            if s["live"]:
                text += (
                    "\nIts live kernel is waiting for you: every variable of the run is there.\n"
                )
            text += "\n"
        text += f"{url}\n"
        return subject, text, {"event": moment.kind, "user": moment.owner, "job": job}

    async def send_email(self, to: str, subject: str, text: str) -> None:
        """One message through the SMTP server (blocking smtplib, in a worker thread)."""
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        await asyncio.to_thread(self._smtp_send, message)

    def _smtp_send(self, message: EmailMessage) -> None:
        kind = smtplib.SMTP_SSL if self.smtp_ssl else smtplib.SMTP
        with kind(self.smtp_host, self.smtp_port, timeout=self.timeout) as smtp:
            if self.smtp_starttls and not self.smtp_ssl:
                smtp.starttls()
            if self.smtp_username:
                smtp.login(self.smtp_username, self.smtp_password)
            smtp.send_message(message)

    async def send_webhook(self, url: str, secret: str, payload: dict[str, Any]) -> int:
        """POST the moment as JSON, signed with the user's secret; no redirects followed.

        Returns the receiver's HTTP status.
        """
        await self.check_webhook(url)  # again: the name may point elsewhere by now
        body = json.dumps(payload).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        request = HTTPRequest(
            url,
            method="POST",
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "batchhub",
                "X-Batchhub-Event": payload["event"],
                "X-Batchhub-Signature": f"sha256={signature}",
            },
            follow_redirects=False,
            request_timeout=self.timeout,
            connect_timeout=self.timeout,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except HTTPClientError as e:  # timeouts and the like
            raise OSError(str(e)) from None
        if response.code >= 300:
            log.info("a user's webhook answered %s", response.code)
        return response.code

    async def test(self, identity: Identity) -> dict[str, Any]:
        """Send a test message to the caller's address and webhook now; say what went."""
        settings = self.get_settings(identity)
        if not settings["email"] and not settings["webhook_url"]:
            raise BatchError("save an e-mail address or a webhook URL first")
        subject = "[batchhub] Test: notifications reach you"
        text = (
            f"This is a test from batchhub for {identity.name}.\n\n{self.link('services/batch/')}\n"
        )
        sent = []
        try:
            if settings["email"] and self.email:
                await asyncio.wait_for(
                    self.send_email(settings["email"], subject, text), self.timeout
                )
                sent.append("e-mail")
            if settings["webhook_url"] and self.webhooks:
                with self.store.session() as session:  # type: ignore[union-attr]
                    secret = session.get(NotificationSetting, identity.name).webhook_secret
                payload = {"event": "test", "user": identity.name}
                code = await asyncio.wait_for(
                    self.send_webhook(settings["webhook_url"], secret, payload), self.timeout
                )
                if code >= 300:
                    raise BatchError(f"your webhook answered HTTP {code}", status=502)
                sent.append("webhook")
        except (OSError, smtplib.SMTPException, TimeoutError) as e:
            raise BatchError(f"the test could not be sent: {e}", status=502) from None
        return {"sent": sent}
