"""Adverse action notices (12 CFR 1002.9, Appendix C's sample forms), rendered from the record.

A notice carries what the sample forms carry: the creditor's name, address and telephone
number, the date, the action taken, up to four specific principal reasons (each a sentence
saying which way the applicant's value differs from approved applicants', and its code), the
statement that a credit scoring system decided, the ECOA notice and the name and address of
the federal agency that supervises the creditor (``LOAN_CREDITOR``, ``LOAN_CREDITOR_PHONE``,
``LOAN_AGENCY``); and, from the lender's file when it is given
(:mod:`loanxai.records.applicants`), the applicant's name and address, the credit requested and
a credit score's disclosure (FCRA 615(a)). Internal references (the request, the model
version, the manifest checksum) stay in the record: the applicant's page names the application
only.

The reasons are those recorded with the decision, or, when the request did not ask for them,
those the deciding model gives again (:mod:`loanxai.records.redecide`, its manifest checksum
checked): the same record always gives the same document. A reason never names a prohibited
basis (age only under the elderly rule, below the elderly age): a record that would is
refused. HTML by Jinja2, PDF by WeasyPrint.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from loanxai.config import ToolSettings
from loanxai.core.schema import FeatureSchema
from loanxai.errors import RecordError, SettingError
from loanxai.records.applicants import Applicant, lines
from loanxai.records.queries import utc
from loanxai.records.redecide import Redecider

__all__ = ["MAX_NOTICE_REASONS", "NOTICE_FORMATS", "Letterhead", "action_notice", "applicant_of", "approval_html",
           "approved_averages", "notice_file_name", "notice_html", "notice_pdf", "notice_pdf_bytes", "notice_pdfs",
           "notice_reasons", "render_notices"]

#: more than four reasons is "not likely to be helpful" (the commentary to 1002.9(b)(2))
MAX_NOTICE_REASONS = 4
#: what a notice is rendered as, by the output file's suffix
NOTICE_FORMATS = (".html", ".pdf")
#: what the notice says was asked for (the record holds an application id, not the product)
CREDIT = "the loan you applied for"
#: notices a process of :func:`notice_pdfs` is handed at a time
PDF_CHUNK = 8
#: the longest file name a notice gets before its id is cut and a hash of it added (file systems take 255 bytes)
_MAX_NAME = 200

_PDF_LOCK = threading.Lock()
_TEMPLATES = Environment(loader=PackageLoader("loanxai.records", "templates"), autoescape=select_autoescape(),
                         undefined=StrictUndefined, keep_trailing_newline=True)


@dataclass(frozen=True)
class Letterhead:
    """Who sends the notice (name and address lines, a telephone number) and who supervises
    them (name and address lines)."""

    creditor: str
    phone: str
    agency: str

    @classmethod
    def from_settings(cls, settings: ToolSettings) -> Letterhead:
        """From ``LOAN_CREDITOR``, ``LOAN_CREDITOR_PHONE`` and ``LOAN_AGENCY`` (lines separated by
        ``|``); all are required."""
        given = {"LOAN_CREDITOR": settings.creditor, "LOAN_CREDITOR_PHONE": settings.creditor_phone,
                 "LOAN_AGENCY": settings.agency}
        missing = [name for name, value in given.items() if not value.strip()]
        if missing:
            listed = ", ".join(missing[:-1]) + (" and " if len(missing) > 1 else "") + missing[-1]
            raise SettingError(f"a notice needs the creditor's name, address and telephone number and the supervising "
                               f"agency's name and address: set {listed} (lines separated by '|')")
        return cls("\n".join(lines(settings.creditor)), settings.creditor_phone.strip(), "\n".join(lines(settings.agency)))


def approved_averages(schema: FeatureSchema, reference: np.ndarray) -> dict[str, float]:
    """Each numeric feature's average over the approved applicants the reasons are measured
    against (``reference``, encoded, shape (m, n_features)): what a notice compares the
    applicant's value with."""
    means = np.nanmean(np.asarray(reference, dtype=np.float64)[:, schema.numeric_indices], axis=0)
    return dict(zip(schema.numeric_features, means.tolist()))


