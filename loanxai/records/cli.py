"""``loanxai records``: an examiner's commands over the decision record.

``upgrade`` migrates the database; ``show`` prints one application's decisions (by its
application id, or with ``--request`` by the request id) with their reasons and what followed;
``looked`` lists who asked for an explanation of them, when, in which role and for what, and who
looked at them in the reviewer console, when and on which page; ``list``
and ``export`` (CSV, Parquet) select by time, decision, model version and group; ``redecide``
decides a recorded application again with the model that decided it; ``notice`` and ``notices``
render adverse action notices; ``purge`` deletes what is past the retention period (never less
than the legal minimum without a recorded override). The database is ``LOAN_RECORDS_URL``
(``--record-url``), the model's artifacts ``--artifacts``.

The record holds what callers sent: what it prints has control characters escaped
(:func:`~loanxai.core.text.printable`), its CSV exports no cell a spreadsheet would run, and a
notice's file name is its application id encoded (:func:`~loanxai.records.notices.notice_file_name`),
never a path out of its folder. A notice that cannot be rendered is reported and skipped.
"""
from __future__ import annotations

import argparse
import getpass
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from loanxai.artifacts import CLASSIFIER_DIR
from loanxai.config import LEGAL_MINIMUM_MONTHS, Settings, ToolSettings
from loanxai.core.cli import command_parser
from loanxai.core.codecs import EXPLAIN_KINDS
from loanxai.core.text import printable
from loanxai.errors import RecordError
from loanxai.records import migrations, notices
from loanxai.records.applicants import Applicant, read_applicants
from loanxai.records.queries import (
    Selection,
    asker,
    event_text,
    export,
    purge,
    retention_limit,
    select_decisions,
    utc,
)
from loanxai.records.redecide import Redecider
from loanxai.records.store import DecisionStore, configured_url, open_store, reading_store

__all__ = ["moment", "parser", "run"]

logger = logging.getLogger(__name__)

#: a re-decided probability further than this from the recorded one is a different decision
SAME_PROBABILITY = 1e-9


def moment(text: str) -> datetime:
    """A command-line moment (ISO 8601, UTC when no zone is given)."""
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or time (ISO 8601: 2026-03-01 or "
                                         "2026-03-01T14:00)") from None


def _positive(text: str) -> int:
    """A count of processes: a whole number, at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes: a whole number, at least 1")
    return int(text)


def _months(text: str) -> int:
    """A retention period: a whole number of months, at least 1."""
    try:
        months = int(text)
    except ValueError:
        months = 0
    if months < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a retention period: a whole number of months, at least 1 "
                                         f"(the law asks for {LEGAL_MINIMUM_MONTHS})")
    return months


def _group(text: str) -> tuple[str, str]:
    attribute, equals, group = text.partition("=")
    if not equals or not attribute or not group:
        raise argparse.ArgumentTypeError(f"{text!r} is not attribute=group (e.g. gender=Female)")
    return attribute, group


def _selection_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--since", type=moment, help="decided at or after (UTC, ISO 8601)")
    command.add_argument("--until", type=moment, help="decided before (UTC, ISO 8601)")
    command.add_argument("--decision", choices=("approved", "rejected"), help="only this decision")
    command.add_argument("--model", help="only this model version")
    command.add_argument("--group", type=_group, help="only this protected group, attribute=group")


def parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    root = command_parser(__doc__.splitlines()[0])
    root.add_argument("--record-url", help="the record's SQLAlchemy URL (default: LOAN_RECORDS_URL)")
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser("upgrade", help="bring the database to the newest migration (before the services start: "
                        "they only check it)")
    show = commands.add_parser("show", help="one application's decisions, reasons and what followed")
    looked = commands.add_parser("looked", help="who asked for explanations of one application's decisions, who looked at them")
    listing = commands.add_parser("list", help="the selected decisions, a line each")
    _selection_options(listing)
    listing.add_argument("--limit", type=int, default=50, help="at most this many lines")
    exporting = commands.add_parser("export", help="the selected decisions to a CSV or Parquet file")
    _selection_options(exporting)
    exporting.add_argument("--out", type=Path, required=True, help="the file: .csv or .parquet")
    redecide = commands.add_parser("redecide", help="decide a recorded application again with its model")
    notice = commands.add_parser("notice", help="the adverse action notice of one rejected application")
    for command in (show, looked, redecide, notice):
        command.add_argument("id", help="an application id (with --request: a request id, meta.puid)")
        command.add_argument("--request", action="store_true", help="the id is a request id (meta.puid): every "
                             "application of that request")
    notice.add_argument("--out", type=Path, required=True, help="the file: .html or .pdf")
    many = commands.add_parser("notices", help="the notice of every selected rejection, into a folder")
    _selection_options(many)
    many.add_argument("--out-dir", type=Path, required=True,
                      help="the folder (one <application id, percent-encoded>.<format> each)")
    many.add_argument("--format", choices=("html", "pdf"), default="html", help="what to render")
    many.add_argument("--processes", type=_positive, help="processes rendering PDFs (default: one per core)")
    for command in (notice, many):
        command.add_argument("--applicants", type=Path, metavar="FILE", help="a CSV of the applicants' names, "
                             "addresses, credit asked for and any credit score used, by application id (docs: "
                             "Keep the record and send notices); each notice's application must be in it")
    for command in (redecide, notice, many):
        command.add_argument("--artifacts", type=Path, default=CLASSIFIER_DIR,
                             help="the artifacts of the model that decided")
    purging = commands.add_parser("purge", help="delete the decisions past the retention period (the purge is recorded)")
    purging.add_argument("--months", type=_months, help=f"the retention period (default: LOAN_RETENTION_MONTHS, "
                         f"{LEGAL_MINIMUM_MONTHS}); shorter than {LEGAL_MINIMUM_MONTHS} only with --override")
    purging.add_argument("--override", metavar="REASON", help="why a retention shorter than the legal minimum is "
                         "lawful here (recorded with the purge)")
    purging.add_argument("--accepted-by", help="who gives that reason (default: the user)")
    purging.add_argument("--dry-run", action="store_true", help="count them, delete nothing")
    return root


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the record's subcommand ``args.command`` (``loanxai records``)."""
    if args.command == "upgrade":
        store = open_store(configured_url(args.record_url, settings.service))
        logger.info("the decision record at %s is at migration %s", store.shown_url, migrations.head())
        return 0
    return _COMMANDS[args.command](reading_store(args.record_url, settings.service), args, settings.tool)


