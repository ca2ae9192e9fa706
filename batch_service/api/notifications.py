"""API: how the caller is told about their jobs beyond the browser (e-mail, webhook)."""

from __future__ import annotations

from batch_service.handlers import BaseHandler
from batch_service.notify import Notifier


class NotificationsHandler(BaseHandler):
    """GET the caller's settings; PUT {"email", "webhook_url", "on_start", "on_end", "on_turn"}."""

    @property
    def notifier(self) -> Notifier:
        """The service's notifier."""
        return self.settings["batch_notifier"]

    def get(self) -> None:
        """The caller's settings and what this batchhub offers."""
        self.write_json(self.notifier.get_settings(self.identity))

    async def put(self) -> None:
        """Check and store; bad input is refused with the reason and stores nothing."""
        self.write_json(await self.notifier.put_settings(self.identity, self.body_json()))


class NotificationTestHandler(NotificationsHandler):
    """POST: send a test message to the caller's address and webhook now."""

    async def post(self) -> None:
        """Say what was sent, or why it could not be."""
        self.write_json(await self.notifier.test(self.identity))


routes = [
    (r"notifications", NotificationsHandler),
    (r"notifications/test", NotificationTestHandler),
]
