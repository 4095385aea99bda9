"""Sending the weekly report by SMTP, through an outbox, at most once per week.

The outbox is a folder:

    <outbox>/<week>.eml          written before any attempt; stays here until the server takes it
    <outbox>/sent/<week>.json    the sent record (message id, recipients, UTC time, attempts)
    <outbox>/sent/<week>.eml     the message as sent
    <outbox>/.lock               flock'd around every outbox write and check-send-record

So a report is never lost (the `.eml` is on disk before the first connection, and a failure leaves
it there) and never sent twice for the same week (the sent record is checked under the lock; only
`force=True` sends a recorded week again; a process killed after the server took the message
and before the record is written sends it again on the next run: SMTP gives no way to ask).

Settings: DLCDN_SMTP_HOST (unset: write the outbox and stop), DLCDN_SMTP_PORT (default 25, 587 or
465 by DLCDN_SMTP_TLS = none, starttls or ssl), DLCDN_SMTP_USER (login only when set),
DLCDN_SMTP_PASSWORD (environment only; a secret type in `Settings`, read when logging in, never written,
logged or put in an error), DLCDN_REPORT_FROM, DLCDN_REPORT_TO.
"""

from __future__ import annotations

import copy
import datetime as dt
import email.utils
import json
import logging
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from pipeline import files
from pipeline.faults import crash_point
from pipeline.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
TIMEOUT_S = 30.0
PASSWORD_ENV = "DLCDN_SMTP_PASSWORD"
# The week becomes a file name: no separators, no leading dot, no "..".
_WEEK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


class MailError(Exception):
    """The report could not be sent; the message names the setting or the server, never the password."""


@dataclass(frozen=True)
class Outcome:
    """What `deliver` did: "sent", "already_sent" or "outbox" (no SMTP host set)."""

    status: str
    eml: Path
    message_id: str
    recipients: tuple[str, ...]
    attempts: int


def _check_week(week: str) -> None:
    if len(week) > 64 or not _WEEK.fullmatch(week):
        raise MailError(
            f"week {week!r} cannot name an outbox file: use letters, digits, '-', '_', '.'"
        )


def write_outbox(outbox: Path, week: str, message: EmailMessage) -> Path:
    """Write `message` atomically to `<outbox>/<week>.eml` and return that path.

    Under the outbox lock (re-entrant: `deliver` holds it already), as every writer of the outbox
    is, so that a temporary file found there under the lock is a killed writer's."""
    _check_week(week)
    path = Path(outbox) / f"{week}.eml"
    with files.lock(Path(outbox) / ".lock"):
        files.atomic_write_bytes(path, message.as_bytes(), point="outbox:unrenamed")
    return path


def _recipients(message: EmailMessage) -> tuple[str, ...]:
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    return tuple(addr for _, addr in email.utils.getaddresses(fields) if addr)


def _prepared(message: EmailMessage, settings: Settings) -> EmailMessage:
    """A copy of `message` with Message-ID, Date, From and To filled in where missing."""
    # A copy: the caller's message is not changed behind its back.
    message = copy.deepcopy(message)
    if message["Message-ID"] is None:
        message["Message-ID"] = email.utils.make_msgid(domain="dlcdn")
    if message["Date"] is None:
        message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    if message["From"] is None and settings.report_from:
        message["From"] = settings.report_from
    if message["To"] is None and settings.report_to:
        message["To"] = ", ".join(settings.report_to)
    if settings.smtp_host:
        if message["From"] is None:
            raise MailError(
                f"DLCDN_REPORT_FROM is not set: it is needed to send the report through {settings.smtp_host}"
            )
        if not _recipients(message):
            raise MailError(
                f"DLCDN_REPORT_TO is not set: it is needed to send the report through {settings.smtp_host}"
            )
    return message