def _selection(args: argparse.Namespace) -> Selection:
    return Selection(args.since, args.until, args.decision, args.model, args.group)


def _found(store: DecisionStore, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The decisions ``args.id`` names: an application's, or with ``--request`` a request's (never confused)."""
    kind = "request" if args.request else "application"
    found = store.decisions_of_request(args.id) if args.request else store.decisions_of_application(args.id)
    if not found:
        raise RecordError(f"no decision on the record for {kind} id {args.id!r}"
                          + ("" if args.request else " (a request id? add --request)"))
    return found


def _print(text: str) -> None:
    """Print lines from the record, control characters escaped (a terminal obeys none of them)."""
    print("\n".join(printable(line) for line in text.split("\n")))


def _show(store: DecisionStore, args: argparse.Namespace, tool: ToolSettings) -> int:
    for record in _found(store, args):
        _print(_describe(record))
        for event in store.events_of(record["request_id"], record["row"]):
            _print(f"  then, {utc(event['at']):%Y-%m-%d %H:%M:%S} UTC: {event_text(event)}")
    return 0


def _looked(store: DecisionStore, args: argparse.Namespace, tool: ToolSettings) -> int:
    for record in _found(store, args):
        attached = store.events_of(record["request_id"], record["row"])
        explanations = [e for e in attached if e["kind"] in EXPLAIN_KINDS]
        pages = [e for e in attached if e["kind"] == "looked"]
        _print(f"application {record['application_id']} (request {record['request_id']}, row {record['row']}, "
               f"{record['decision']}): {len(explanations)} explanations asked, shown {len(pages)} times in the console")
        for event in explanations:
            content = event["content"]
            _print(f"  {utc(event['at']):%Y-%m-%d %H:%M:%S} UTC  {asker(content)}  {event['kind']}  "
                   f"parameters {json.dumps(content['parameters'], sort_keys=True)}  "
                   f"{content['answer'].get('model_rows', 'unknown')} model rows sampled")
        for event in pages:
            by = event["content"]["by"]
            _print(f"  {utc(event['at']):%Y-%m-%d %H:%M:%S} UTC  {by['subject']} ({by['role']})  looked  "
                   f"console page {event['content']['page']}")
    return 0


def _describe(record: Mapping[str, Any]) -> str:
    lines = [f"application {record['application_id']}: {record['decision']} at {utc(record['decided_at']).isoformat()} "
             f"(request {record['request_id']}, row {record['row']})",
             f"  model {record['model_version']} (manifest sha256 {record['manifest_sha256']}), dataset "
             f"{record['dataset']}; probability of approval {record['probability']:.4f}, cutoff {record['cutoff']:.4f}",
             f"  inputs as entered: {json.dumps(record['inputs'])}",
             f"  protected (monitoring and audit only): {json.dumps(record['protected'])}"]
    if record["review_id"] is not None:
        who = ", ".join(r["subject"] for r in record["decided_by"] or []) or "the model, on the corrected inputs"
        lines.append(f"  made in review {record['review_id']} by {who}")
    if record["reasons"] is None:
        lines.append("  reasons: not asked (`redecide` or `notice` give them again)")
    else:
        lines += [f"  reason {r['code']}: {r['text']}" for r in record["reasons"]["reasons"]]
    return "\n".join(lines)


def _list(store: DecisionStore, args: argparse.Namespace, tool: ToolSettings) -> int:
    for r in select_decisions(store, _selection(args), args.limit):
        _print(f"{r['decided_at']:%Y-%m-%d %H:%M:%S}  {r['application_id']:<36}  {r['decision']:<8}  "
               f"{r['probability']:.4f}  model {r['model_version']}")
    return 0


def _export(store: DecisionStore, args: argparse.Namespace, tool: ToolSettings) -> int:
    count = export(store, _selection(args), args.out)
    logger.info("%d decisions written to %s", count, args.out)
    return 0


def _redecide(store: DecisionStore, args: argparse.Namespace, tool: ToolSettings) -> int:
    redecider = Redecider(args.artifacts)
    records = _found(store, args)
    same = True
    for record, again in zip(records, redecider.decide_many(records)):
        same &= again.difference <= SAME_PROBABILITY and again.decision == record["decision"]
        _print(f"application {record['application_id']} (request {record['request_id']}, row {record['row']}): "
               f"recorded {record['decision']} at {record['probability']:.12f}; decided again {again.decision} at "
               f"{again.probability:.12f} (difference {again.difference:.1e}) by model {redecider.manifest.version}")
    if not same:
        logger.error("the model does not give the recorded decision again")
    return 0 if same else 1


def _notice(store: DecisionStore, args: argparse.Namespace, tool: ToolSettings) -> int:
    if args.out.suffix not in notices.NOTICE_FORMATS:
        raise RecordError(f"{args.out}: a notice is {' or '.join(notices.NOTICE_FORMATS)}")
    found = _found(store, args)
    redecider = Redecider(args.artifacts)
    try:
        record, html = notices.action_notice(found, lambda _: redecider, notices.Letterhead.from_settings(tool),
                                             _applicants(args))
    except RecordError as error:
        raise RecordError(f"{printable(args.id)}: {error.message}") from None
    _write(html, args.out, record["decided_at"])
    logger.info("notice of application %s written to %s", printable(record["application_id"]), args.out)
    return 0


def _notices(store: DecisionStore, args: argparse.Namespace, tool: ToolSettings) -> int:
    selection = Selection(args.since, args.until, "rejected", args.model, args.group, reviewed=False)
    records = list(select_decisions(store, selection))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    pages = notices.render_notices(records, Redecider(args.artifacts), notices.Letterhead.from_settings(tool),
                                   _applicants(args))
    written, failed = [], []
    for record, html in zip(records, pages):
        if isinstance(html, RecordError):
            failed.append((record, html.message))
        else:
            written.append((record, html, args.out_dir / notices.notice_file_name(record["application_id"],
                                                                                 f".{args.format}")))
    if args.format == "pdf":  # several processes: a PDF costs WeasyPrint tens of milliseconds
        outcomes = notices.notice_pdfs([(html, out, record["decided_at"]) for record, html, out in written],
                                       args.processes)
    else:
        outcomes = (_written_html(html, out) for _, html, out in written)
    for (record, _, _), why in tqdm(zip(written, outcomes), total=len(written), desc="notices", unit="notice",
                                    disable=None):
        if why is not None:
            failed.append((record, why))
    for record, why in failed:
        logger.error("application %s (request %s, row %d): no notice: %s", printable(record["application_id"]),
                     printable(record["request_id"]), record["row"], printable(why))
    logger.info("%d notices written to %s%s", len(records) - len(failed), args.out_dir,
                f"; {len(failed)} skipped (see above)" if failed else "")
    return 1 if failed else 0


def _applicants(args: argparse.Namespace) -> dict[str, Applicant] | None:
    """The applicants' file of ``--applicants``, read before any notice is rendered; None without it."""
    return None if args.applicants is None else read_applicants(args.applicants)


def _written_html(html: str, out: Path) -> str | None:
    """Write one HTML notice; None, else why not."""
    try:
        out.write_text(html, encoding="utf-8")
    except (OSError, ValueError) as error:
        return str(error)
    return None


def _write(html: str, out: Path, decided_at: datetime) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".pdf":
        notices.notice_pdf(html, out, decided_at)
    else:
        out.write_text(html, encoding="utf-8")


def _purge(store: DecisionStore, args: argparse.Namespace, tool: ToolSettings) -> int:
    months = args.months or tool.retention_months
    override = None
    if args.override:
        override = {"reason": args.override, "accepted_by": args.accepted_by or getpass.getuser()}
    elif args.accepted_by:
        raise RecordError("--accepted-by goes with --override (the reason for a retention shorter than the legal minimum)")
    count = purge(store, months, dry_run=args.dry_run, override=override,
                  review_months=tool.review_retention_months)
    print(f"{'would purge' if args.dry_run else 'purged'} {count} decisions made before "
          f"{retention_limit(months):%Y-%m-%d %H:%M} UTC ({months} months ago)")
    return 0


_COMMANDS = {"show": _show, "looked": _looked, "list": _list, "export": _export, "redecide": _redecide, "notice": _notice,
             "notices": _notices, "purge": _purge}

