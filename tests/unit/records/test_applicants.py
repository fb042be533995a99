"""The applicants' file a notice reads what the record does not keep from: read exactly as it
is, or refused naming the file, the line and the column."""
from datetime import date

import pytest

from loanxai.errors import DataError
from loanxai.records.applicants import Applicant, CreditScore, read_applicants

HEADER = "application_id,name,address,credit,score,score_low,score_high,score_date,score_source,score_factors\n"
SCORED = ('8812,Jane Q. Public,12 Elm Street|Springfield  IL 62701,"Personal loan, $5,000",612,300,850,2026-11-30,'
          'Example Credit Bureau|PO Box 1|Atlanta GA 30301|(800) 555-0199,Too many accounts with balances|'
          'Length of credit history\n')


def written(tmp_path, text, encoding="utf-8"):
    path = tmp_path / "applicants.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_each_application_with_what_its_row_gives(tmp_path):
    path = written(tmp_path, HEADER + SCORED + "8813,,,,,,,,,\n9000,John Roe,,Credit card,,,,,,\n")
    applicants = read_applicants(path)
    assert applicants["8812"] == Applicant(
        name="Jane Q. Public", address=("12 Elm Street", "Springfield  IL 62701"), credit="Personal loan, $5,000",
        score=CreditScore(612, 300, 850, date(2026, 11, 30),
                          ("Example Credit Bureau", "PO Box 1", "Atlanta GA 30301", "(800) 555-0199"),
                          ("Too many accounts with balances", "Length of credit history")))
    assert applicants["8813"] == Applicant()  # every cell empty: nothing given, nothing guessed
    assert applicants["9000"] == Applicant(name="John Roe", credit="Credit card")
    only_ids = written(tmp_path, "application_id\n1\n2\n")  # every other column is optional
    assert read_applicants(only_ids) == {"1": Applicant(), "2": Applicant()}
    # a spreadsheet's "CSV UTF-8": a byte-order mark before the header, not part of its first column's name
    assert read_applicants(written(tmp_path, "\ufeffapplication_id,name\n1,Jane\n")) == {"1": Applicant(name="Jane")}


@pytest.mark.parametrize(("text", "message"), [
    ("application_id,phone\n1,555\n", "unknown column 'phone'; the columns are application_id, name"),
    ("name\nJane\n", "no application_id column"),
    ("application_id,name,name\n1,a,b\n", "column 'name' is in the header twice"),
    ("application_id,name\n1,Jane\n1,John\n", "line 3: application 1 is given twice"),
    ("application_id,name\n ,Jane\n", "line 2: application_id is empty"),
    ("application_id,name\n1,Jane,extra\n", "line 2: 3 cells where the header has 2 columns"),
    ("application_id,name\n1\n", "line 2: 1 cell where the header has 2 columns"),
    (HEADER + "1,,,,612,300,850,,,\n", "line 2: a credit score is disclosed with all of score, score_low, score_high, "
                                       "score_date, score_source, score_factors; score_date, score_source, "
                                       "score_factors are empty"),
    (HEADER + "1,,,,900,300,850,2026-11-30,Bureau,Factor\n", "line 2: score 900 is outside its range, score_low 300"),
    (HEADER + "1,,,,6l2,300,850,2026-11-30,Bureau,Factor\n", "line 2: score '6l2' is not a whole number"),
    (HEADER + "1,,,,612,300,850,30/11/2026,Bureau,Factor\n", "line 2: score_date '30/11/2026' is not a date"),
    (HEADER + "1,,,,612,300,850,2026-11-30,Bureau,A|B|C|D|E\n", "score_factors names 5 factors; a disclosure names "
                                                                 "at most 4 (FCRA 609(f)(1)(C))"),
    (HEADER + "1,,,,612,300,850,2026-11-30,Bureau,| |\n", "line 2: score_factors holds only separators"),
    (HEADER + "1,,,,612,300,850,2026-11-30,|,Factor\n", "line 2: score_source holds only separators"),
])
def test_a_file_that_does_not_fit_is_refused_naming_where(tmp_path, text, message):
    path = written(tmp_path, text)
    with pytest.raises(DataError, match="^" + str(path).replace(".", r"\.")) as refused:
        read_applicants(path)
    assert message in refused.value.message


def test_a_file_that_is_not_utf8_text_or_not_there_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a readable UTF-8 CSV file"):
        read_applicants(written(tmp_path, "application_id,name\n1,Ren\xe9e\n", encoding="latin-1"))
    with pytest.raises(DataError, match="not a readable UTF-8 CSV file"):
        read_applicants(tmp_path / "missing.csv")
