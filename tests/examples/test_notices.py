"""Collection notices by email, sent to a real SMTP server (aiosmtpd) on a free port:
one reminder per reminder event, one notice per declined collection, nothing else, and
nothing twice."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
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
from examples.common.settings import Settings, collection_policy
from paymentorch.clock import ManualClock
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


def _event(kind: str, payload: dict[str, Any], customer: str = "ABCD-12345") -> po.PaymentEvent:
    """An event as the library writes it: the payment's snapshot (its customer among its
    fields), its plan, and what the event adds."""
    return po.PaymentEvent(
        id=uuid7(),
        type=kind,
        payment_id=UUID("01890a5d-ac96-774b-bcce-b302099a8057"),
        occurred_at=AT,
        payment={"customer_id": customer, "plan": {}, **payload},
        actor_id="worker",
    )


def reminder_event(number: int = 2, due: str = "2026-03-05T09:00:00+00:00") -> po.PaymentEvent:
    return _event("plan.installment_due_soon", {"reminder": {
        "installment": number, "amount": "25.00", "currency": "EUR", "due_at": due,
        "before_seconds": 259200}})  # fmt: skip


def decline_event(next_attempt: str | None, code: str = "insufficient_funds") -> po.PaymentEvent:
    return _event("plan.collection_failed", {"collection": {
        "installment": 3, "amount": "25.00", "currency": "EUR",
        "due_at": "2026-03-19T09:00:00+00:00", "code": code,
        "hard": next_attempt is None, "attempts": 1, "next_attempt_at": next_attempt}},
        customer="WXYZ-67890")  # fmt: skip


async def test_one_email_per_reminder_and_per_decline(mailbox: tuple[Mailbox, str]) -> None:
    """A reminder event and a decline event each send one email to the customer's
    address, saying the installment, amount, due date (and the decline and next try);
    other events send nothing."""
    box, url = mailbox
    notices = EmailNotices(url, sender="Collections <collect@shop.example>")
    written_off = {"amount": "50.00", "currency": "EUR"}
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


class Outbox:
    """The events the relay delivered, kept to deliver them all again."""

    def __init__(self, notices: EmailNotices) -> None:
        self.notices = notices
        self.events: list[po.PaymentEvent] = []

    async def __call__(self, events: Sequence[po.PaymentEvent]) -> None:
        self.events += events
        await self.notices(events)


async def test_plans_driven_day_by_day_send_one_notice_each(
    mailbox: tuple[Mailbox, str],
) -> None:
    """Plans collected day by day on a manual clock, with soft and hard declines retried
    on the ladder: one reminder per installment and reminder offset, one notice per
    declined collection, each to its customer; the events delivered again send
    nothing more."""
    box, url = mailbox
    clock = ManualClock(AT)
    policy = po.CollectionPolicy(retries=(timedelta(days=1), timedelta(days=3)),
                                 reminders=(timedelta(days=3), timedelta(days=1)))  # fmt: skip
    processor = po.testing.SimulatedProcessor(
        success_rate=0.6, latency=(0, 0), seed=7,
        decline_codes={"insufficient_funds": 3, "card_stolen": 1},
    )  # fmt: skip
    notices = EmailNotices(url)
    delivered = Outbox(notices)
    admin = po.Actor("ops-1", roles={po.Role.ADMIN})
    async with await po.open_service("memory://", clock=clock, processor=processor,
                                     collections=policy) as service:  # fmt: skip
        customers = [f"ABCD-{n:05d}" for n in range(8)]
        payments = []
        for customer in customers:
            payment = await service.create_payment(customer, "100.00", actor=admin,
                                                   plan=po.PlanTerms())  # fmt: skip
            payments.append(await service.confirm_payment(payment.id, actor=admin))
        worker = po.PaymentWorker(service)
        relay = po.OutboxRelay(service.store, delivered, clock=clock)
        for _ in range(60):
            clock.advance(timedelta(days=1))
            await worker.run_plans()
            while await worker.run_once():
                pass
            while await relay.run_once():
                pass
        declined = {
            p.id: [o for o in await service.operations(p.id)
                   if o.kind is po.OperationKind.INSTALLMENT
                   and o.status is po.OperationStatus.DECLINED]
            for p in payments
        }  # fmt: skip
        stopped = {p.id for p in payments if (await service.plan(p.id)).collection_stopped}
    reminders = [e for e in delivered.events if e.type == "plan.installment_due_soon"]
    failures = [e for e in delivered.events if e.type == "plan.collection_failed"]
    mailed = {m["Message-ID"]: (to, m) for to, m in box.messages}
    assert len(mailed) == len(box.messages) == len(reminders) + len(failures)
    for event in reminders + failures:
        to, _ = mailed[f"<{event.id}@notices.paymentorch.example>"]
        assert to == [customer_address(event.payment["customer_id"])]  # the payment's
    sent = [(e.payment_id, e.payment["reminder"]["installment"],
             e.payment["reminder"]["before_seconds"]) for e in reminders]  # fmt: skip
    assert len(sent) == len(set(sent))  # one per installment and offset
    offsets = {3 * 86400, 86400}
    for payment in payments:
        numbers = {(n, b) for pid, n, b in sent if pid == payment.id}
        assert {(2, b) for b in offsets} <= numbers  # nothing can stop a plan before its 2nd
        if not declined[payment.id]:
            assert numbers == {(n, b) for n in (2, 3, 4) for b in offsets}
        mine = [e for e in failures if e.payment_id == payment.id]
        assert len(mine) == len(declined[payment.id])  # one notice per decline
    assert any(declined.values()), "the seed gives declines"
    assert stopped, "and a plan whose collection stopped"
    assert any(not d for d in declined.values()), "and a plan paid on time"
    before = len(box.messages)
    await notices(delivered.events)  # the relay's at-least-once: all of it again
    await notices.aclose()
    assert len(box.messages) == before


def test_the_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SMTP server, sender and record, and the collection policy the worker runs,
    come from the environment; unset, the library's policy and no email."""
    for name in ("PAYMENTORCH_SMTP_URL", "PAYMENTORCH_COLLECTION_RETRIES",
                 "PAYMENTORCH_COLLECTION_REMINDERS", "PAYMENTORCH_HARD_DECLINES",
                 "PAYMENTORCH_CHARGE_OFF_DAYS"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAYMENTORCH_JWT_SECRET", "a-secret-long-enough-for-the-tests-here")
    default = Settings.from_env()
    assert default.smtp_url is None
    assert collection_policy(default) == po.CollectionPolicy()
    monkeypatch.setenv("PAYMENTORCH_SMTP_URL", "smtps://mail.example")
    monkeypatch.setenv("PAYMENTORCH_SMTP_FROM", "Shop <shop@shop.example>")
    monkeypatch.setenv("PAYMENTORCH_COLLECTION_RETRIES", "0.5, 2")
    monkeypatch.setenv("PAYMENTORCH_COLLECTION_REMINDERS", "")
    monkeypatch.setenv("PAYMENTORCH_HARD_DECLINES", "card_stolen,do_not_honor")
    monkeypatch.setenv("PAYMENTORCH_CHARGE_OFF_DAYS", "90")
    settings = Settings.from_env()
    assert (settings.smtp_url, settings.smtp_from) == ("smtps://mail.example",
                                                      "Shop <shop@shop.example>")  # fmt: skip
    assert collection_policy(settings) == po.CollectionPolicy(
        retries=(timedelta(hours=12), timedelta(days=2)),
        hard_declines=frozenset({"card_stolen", "do_not_honor"}),
        reminders=(),
        charge_off_after=timedelta(days=90),
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PAYMENTORCH_SMTP_URL", "mail.example:25", "SMTP URL"),
        ("PAYMENTORCH_COLLECTION_RETRIES", "1,x", "PAYMENTORCH_COLLECTION_RETRIES"),
        ("PAYMENTORCH_COLLECTION_REMINDERS", "-3", "PAYMENTORCH_COLLECTION_REMINDERS"),
        ("PAYMENTORCH_CHARGE_OFF_DAYS", "30,60", "PAYMENTORCH_CHARGE_OFF_DAYS"),
        ("PAYMENTORCH_CHARGE_OFF_DAYS", "inf", "PAYMENTORCH_CHARGE_OFF_DAYS"),
        ("PAYMENTORCH_COLLECTION_RETRIES", "400", "retries"),  # the library's limit
    ],
)
def test_bad_settings_stop_the_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """A bad SMTP URL or collection setting is refused when the settings are read, with
    the variable (or the policy's field) named."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()
