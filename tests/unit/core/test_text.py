"""Text on its way into the record is checked; on its way out of it, made harmless."""
import pytest

from loanxai.core.codecs import application_ids, read_decision_request, request_meta
from loanxai.core.schema import FeatureSchema
from loanxai.core.text import check_entered, check_text, printable, spreadsheet_cell
from loanxai.errors import InputError


@pytest.mark.parametrize("value, problem", [
    ("\ud800", "U\\+D800 at position 0: a lone surrogate is not text"),
    ("a\x00b", "U\\+0000 at position 1: control"),
    ("id\x1b[2J", "U\\+001B"),
    ("line\rforged", "U\\+000D"),
    ("a\u202eb", "U\\+202E"),
    ("x" * 129, "a string of 1 to 128 characters"),
    ("", "a string of 1 to 128 characters"),
    (7, "a string of 1 to 128 characters"),
])
def test_identifiers_that_are_not_one_line_of_text_are_refused_naming_the_field(value, problem):
    with pytest.raises(InputError, match=f"^the field (must|holds).*{problem}"):
        check_text(value, "the field", 128)


def test_text_may_be_any_language_and_a_paragraph_may_break_lines():
    assert check_text("Müller-Łódź 山田 🙂", "name", 128) == "Müller-Łódź 山田 🙂"
    assert check_text("my income\nis wrong\t(see letter)", "grounds", 1000, lines=True)
    with pytest.raises(InputError):
        check_text("my income\nis wrong", "id", 1000)


def test_ids_and_puids_in_messages_are_checked_at_the_boundary():
    with pytest.raises(InputError, match="'meta.tags.application_ids' item 1 holds the character U\\+D800"):
        application_ids({"meta": {"tags": {"application_ids": ["a", "\ud800"]}}}, 2)
    with pytest.raises(InputError, match="'meta.puid' holds the character U\\+0000"):
        request_meta({"meta": {"puid": "a\x00"}})
    assert request_meta({"meta": {"puid": ""}}) == {"puid": ""}  # empty: one is made up, as before


@pytest.mark.parametrize("rows, names, problem", [
    ([{"age": 30, "note": "x" * 1001}], None, "row 0, column 'note' must be a string of 1 to 1000"),
    ([{"age": 30, "note": "\x00"}], None, "row 0, column 'note' holds the character U\\+0000"),
    ([{"age": 30}, {"age": 2**70}], None, "row 1, column 'age': the integer has more than 64 bits"),
    ([{"age": -(2**63) - 1}], None, "row 0, column 'age': the integer has more than 64 bits"),
    ([{"age": float("nan")}], None, "row 0, column 'age': a number must be finite, not nan"),
    ([[float("-inf")]], ["age"], "row 0, column 'age': a number must be finite, not -inf"),
    ([{"age": {"nested": 1}}], None, "row 0, column 'age': a value must be a number, a string"),
    ([[1, "\ud800"]], ["age", "note"], "row 0, column 'note' holds the character U\\+D800"),
    ([[1, ["x"]]], None, "row 0, column 1: a value must be"),
    ([[1]], ["ag\x1be"], "a column name holds the character U\\+001B"),
    ([{"ag\x1be": 1}], None, "the column name in row 0 holds the character U\\+001B"),
    ([{"age": 1}, {"age": 2, "ag\x1be": 1}], None, "the column name in row 1 holds the character U\\+001B"),
])
def test_values_as_entered_are_bounded_and_text(rows, names, problem):
    with pytest.raises(InputError, match=problem):
        check_entered(rows, names)


def test_values_as_entered_pass_through_unchanged():
    schema = FeatureSchema(("age", "note"), {"note": ("line one\tand a tab", "other")})
    message = {"jsonData": [{"age": 52.0, "note": "line one\tand a tab"}, {"age": 41, "note": "other"}]}
    assert read_decision_request(message, schema, 10, 4).entered == message["jsonData"]


def test_printable_escapes_what_a_terminal_would_obey():
    assert printable("ok\x1b[31mred\rforged\u202e\ud800") == "ok\\x1b[31mred\\rforged\\u202e\\ud800"
    assert printable("Müller 山田") == "Müller 山田"


@pytest.mark.parametrize("cell, shown", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-1+2", "'-1+2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("plain", "plain"), (-1.5, -1.5), (None, None),
])
def test_spreadsheet_cells_never_run(cell, shown):
    assert spreadsheet_cell(cell) == shown