def _password(settings: Settings) -> str | None:
    """The SMTP password, checked against the TLS mode; None when no login is configured."""
    if not settings.smtp_user:
        return None
    if settings.smtp_tls == "none":
        # AUTH PLAIN/LOGIN over a clear connection hands the password to anyone on the path.
        raise MailError(
            "DLCDN_SMTP_USER is set but DLCDN_SMTP_TLS=none would send the password in clear: "
            "use starttls or ssl"
        )
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    if not password:
        raise MailError(
            f"DLCDN_SMTP_USER={settings.smtp_user} is set but {PASSWORD_ENV} is not "
            "(set it in the environment)"
        )
    return password


@dataclass(frozen=True)
class _Server:
    """Where and how to send: the SMTP settings, checked, with the TLS context to use."""

    host: str
    port: int
    tls: str
    user: str | None
    password: str | None
    ssl_context: ssl.SSLContext | None

    @classmethod
    def of(cls, settings: Settings, ssl_context: ssl.SSLContext | None, eml: Path) -> _Server:
        assert settings.smtp_host
        try:
            password = _password(settings)
        except MailError as e:
            raise MailError(f"{e}; the message stays in {eml}") from None
        if settings.smtp_tls != "none" and ssl_context is None:
            ssl_context = ssl.create_default_context()
        port = settings.smtp_port or DEFAULT_PORTS[settings.smtp_tls]
        return cls(
            settings.smtp_host, port, settings.smtp_tls, settings.smtp_user, password, ssl_context
        )


def _send_once(
    message: EmailMessage, recipients: tuple[str, ...], server: _Server
) -> dict[str, tuple[int, bytes]]:
    """One connection, one message; returns the recipients the server refused."""
    client: smtplib.SMTP
    if server.tls == "ssl":
        client = smtplib.SMTP_SSL(
            server.host, server.port, timeout=TIMEOUT_S, context=server.ssl_context
        )
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT_S)
    try:
        if server.tls == "starttls":
            client.starttls(context=server.ssl_context)
        if server.user and server.password is not None:
            client.login(server.user, server.password)
        return client.send_message(message, to_addrs=list(recipients))
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            # The message is either accepted or the error above is the one that matters; a failed
            # QUIT must not turn a delivered report into a "failure" that is retried and sent twice.
            client.close()