def notice_reasons(record: Mapping[str, Any], explained: Mapping[str, Any], schema: FeatureSchema,
                   titles: Mapping[str, str], averages: Mapping[str, float]) -> list[dict[str, str]]:
    """The notice's reasons for a rejected ``record``, from its reasons' JSON form ``explained``:
    up to four, each a sentence and its code. A numeric value is compared with approved
    applicants' average (:func:`approved_averages`); a category is said to count against
    approval. Refuses an approval, a rejection with no reason, and a reason on a prohibited basis."""
    if record["decision"] != "rejected":
        raise RecordError(f"application {record['application_id']} was {record['decision']}: no adverse action notice")
    reasons = list(explained["reasons"])[:MAX_NOTICE_REASONS]
    if not reasons:
        raise RecordError(f"application {record['application_id']}: the model gives no principal reason to state")
    for reason in reasons:
        _check_not_basis(record, reason, schema)
    return [{"sentence": _sentence(_capitalized(titles.get(r["feature"]) or r["feature"]), r["value"],
                                   averages.get(r["feature"])),
             "code": r["code"]} for r in reasons]


def _sentence(title: str, value: Any, average: float | None) -> str:
    """A reason in words: which way the applicant differs from approved applicants."""
    if value is None:
        return f"{title}: not given"
    if average is None:
        return f"{title}: {value}, which counted against approval compared with approved applicants"
    if value == average:
        return f"{title}: {value}"
    side = "lower" if value < average else "higher"
    return f"{title}: {value}, {side} than the average of approved applicants ({_number(average)})"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:,.1f}"


def _check_not_basis(record: Mapping[str, Any], reason: Mapping[str, Any], schema: FeatureSchema) -> None:
    feature = reason["feature"]
    if feature not in schema.basis_inputs and feature not in schema.protected:
        return
    elderly_age = schema.elderly.get(feature)
    if elderly_age is not None and reason["value"] is not None and reason["value"] < elderly_age:
        return
    raise RecordError(f"application {record['application_id']}: a reason names {feature!r}, a prohibited basis: "
                      "no notice is rendered from this record")


def _capitalized(title: str) -> str:
    return title[:1].upper() + title[1:]


def notice_html(record: Mapping[str, Any], reasons: Sequence[Mapping[str, str]], letterhead: Letterhead,
                applicant: Applicant | None = None) -> str:
    """The notice of a rejected ``record`` with its :func:`notice_reasons`, as an HTML page, with
    what the lender's file says of its ``applicant`` (:mod:`loanxai.records.applicants`)."""
    return _page("notice.html", record, letterhead, applicant, reasons=reasons,
                 reviewed=record.get("review_id") is not None)


def approval_html(record: Mapping[str, Any], letterhead: Letterhead, applicant: Applicant | None = None) -> str:
    """The notice of an approval a review made (a reversed rejection: a new action), as an HTML
    page; refused for any other record (an approval the classifier answered needs none here)."""
    if record["decision"] != "approved" or record.get("review_id") is None:
        raise RecordError(f"application {record['application_id']}: only an approval made in a review gets a notice "
                          "of approval after review")
    return _page("approval.html", record, letterhead, applicant)


def _page(template: str, record: Mapping[str, Any], letterhead: Letterhead, applicant: Applicant | None,
          **values: Any) -> str:
    decided = utc(record["decided_at"])
    applicant = applicant or Applicant()
    return _TEMPLATES.get_template(template).render(
        creditor=letterhead.creditor, phone=letterhead.phone, agency=letterhead.agency,
        date=f"{decided:%B} {decided.day}, {decided.year}", application_id=record["application_id"], credit=CREDIT,
        applicant=applicant, applicant_lines=[line for line in (applicant.name, *applicant.address) if line], **values)


def notice_pdf(html: str, out: Path, decided_at: datetime) -> None:
    """Render a notice's HTML to a PDF file (:func:`notice_pdf_bytes`)."""
    out.write_bytes(notice_pdf_bytes(html, decided_at))


def notice_pdf_bytes(html: str, decided_at: datetime) -> bytes:
    """A notice's HTML as a PDF (WeasyPrint: needs Debian's pango), the same bytes for the same
    notice: the embedded fonts' timestamps are the decision's time."""
    from weasyprint import HTML  # only the records command and the console render PDFs; the services never do

    # fontTools stamps each font subset with the time (reproducible builds' variable: another time);
    # the variable is the process's, so one thread at a time sets it and renders
    with _PDF_LOCK:
        os.environ["SOURCE_DATE_EPOCH"] = str(int(utc(decided_at).timestamp()))
        return HTML(string=html).write_pdf()


