"""Text that reaches the record, and text that leaves it: checked on the way in, made harmless on the way out.

On the way in (:func:`check_text`, :func:`check_entered`), at the boundary, before anything is
batched or written: an identifier (an application id, a request id, a token's subject) is one line
of valid Unicode without control characters, of bounded length; an application's values as
entered are numbers, strings or nulls of bounded size. A refusal is an
:class:`~loanxai.errors.InputError` naming the field: a lone surrogate, a NUL or a 500 KB
string never reaches a commit group, where it would fail the requests committed with it.

On the way out, text from the record may be anything a caller once sent: :func:`printable`
escapes what a terminal would obey (escape sequences, carriage returns that forge lines) and
:func:`spreadsheet_cell` neutralises what a spreadsheet would run (a cell starting ``=``).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from loanxai.errors import InputError

__all__ = ["MAX_VALUE_CHARACTERS", "check_entered", "check_text", "printable", "spreadsheet_cell"]

#: the longest string an application's value as entered may be (the record keeps it as entered)
MAX_VALUE_CHARACTERS = 1000
#: the largest integer an application's value as entered may be, in bits (a larger one is not a value of an application)
MAX_INTEGER_BITS = 64

# C0 and C1 controls, DEL, the line and paragraph separators, the bidirectional overrides and
# isolates (text that reads differently than it is), the byte order mark, lone surrogates
# (not text: they cannot be encoded)
_NOT_IN_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
# the same, but tabs and line breaks are text in a paragraph
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
# what a spreadsheet reads as a formula, or a cell break, at a cell's start (OWASP: CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def check_text(value: Any, field: str, max_characters: int, lines: bool = False) -> str:
    """``value`` if it is text the record may hold; an :class:`~loanxai.errors.InputError` naming
    ``field`` otherwise.

    Text is a str of 1 to ``max_characters`` characters of valid Unicode, without control
    characters (``lines``: tabs and line breaks allowed, as in a paragraph), line separators or
    bidirectional overrides.
    """
    if not isinstance(value, str) or not 0 < len(value) <= max_characters:
        raise InputError(f"{field} must be a string of 1 to {max_characters} characters")
    bad = (_NOT_IN_TEXT if lines else _NOT_IN_A_LINE).search(value)
    if bad is not None:
        raise InputError(f"{field} holds the character U+{ord(bad.group()):04X} at position {bad.start()}: "
                         + ("a lone surrogate is not text" if 0xD800 <= ord(bad.group()) <= 0xDFFF
                            else "control and formatting characters are not accepted"))
    return value


def check_entered(rows: Sequence[Any], names: Sequence[str] | None = None) -> None:
    """Check applications as entered, before they are recorded: each value a finite number (an
    integer of at most :data:`MAX_INTEGER_BITS` bits, signed or not), a boolean, null, or a string
    of at most :data:`MAX_VALUE_CHARACTERS` characters of text (tabs allowed); each name text.
    ``rows``: objects of name -> value, or lists of values (``names``: their columns' names, for
    messages)."""
    if names:
        for name in names:
            if isinstance(name, str):
                check_text(name, "a column name", MAX_VALUE_CHARACTERS)
    checked: set[Any] = set()  # the rows of a request repeat their names: each is checked once, where it first comes
    for i, row in enumerate(rows):
        named = isinstance(row, Mapping)
        for name, value in row.items() if named else zip(names or range(len(row)), row):
            if named and name not in checked:
                check_text(name, f"the column name in row {i}", MAX_VALUE_CHARACTERS)
                checked.add(name)
            if value is None or isinstance(value, bool):
                continue
            # the message's place is written only for a value refused: most are accepted
            if isinstance(value, float):
                if not math.isfinite(value):  # Python's JSON reads NaN and Infinity; JSON has no such number
                    raise InputError(f"{_place(i, name)}: a number must be finite, not {value!r}")
            elif isinstance(value, int):
                if not -(2 ** (MAX_INTEGER_BITS - 1)) <= value < 2**MAX_INTEGER_BITS:
                    raise InputError(f"{_place(i, name)}: the integer has more than {MAX_INTEGER_BITS} bits")
            elif isinstance(value, str):
                if value and (len(value) > MAX_VALUE_CHARACTERS or _NOT_IN_TEXT.search(value)):
                    check_text(value, _place(i, name), MAX_VALUE_CHARACTERS, lines=True)
            else:
                raise InputError(f"{_place(i, name)}: a value must be a number, a string, true, false or null, "
                                 f"not {type(value).__name__}")


def _place(row: int, name: Any) -> str:
    return f"row {row}, column {name!r}" if isinstance(name, str) else f"row {row}, column {name}"


def printable(text: str) -> str:
    r"""``text`` with every control or formatting character a terminal would obey escaped (the
    escape character as ``\x1b``, a carriage return as ``\r``): one line, as it was, made visible."""
    return _NOT_IN_A_LINE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape", "backslashreplace").decode("ascii")


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell's value that a spreadsheet shows and never runs: a string starting with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``; the rest as it is."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