def _permanent(exc: BaseException) -> bool:
    """True for failures that a retry in a few seconds will not fix."""
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
        return True
    if isinstance(exc, ssl.SSLCertVerificationError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False


def _reason(exc: BaseException, password: str | None) -> str:
    text = f"{type(exc).__name__}: {exc}"
    # Servers do not echo credentials, but a reason ends up in logs and run metadata: make sure.
    if password:
        text = text.replace(password, "***")
    return text


def _read_record(path: Path) -> dict[str, object] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as e:
        # A damaged record still means "sent": resending on a guess would break "never twice".
        log.warning("sent record %s is unreadable (%s); treating the week as sent", path, e)
        return {}


def deliver(
    message: EmailMessage,
    week: str,
    outbox: Path,
    settings: Settings,
    force: bool = False,
    retries: int = 3,
    backoff_s: float = 1.0,
    ssl_context: ssl.SSLContext | None = None,
) -> Outcome:
    """Write the report for `week` to the outbox and send it, once per week unless `force`.

    Raises MailError naming the setting (missing From/To/password) or the server (after `retries`
    attempts, waiting `backoff_s`, 2*backoff_s, ... between them); the `.eml` then stays in the
    outbox. `ssl_context` defaults to `ssl.create_default_context()`.
    """
    _check_week(week)
    if retries < 1:
        raise ValueError(f"retries={retries}: at least one attempt is needed")
    outbox = Path(outbox)
    message = _prepared(message, settings)
    # One sender per outbox at a time: check, send and record under `<outbox>/.lock`.
    with files.lock(outbox / ".lock"):
        files.remove_temporaries(outbox)  # a killed write_outbox's
        if settings.smtp_host and not force:
            # Checked before the outbox write: a pending-looking copy of a sent week would
            # invite a second send.
            sent = _already_sent(outbox, week)
            if sent is not None:
                return sent
        eml = write_outbox(outbox, week, message)
        crash_point("outbox:written")
        if not settings.smtp_host:
            log.info("DLCDN_SMTP_HOST is not set: the report for %s is in %s", week, eml)
            return Outcome("outbox", eml, str(message["Message-ID"]), _recipients(message), 0)
        server = _Server.of(settings, ssl_context, eml)
        refused, attempts = _send(message, week, eml, server, retries, backoff_s)
        crash_point("outbox:sent")
        return _record_sent(outbox, week, message, server, refused, attempts)


def _already_sent(outbox: Path, week: str) -> Outcome | None:
    """The outcome of an earlier send of `week`, if its sent record is there."""
    record = _read_record(outbox / "sent" / f"{week}.json")
    if record is None:
        return None
    log.info("report for %s was already sent; not sending again", week)
    sent_eml = outbox / "sent" / f"{week}.eml"
    if (outbox / f"{week}.eml").exists() and not sent_eml.exists():
        # a send killed between its record and the move: finish the move (callers hold the lock)
        files.move(outbox / f"{week}.eml", sent_eml)
    return Outcome(
        status="already_sent",
        eml=sent_eml if sent_eml.exists() else outbox / f"{week}.eml",
        message_id=str(record.get("message_id", "")),
        recipients=tuple(record.get("recipients", ())),  # type: ignore[arg-type]
        attempts=0,
    )


def _send(
    message: EmailMessage, week: str, eml: Path, server: _Server, retries: int, backoff_s: float
) -> tuple[dict[str, tuple[int, bytes]], int]:
    """Sends with retries and exponential backoff; returns the refused recipients and attempts.
    A permanent failure, or the last attempt's, is a MailError naming the server."""
    attempts = 0
    while True:
        attempts += 1
        try:
            return _send_once(message, _recipients(message), server), attempts
        # ssl.SSLError and ConnectionRefusedError/TimeoutError are OSErrors.
        except (smtplib.SMTPException, OSError) as e:
            reason = _reason(e, server.password)
            if attempts >= retries or _permanent(e):
                # `from None`: the chained traceback adds nothing the reason lacks, and its
                # frames (smtplib.login) hold the password.
                raise MailError(
                    f"sending the report for {week} to {server.host}:{server.port} failed after "
                    f"{attempts} attempt{'s' if attempts > 1 else ''}: {reason}; the message stays "
                    f"in {eml}"
                ) from None
            delay = backoff_s * 2 ** (attempts - 1)
            log.warning(
                "sending the report for %s to %s:%s failed (attempt %d of %d): %s; retrying in %.1f s",
                week, server.host, server.port, attempts, retries, reason, delay,
            )  # fmt: skip
            time.sleep(delay)


def _record_sent(
    outbox: Path,
    week: str,
    message: EmailMessage,
    server: _Server,
    refused: dict[str, tuple[int, bytes]],
    attempts: int,
) -> Outcome:
    """Writes the sent record, then moves the message to `sent/`: a crash in between leaves a
    record (so no second send) and the message still on disk."""
    message_id = str(message["Message-ID"])
    delivered = tuple(r for r in _recipients(message) if r not in refused)
    if refused:
        log.warning("the server refused %s for the report of %s", sorted(refused), week)
    record = {
        "week": week,
        "message_id": message_id,
        "recipients": list(delivered),
        "refused": {
            r: [code, text.decode("utf-8", "replace")] for r, (code, text) in refused.items()
        },
        "sent_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "attempts": attempts,
        "server": f"{server.host}:{server.port}",
    }
    sent_eml = outbox / "sent" / f"{week}.eml"
    files.atomic_write_bytes(
        outbox / "sent" / f"{week}.json", (json.dumps(record, indent=2) + "\n").encode()
    )
    crash_point("outbox:recorded")
    files.move(outbox / f"{week}.eml", sent_eml)
    log.info("sent the report for %s to %s (attempt %d)", week, ", ".join(delivered), attempts)
    return Outcome("sent", sent_eml, message_id, delivered, attempts)
