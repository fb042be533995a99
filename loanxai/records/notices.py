"""Adverse action notices (12 CFR 1002.9, Appendix C's sample forms), rendered from the record.

A notice carries what the sample forms carry: the creditor's name and address, the date, the
action taken, up to four specific principal reasons with their codes, the ECOA notice and the
name and address of the federal agency that supervises the creditor (``LOAN_CREDITOR``,
``LOAN_AGENCY``). The reasons are those recorded with the decision, or, when the request did not
ask for them, those the deciding model gives again (:mod:`loanxai.records.redecide`, its
manifest checksum checked): the same record always gives the same document. A reason never
names a prohibited basis (age only under the elderly rule, below the elderly age): a record
that would is refused. HTML by Jinja2, PDF by WeasyPrint.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from loanxai.config import ToolSettings
from loanxai.core.schema import FeatureSchema
from loanxai.errors import RecordError, SettingError
from loanxai.records.queries import utc
from loanxai.records.redecide import Redecider

__all__ = ["MAX_NOTICE_REASONS", "NOTICE_FORMATS", "Letterhead", "notice_file_name", "notice_html", "notice_pdf",
           "notice_reasons", "render_notices"]

#: more than four reasons is "not likely to be helpful" (the commentary to 1002.9(b)(2))
MAX_NOTICE_REASONS = 4
#: what a notice is rendered as, by the output file's suffix
NOTICE_FORMATS = (".html", ".pdf")
#: what the notice says was asked for (the record holds an application id, not the product)
CREDIT = "the loan you applied for"
#: the longest file name a notice gets before its id is cut and a hash of it added (file systems take 255 bytes)
_MAX_NAME = 200

_TEMPLATES = Environment(loader=PackageLoader("loanxai.records", "templates"), autoescape=select_autoescape(),
                         undefined=StrictUndefined, keep_trailing_newline=True)


@dataclass(frozen=True)
class Letterhead:
    """Who sends the notice and who supervises them: lines of name and address each."""

    creditor: str
    agency: str

    @classmethod
    def from_settings(cls, settings: ToolSettings | None = None) -> Letterhead:
        """From ``LOAN_CREDITOR`` and ``LOAN_AGENCY`` (lines separated by ``|``); both are required."""
        settings = settings or ToolSettings.from_env()
        missing = [name for name, value in (("LOAN_CREDITOR", settings.creditor), ("LOAN_AGENCY", settings.agency))
                   if not value]
        if missing:
            raise SettingError(f"a notice needs the creditor's and the supervising agency's names and addresses: set "
                               f"{' and '.join(missing)} (lines separated by '|')")
        return cls(*("\n".join(line.strip() for line in value.split("|")) for value in (settings.creditor,
                                                                                        settings.agency)))


def notice_reasons(record: Mapping[str, Any], explained: Mapping[str, Any], schema: FeatureSchema,
                   titles: Mapping[str, str]) -> list[dict[str, str]]:
    """The notice's reasons for a rejected ``record``, from its reasons' JSON form ``explained``:
    up to four, each a sentence and its code. Refuses an approval, a rejection with no reason,
    and a reason on a prohibited basis."""
    if record["decision"] != "rejected":
        raise RecordError(f"application {record['application_id']} was {record['decision']}: no adverse action notice")
    reasons = list(explained["reasons"])[:MAX_NOTICE_REASONS]
    if not reasons:
        raise RecordError(f"application {record['application_id']}: the model gives no principal reason to state")
    for reason in reasons:
        _check_not_basis(record, reason, schema)
    return [{"sentence": f"{_capitalized(titles.get(r['feature']) or r['feature'])}: {_shown(r['value'])}",
             "code": r["code"]} for r in reasons]


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


def _shown(value: Any) -> str:
    return "not given" if value is None else str(value)


def notice_html(record: Mapping[str, Any], reasons: Sequence[Mapping[str, str]], letterhead: Letterhead) -> str:
    """The notice of a rejected ``record`` with its :func:`notice_reasons`, as an HTML page."""
    decided = utc(record["decided_at"])
    return _TEMPLATES.get_template("notice.html").render(
        creditor=letterhead.creditor, agency=letterhead.agency, date=f"{decided:%B} {decided.day}, {decided.year}",
        application_id=record["application_id"], credit=CREDIT, reasons=reasons, request_id=record["request_id"],
        row=record["row"], model_version=record["model_version"], manifest_sha256=record["manifest_sha256"])


def notice_pdf(html: str, out: Path, decided_at: datetime) -> None:
    """Render a notice's HTML to a PDF file (WeasyPrint: needs Debian's pango), the same bytes
    for the same notice: the embedded fonts' timestamps are the decision's time."""
    from weasyprint import HTML  # only the records command renders PDFs; the services never import it

    # fontTools stamps each font subset with the time (reproducible builds' variable: another time)
    os.environ["SOURCE_DATE_EPOCH"] = str(int(utc(decided_at).timestamp()))
    HTML(string=html).write_pdf(out)


def render_notices(records: Sequence[Mapping[str, Any]], redecider: Redecider,
                   letterhead: Letterhead) -> list[str | RecordError]:
    """The HTML notice of each rejected record, or the :class:`~loanxai.errors.RecordError`
    refusing it (decided by another model than ``redecider``'s, an approval, a reason on a
    prohibited basis): one bad record never stops the others. Reasons the records lack are given
    again, in one batch."""
    refused: dict[int, RecordError] = {}
    for i, record in enumerate(records):
        try:
            redecider.check(record)
        except RecordError as error:
            refused[i] = error
    unexplained = [r for i, r in enumerate(records) if r["reasons"] is None and i not in refused]
    again = iter(redecider.decide_many(unexplained) if unexplained else ())
    schema, titles = redecider.schema, redecider.manifest.dataset.titles
    pages: list[str | RecordError] = []
    for i, record in enumerate(records):
        if i in refused:
            pages.append(refused[i])
            continue
        explained = record["reasons"] or next(again).reasons
        try:
            pages.append(notice_html(record, notice_reasons(record, explained, schema, titles), letterhead))
        except RecordError as error:
            pages.append(error)
    return pages


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
