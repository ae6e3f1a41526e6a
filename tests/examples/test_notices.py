"""Collection notices by email, sent to a real SMTP server (aiosmtpd) on a free port:
one reminder per reminder event, one notice per declined collection, nothing else, and
nothing twice."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

import paymentorch as po
from examples.common.infrastructure import Publisher
from examples.common.notices import EmailNotices, SentNotices, SmtpServer, customer_address
from examples.common.settings import Settings
from paymentorch.domain.ids import uuid7

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Mailbox:
    """What the SMTP server accepted: each message with its envelope's recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.refuse = False

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook
        if self.refuse:
            return "451 try again later"
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, str]]:
    """A real SMTP server on a free loopback port, and its URL."""
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


def _event(kind: str, payload: dict[str, Any], event_id: UUID | None = None) -> po.PaymentEvent:
    return po.PaymentEvent(
        id=event_id or uuid7(),
        type=kind,
        payment_id=UUID("01890a5d-ac96-774b-bcce-b302099a8057"),
        occurred_at=AT,
        payment={"customer_id": "ABCD-12345", "plan": {}, **payload},
        actor_id="worker",
    )


def reminder_event(number: int = 2, due: str = "2026-03-05T09:00:00+00:00") -> po.PaymentEvent:
    return _event("plan.installment_due_soon", {"reminder": {
        "installment": number, "amount": "25.00", "currency": "EUR", "due_at": due,
        "customer_id": "ABCD-12345", "before_seconds": 259200}})  # fmt: skip


def decline_event(next_attempt: str | None, code: str = "insufficient_funds") -> po.PaymentEvent:
    return _event("plan.collection_failed", {"collection": {
        "installment": 3, "amount": "25.00", "currency": "EUR",
        "due_at": "2026-03-19T09:00:00+00:00", "customer_id": "WXYZ-67890", "code": code,
        "hard": next_attempt is None, "attempts": 1, "next_attempt_at": next_attempt}})  # fmt: skip


async def test_one_email_per_reminder_and_per_decline(mailbox: tuple[Mailbox, str]) -> None:
    """A reminder event and a decline event each send one email to the customer's
    address, saying the installment, amount, due date (and the decline and next try);
    other events send nothing."""
    box, url = mailbox
    notices = EmailNotices(url, sender="Collections <collect@shop.example>")
    written_off = {"customer_id": "ABCD-12345", "amount": "50.00", "currency": "EUR"}
    other = _event("plan.charged_off", {"charge_off": written_off})
    created = _event("payment.created", {})
    soft = decline_event("2026-03-22T09:00:00+00:00")
    hard = decline_event(None, code="card_stolen")
    await notices([created, reminder_event(), other, soft, hard])
    await notices.aclose()
    assert [to for to, _ in box.messages] == [
        ["abcd-12345@customers.example"],
        ["wxyz-67890@customers.example"],
        ["wxyz-67890@customers.example"],
    ]
    (_, remind), (_, retry), (_, stop) = box.messages
    assert remind["From"] == "Collections <collect@shop.example>"
    assert remind["Subject"] == "Installment 2 of 25.00 EUR is due on 2026-03-05"
    assert "installment 2 of your plan, 25.00 EUR, is due on 2026-03-05" in _text(remind)
    assert retry["Subject"] == "We could not collect installment 3 of 25.00 EUR"
    assert "(insufficient_funds)" in _text(retry)
    assert "We will try again on 2026-03-22." in _text(retry)
    assert "(card_stolen)" in _text(stop)
    assert "We will not try again by ourselves" in _text(stop)
    assert retry["Message-ID"] == f"<{soft.id}@notices.paymentorch.example>"


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def test_a_redelivered_event_is_not_sent_twice(
    mailbox: tuple[Mailbox, str], tmp_path: Path
) -> None:
    """The relay may deliver a batch again: an event already mailed is not mailed again,
    by the same sink or by another one sharing the record (a second relay, a restart)."""
    box, url = mailbox
    first, second = reminder_event(2), reminder_event(3, due="2026-03-19T09:00:00+00:00")
    record = str(tmp_path / "sent.db")
    notices = EmailNotices(url, sent=SentNotices(record))
    await notices([first])
    await notices([first, second])  # the batch again, with one new event
    await notices.aclose()
    restarted = EmailNotices(url, sent=SentNotices(record))
    await restarted([first, second])
    await restarted.aclose()
    subjects = [m["Subject"] for _, m in box.messages]
    assert subjects == [
        "Installment 2 of 25.00 EUR is due on 2026-03-05",
        "Installment 3 of 25.00 EUR is due on 2026-03-19",
    ]


async def test_a_refused_email_is_sent_on_the_next_delivery(mailbox: tuple[Mailbox, str]) -> None:
    """When the server refuses, the sink raises (the relay keeps the batch) and sends on
    the next delivery what it had not sent; what it had sent is not sent again."""
    box, url = mailbox
    notices = EmailNotices(url)
    first, second = reminder_event(2), decline_event("2026-03-22T09:00:00+00:00")
    await notices([first])
    box.refuse = True
    with pytest.raises(Exception, match="try again later"):
        await notices([first, second])
    box.refuse = False
    await notices([first, second])
    await notices.aclose()
    assert [m["Subject"][:14] for _, m in box.messages] == ["Installment 2 ", "We could not c"]


async def test_the_relay_of_the_example_mails_through_the_settings(
    mailbox: tuple[Mailbox, str],
) -> None:
    """``PAYMENTORCH_SMTP_URL`` and ``PAYMENTORCH_SMTP_FROM`` give the example's relay sink
    its notices; without a URL it sends none."""
    box, url = mailbox
    publisher = Publisher(Settings(smtp_url=url, smtp_from="shop <shop@shop.example>"))
    await publisher([reminder_event()])
    await publisher.aclose()
    quiet = Publisher(Settings())
    assert quiet.notices is None
    await quiet([reminder_event()])
    await quiet.aclose()
    assert [m["From"] for _, m in box.messages] == ["shop <shop@shop.example>"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:8025", SmtpServer("127.0.0.1", 8025)),
        ("smtp://mail.example", SmtpServer("mail.example", 25)),
        ("smtps://ann:p%40ss@mail.example", SmtpServer("mail.example", 465, True, "ann", "p@ss")),
    ],
)
def test_the_smtp_url(url: str, expected: SmtpServer) -> None:
    """``smtp://`` and ``smtps://`` URLs, with their default ports and credentials."""
    assert SmtpServer.parse(url) == expected


@pytest.mark.parametrize(
    "url", ["http://mail.example", "smtp://", "smtp://host:99999", "smtp://host/path", "x"]
)
def test_a_bad_smtp_url_is_refused(url: str) -> None:
    """Anything but ``smtp[s]://[user:password@]host[:port]`` is a ValueError."""
    with pytest.raises(ValueError, match="SMTP URL"):
        SmtpServer.parse(url)


def test_the_customer_address() -> None:
    """The example's customers have no email: their id at customers.example stands in."""
    assert customer_address("ABCD-12345") == "abcd-12345@customers.example"
