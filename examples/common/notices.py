"""Collection notices by email: an event sink that sends a reminder before each
installment falls due (``plan.installment_due_soon``) and a notice of each declined
collection (``plan.collection_failed``), over SMTP with aiosmtplib.

The relay delivers events at least once, so a batch can come again (after a failed
delivery, or from another relay once a lease ran out). The sink remembers the id of each
event it has mailed, in ``SentNotices`` (a SQLite file that every relay of one host can
share, or memory), and sends nothing for an id it knows; each message's ``Message-ID``
is made from the event id too, so a mail system that drops repeats drops the one repeat
left possible: a crash between the server's acceptance and the record of it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
import attrs

import paymentorch as po

logger = logging.getLogger("examples.notices")

DEFAULT_SENDER = "PaymentOrchestrator Lite <collections@paymentorch.example>"
CUSTOMER_DOMAIN = "customers.example"
MESSAGE_DOMAIN = "notices.paymentorch.example"
REMINDER = "plan.installment_due_soon"
DECLINE = "plan.collection_failed"
NOTICES = frozenset({REMINDER, DECLINE})


def customer_address(customer_id: str) -> str:
    """Where a customer's notices go: the example has no email addresses, so its
    customers are ``<customer id, lower case>@customers.example`` (``ABCD-12345`` is
    ``abcd-12345@customers.example``). A host passes its own lookup as ``recipient``."""
    return f"{customer_id.lower()}@{CUSTOMER_DOMAIN}"


@attrs.frozen
class SmtpServer:
    """Where mail is sent: ``smtp://[user:password@]host[:port]`` (port 25; STARTTLS when
    the server offers it) or ``smtps://...`` (TLS from the start, port 465).

    Attributes:
        hostname: The server.
        port: Its port.
        tls: TLS from the first byte (``smtps``).
        username: To log in with, if any.
        password: Its password.
    """

    hostname: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        """The server ``url`` names; ``ValueError`` says what is wrong with it."""
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            raise ValueError("an SMTP URL starts with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("an SMTP URL names its host: smtp://host[:port]")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("an SMTP URL's port is a number from 1 to 65535") from None
        if parts.path not in {"", "/"} or parts.query or parts.fragment:
            raise ValueError("an SMTP URL has nothing after host[:port]")
        tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=port or (465 if tls else 25),
            tls=tls,
            username=None if parts.username is None else unquote(parts.username),
            password=None if parts.password is None else unquote(parts.password),
        )


class SentNotices:
    """The ids of the events already mailed: a SQLite database at ``path`` (several
    relays on one host share it) or, by default, in memory (this process only)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS sent (event_id TEXT PRIMARY KEY)")

    def __contains__(self, event_id: object) -> bool:
        with self._lock:
            found = self._db.execute("SELECT 1 FROM sent WHERE event_id = ?", (str(event_id),))
            return found.fetchone() is not None

    def add(self, event_id: object) -> None:
        """Remember that ``event_id`` was mailed."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO sent VALUES (?)", (str(event_id),))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def _day(text: str) -> str:
    return datetime.fromisoformat(text).date().isoformat()


def reminder(details: Mapping[str, Any]) -> tuple[str, str]:
    """The subject and text of a reminder that an installment falls due."""
    n, amount = details["installment"], f"{details['amount']} {details['currency']}"
    due = _day(details["due_at"])
    subject = f"Installment {n} of {amount} is due on {due}"
    text = (
        f"Hello,\n\ninstallment {n} of your plan, {amount}, is due on {due}. It will be "
        "collected from your payment method on that day: please make sure it can be.\n"
    )
    return subject, text


def decline(details: Mapping[str, Any]) -> tuple[str, str]:
    """The subject and text of a notice that an installment's collection was declined."""
    n, amount = details["installment"], f"{details['amount']} {details['currency']}"
    code = f" ({details['code']})" if details.get("code") else ""
    subject = f"We could not collect installment {n} of {amount}"
    text = (
        f"Hello,\n\nwe tried to collect installment {n} of your plan, {amount}, due on "
        f"{_day(details['due_at'])}, and your payment method declined it{code}.\n"
    )
    if details.get("next_attempt_at"):
        text += f"We will try again on {_day(details['next_attempt_at'])}.\n"
    else:
        text += "We will not try again by ourselves: please contact us to pay it.\n"
    return subject, text


class EmailNotices:
    """An event sink (``po.EventSink``) that emails collection notices: one reminder per
    ``plan.installment_due_soon`` event and one decline notice per
    ``plan.collection_failed`` event, to ``recipient(customer id)``; other events pass.

    A failed send raises, so the relay delivers the batch again later; what was sent
    before the failure is remembered in ``sent`` and not sent again.
    """

    def __init__(
        self,
        url: str,
        *,
        sender: str = DEFAULT_SENDER,
        recipient: Callable[[str], str] = customer_address,
        sent: SentNotices | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.server = SmtpServer.parse(url)
        self.sender = sender
        self.recipient = recipient
        self.sent = sent if sent is not None else SentNotices()
        self.timeout = timeout
        self._lock = asyncio.Lock()

    def message(self, event: po.PaymentEvent) -> EmailMessage | None:
        """The email ``event`` calls for, or None."""
        if event.type == REMINDER:
            details = event.payment["reminder"]
            subject, text = reminder(details)
        elif event.type == DECLINE:
            details = event.payment["collection"]
            subject, text = decline(details)
        else:
            return None
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.recipient(event.payment["customer_id"])  # the payment's
        message["Subject"] = subject
        message["Date"] = format_datetime(event.occurred_at)
        message["Message-ID"] = f"<{event.id}@{MESSAGE_DOMAIN}>"  # the same for a repeat
        message["X-Paymentorch-Event"] = f"{event.type} {event.id}"
        message.set_content(f"{text}\nPayment {event.payment_id}\n")
        return message

    async def __call__(self, events: Sequence[po.PaymentEvent]) -> None:
        # One batch at a time: two relays of one process never mail one event twice.
        async with self._lock:
            for event in events:
                message = self.message(event)
                if message is None or event.id in self.sent:
                    continue
                await aiosmtplib.send(
                    message,
                    hostname=self.server.hostname,
                    port=self.server.port,
                    use_tls=self.server.tls,
                    username=self.server.username,
                    password=self.server.password,
                    timeout=self.timeout,
                )
                self.sent.add(event.id)
                logger.info("notice %s %s sent", event.type, event.id)

    async def aclose(self) -> None:
        """Close the record of what was sent."""
        self.sent.close()
