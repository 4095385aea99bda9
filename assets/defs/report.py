"""Weekly report assets: the report for an ISO week, then its mail (Monday 06:00 UTC)."""

import datetime as dt
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import dagster as dg

from assets.defs.decisions import egress_budget, mirror_placement
from assets.defs.partitions import weekly
from assets.defs.traffic import rollups, weekly_traffic
from assets.resources import DlcdnResource
from pipeline.dates import iso_week, iso_week_start
from pipeline.report import build, mail


def _iso_week(partition_key: str) -> str:
    """The weekly partition key (its Monday) as an ISO week name: 2026-11-16 -> 2026-W47."""
    return iso_week(dt.date.fromisoformat(partition_key))


def _outbox_message(outbox: Path, week: str) -> EmailMessage:
    """The week's message as weekly_report left it in the outbox (or already sent)."""
    for path in (outbox / f"{week}.eml", outbox / "sent" / f"{week}.eml"):
        if path.exists():
            return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]
    raise dg.Failure(
        description=f"no message for {week} in {outbox}: materialize weekly_report first"
    )


@dg.asset(
    partitions_def=weekly,
    group_name="report",
    kinds={"html"},
    deps=[weekly_traffic, rollups, mirror_placement, egress_budget],
    description="The weekly traffic report (HTML with inline charts, text, CSV tables) in "
    "<warehouse>/reports/<ISO week>/; every number from a named sql/ file.",
)
def weekly_report(context: dg.AssetExecutionContext, dlcdn: DlcdnResource) -> dg.MaterializeResult:
    week = _iso_week(context.partition_key)
    assert iso_week_start(week).isoformat() == context.partition_key
    s = dlcdn.settings()
    wh = dlcdn.open_warehouse()
    r = build.build_for(s, wh.root, week)
    html = build.write(r, wh.root / "reports" / week)
    eml = mail.write_outbox(wh.root / "outbox", week, build.to_email(r, s.report_from, s.report_to))
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(str(html)),
            "eml": dg.MetadataValue.path(str(eml)),
            "subject": r.subject,
            "charts": len(r.images),
            "preview": dg.MetadataValue.md("```\n" + r.text[:3000] + "\n```"),
        }
    )


@dg.asset(
    partitions_def=weekly,
    group_name="report",
    kinds={"email"},
    deps=[weekly_report],
    description="Mails the week's report once (DLCDN_SMTP_*): written to the outbox first, retried "
    "with backoff, recorded as sent; a failure leaves it in the outbox and fails the run.",
)
def weekly_report_email(
    context: dg.AssetExecutionContext, dlcdn: DlcdnResource
) -> dg.MaterializeResult:
    week = _iso_week(context.partition_key)
    s = dlcdn.settings()
    outbox = dlcdn.open_warehouse().root / "outbox"
    message = _outbox_message(outbox, week)
    try:
        outcome = mail.deliver(message, week, outbox, s)
    except mail.MailError as e:
        raise dg.Failure(description=str(e)) from None
    context.log.info(f"report {week}: {outcome.status} ({outcome.eml})")
    return dg.MaterializeResult(
        metadata={
            "status": outcome.status,
            "eml": dg.MetadataValue.path(str(outcome.eml)),
            "recipients": ", ".join(outcome.recipients),
            "message_id": outcome.message_id,
            "attempts": outcome.attempts,
        }
    )
