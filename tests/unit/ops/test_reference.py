"""The docs' reference pages say what the code says."""
import shutil

import pytest

from loanxai.ops import reference


def test_every_reference_page_is_what_the_code_gives():
    assert reference.stale_pages() == [], "a reference page differs from the code: run `make reference`"


def test_a_page_that_drifted_is_found(tmp_path, monkeypatch):
    shutil.copytree(reference.REFERENCE_DIR, tmp_path, dirs_exist_ok=True)
    page = tmp_path / "configuration.md"
    page.write_text(page.read_text().replace("| `LOAN_MAX_BATCH_ROWS` | `1000` |", "| `LOAN_MAX_BATCH_ROWS` | `500` |"))
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path)
    assert reference.stale_pages() == [page]


def test_a_page_missing_a_section_is_refused(tmp_path, monkeypatch):
    shutil.copytree(reference.REFERENCE_DIR, tmp_path, dirs_exist_ok=True)
    page = tmp_path / "errors.md"
    page.write_text(page.read_text().replace("<!-- generated: errors -->", ""))
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path)
    with pytest.raises(ValueError, match="generated sections"):
        reference.render("errors.md")


def test_every_setting_and_error_is_in_the_reference():
    from loanxai import errors
    from loanxai.config import ServiceSettings

    configuration = (reference.REFERENCE_DIR / "configuration.md").read_text()
    assert all(f"`{f.metadata['setting'].env}`" in configuration for f in ServiceSettings.__dataclass_fields__.values())
    assert all(f"`{name}`" in (reference.REFERENCE_DIR / "errors.md").read_text() for name in errors.__all__
               if name != "LoanError")


def test_the_replay_page_shows_what_the_replay_kept_beside_it():
    page = reference.RESULTS_PAGES_DIR / "replay.md"
    kept = reference.REPLAY_RESULTS
    assert reference.render(page.name, page.parent, {"replay": lambda: reference.replay_section(kept)}) \
        == page.read_text(), f"{page} differs from {kept.name}: `make replay` writes both"


def test_the_reliability_page_shows_the_figures_kept_beside_it():
    page = reference.RESULTS_PAGES_DIR / "reliability.md"
    kept = reference.RELIABILITY_RESULTS
    assert reference.render(page.name, page.parent, {"reliability": lambda: reference.reliability_section(kept)}) \
        == page.read_text(), f"{page} differs from {kept.name}: `make reliability` writes both"
