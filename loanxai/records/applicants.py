"""What a notice says of the applicant that the record does not keep, from the lender's file.

The decision record holds what the model decided on and the lender's application id: not the
applicant's name and address, the credit asked for, or a bureau score the lender used beside
the model (names and addresses stay in the lender's systems; the record keeps what decided).
Appendix C's forms carry them, and FCRA 615(a) adds a score's disclosure when a decision used
one, so ``records notice(s) --applicants FILE`` reads them from a CSV the lender exports, one
row per application (every column but ``application_id`` optional, an empty cell meaning not
given):

- ``name``, ``address`` (lines separated by ``|``): the applicant block;
- ``credit``: the credit applied for, in the lender's words ("Personal loan, $5,000");
- ``score``, ``score_low``, ``score_high``, ``score_date`` (ISO 8601), ``score_source`` (the
  consumer reporting agency's name, address and telephone, lines separated by ``|``) and
  ``score_factors`` (the key factors that adversely affected the score, most important first,
  separated by ``|``, one to four: FCRA 609(f)(1)(C)): all of them, or none.

Each cell is taken without the spaces around it. A file that does not fit stops the command
with a message naming the file and, where they apply, the line and the column; nothing is
guessed.
"""
from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from loanxai.core.text import printable
from loanxai.errors import DataError

__all__ = ["APPLICANT_COLUMNS", "MAX_SCORE_FACTORS", "SCORE_COLUMNS", "Applicant", "CreditScore", "lines",
           "read_applicants"]

#: a score's columns: given together or not at all
SCORE_COLUMNS = ("score", "score_low", "score_high", "score_date", "score_source", "score_factors")
#: every column the file may have
APPLICANT_COLUMNS = ("application_id", "name", "address", "credit", *SCORE_COLUMNS)
#: key factors a score disclosure names at most (FCRA 609(f)(1)(C))
MAX_SCORE_FACTORS = 4


@dataclass(frozen=True)
class CreditScore:
    """A credit score the lender used (FCRA 615(a) and 609(f)): the score, the lowest and
    highest scores of its model, the day it was created, who supplied it (name, address and
    telephone, one line each) and the key factors that adversely affected it."""

    value: int
    low: int
    high: int
    created: date
    source: tuple[str, ...]
    factors: tuple[str, ...]


@dataclass(frozen=True)
class Applicant:
    """What a notice names of one application beyond the record: each part None when not given."""

    name: str | None = None
    address: tuple[str, ...] = ()
    credit: str | None = None
    score: CreditScore | None = None


def read_applicants(path: Path) -> dict[str, Applicant]:
    """The applicants of ``path`` (see the module), by application id."""
    try:
        # utf-8-sig: a spreadsheet's "CSV UTF-8" starts with a byte-order mark, which is not a column's name
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, strict=True)
            columns = reader.fieldnames or []
            _check_columns(path, columns)
            applicants: dict[str, Applicant] = {}
            for row in reader:
                line = reader.line_num
                if None in row or None in row.values():
                    cells = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or ())
                    raise DataError(f"{path}, line {line}: {cells} cell{'s' if cells != 1 else ''} where the header "
                                    f"has {len(columns)} columns")
                application_id = row["application_id"]
                if not application_id.strip():
                    raise DataError(f"{path}, line {line}: application_id is empty")
                if application_id in applicants:
                    raise DataError(f"{path}, line {line}: application {printable(application_id)} is given twice")
                applicants[application_id] = _applicant(row, f"{path}, line {line}")
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not a readable UTF-8 CSV file ({error})") from None
    return applicants


def _check_columns(path: Path, columns: list[str]) -> None:
    unknown = [c for c in columns if c not in APPLICANT_COLUMNS]
    if unknown:
        raise DataError(f"{path}: unknown column {printable(unknown[0])!r}; the columns are {', '.join(APPLICANT_COLUMNS)}")
    if "application_id" not in columns:
        raise DataError(f"{path}: no application_id column (the header is the first line)")
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise DataError(f"{path}: column {twice[0]!r} is in the header twice")


def _applicant(row: Mapping[str, str], where: str) -> Applicant:
    given = {column: value.strip() for column, value in row.items() if value.strip()}
    return Applicant(name=given.get("name"), address=lines(given.get("address", "")), credit=given.get("credit"),
                     score=_score(given, where))


def _score(given: Mapping[str, str], where: str) -> CreditScore | None:
    present = [c for c in SCORE_COLUMNS if c in given]
    if not present:
        return None
    missing = [c for c in SCORE_COLUMNS if c not in given]
    if missing:
        raise DataError(f"{where}: a credit score is disclosed with all of {', '.join(SCORE_COLUMNS)}; "
                        f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} empty")
    value, low, high = (_integer(given[c], c, where) for c in ("score", "score_low", "score_high"))
    if not low <= value <= high:
        raise DataError(f"{where}: score {value} is outside its range, score_low {low} to score_high {high}")
    try:
        created = date.fromisoformat(given["score_date"])
    except ValueError:
        raise DataError(f"{where}: score_date {printable(given['score_date'])!r} is not a date (YYYY-MM-DD)") from None
    factors, source = lines(given["score_factors"]), lines(given["score_source"])
    if not (factors and source):
        raise DataError(f"{where}: {'score_factors' if not factors else 'score_source'} holds only separators")
    if len(factors) > MAX_SCORE_FACTORS:
        raise DataError(f"{where}: score_factors names {len(factors)} factors; a disclosure names at most "
                        f"{MAX_SCORE_FACTORS} (FCRA 609(f)(1)(C))")
    return CreditScore(value, low, high, created, source, factors)


def _integer(text: str, column: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(f"{where}: {column} {printable(text)!r} is not a whole number") from None


def lines(text: str) -> tuple[str, ...]:
    """The lines of ``text`` separated by ``|``, each stripped; empty ones left out."""
    return tuple(line.strip() for line in text.split("|") if line.strip())