def notice_pdfs(jobs: Sequence[tuple[str, Path, datetime]], processes: int | None = None) -> Iterator[str | None]:
    """:func:`notice_pdf` of many notices (``(html, out, decided_at)`` each, ``out``'s folder
    made), in ``processes`` processes (default: one per core); in order, for each, None once
    written, else why it was not. A process pays WeasyPrint's start (about half a second: its
    modules and the fonts) once for all its notices."""
    if processes == 1 or len(jobs) < 2:
        yield from map(_pdf_job, jobs)
        return
    with ProcessPoolExecutor(processes) as pool:
        yield from pool.map(_pdf_job, jobs, chunksize=PDF_CHUNK)


def _pdf_job(job: tuple[str, Path, datetime]) -> str | None:
    html, out, decided_at = job
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        notice_pdf(html, out, decided_at)
    except (OSError, ValueError) as error:
        return str(error)
    return None


def render_notices(records: Sequence[Mapping[str, Any]], redecider: Redecider, letterhead: Letterhead,
                   applicants: Mapping[str, Applicant] | None = None) -> list[str | RecordError]:
    """The HTML notice of each rejected record, or the :class:`~loanxai.errors.RecordError`
    refusing it (decided by another model than ``redecider``'s, an approval, a reason on a
    prohibited basis, an application missing from ``applicants`` when they are given): one bad
    record never stops the others. Reasons the records lack are given again, in one batch."""
    refused: dict[int, RecordError] = {}
    for i, record in enumerate(records):
        try:
            redecider.check(record)
            applicant_of(record, applicants)
        except RecordError as error:
            refused[i] = error
    unexplained = [r for i, r in enumerate(records) if r["reasons"] is None and i not in refused]
    again = iter(redecider.decide_many(unexplained) if unexplained else ())
    schema, titles = redecider.schema, redecider.manifest.dataset.titles
    averages = approved_averages(schema, redecider.manifest.reasons["reference"])
    pages: list[str | RecordError] = []
    for i, record in enumerate(records):
        if i in refused:
            pages.append(refused[i])
            continue
        explained = record["reasons"] or next(again).reasons
        try:
            pages.append(notice_html(record, notice_reasons(record, explained, schema, titles, averages), letterhead,
                                     (applicants or {}).get(record["application_id"])))
        except RecordError as error:
            pages.append(error)
    return pages


def action_notice(found: Sequence[Mapping[str, Any]], redecider_of: Callable[[Mapping[str, Any]], Redecider],
                  letterhead: Letterhead, applicants: Mapping[str, Applicant] | None = None) -> tuple[Mapping[str, Any], str]:
    """The notice of an application's newest action, from its decisions ``found`` (oldest first),
    and the decision it tells of: after a reversal in review, the approval's notice (a new
    action); otherwise the newest rejection's notice, reasons by the model ``redecider_of`` gives
    for it. :class:`~loanxai.errors.RecordError` when no decision calls for a notice."""
    if found and found[-1]["decision"] == "approved" and found[-1]["review_id"] is not None:
        return found[-1], approval_html(found[-1], letterhead, applicant_of(found[-1], applicants))
    rejected = [r for r in found if r["decision"] == "rejected"]
    if not rejected:
        raise RecordError("no rejected application, so no adverse action notice")
    [html] = render_notices(rejected[-1:], redecider_of(rejected[-1]), letterhead, applicants)
    if isinstance(html, RecordError):
        raise html
    return rejected[-1], html


def applicant_of(record: Mapping[str, Any], applicants: Mapping[str, Applicant] | None) -> Applicant | None:
    """The applicant of ``record`` in the lender's file (None: no file given); refused when the file lacks it."""
    if applicants is None:
        return None
    if record["application_id"] not in applicants:
        raise RecordError(f"application {record['application_id']} is not in the applicants' file: no notice without "
                          "its applicant")
    return applicants[record["application_id"]]


def notice_file_name(application_id: str, suffix: str) -> str:
    """The file a notice of ``application_id`` is written to, inside its folder whatever the id
    holds: the id percent-encoded (letters, digits, ``-``, ``_``, ``.`` and ``~`` as they are; a
    leading ``.`` encoded too), cut and followed by a hash of the whole id when long, then ``suffix``."""
    name = quote(application_id, safe="", errors="surrogatepass")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name) > _MAX_NAME:
        digest = hashlib.sha256(application_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        name = f"{name[:_MAX_NAME - 17]}-{digest}"
    return name + suffix
