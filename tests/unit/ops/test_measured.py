"""The performance page and every page quoting ``make bench`` or ``make replay`` agree with the results kept beside them."""
import shutil

from bench.tables import markdown
from loanxai.artifacts import DOCS_DIR, REPO_ROOT
from loanxai.ops.measured import MEASURED, REPLAYED, read_replay, read_results
from loanxai.ops.quoted import disagreements
from loanxai.ops.reference import PERFORMANCE_RESULTS, RESULTS_PAGES_DIR, render

README = REPO_ROOT / "README.md"


def test_the_performance_page_shows_the_results_kept_beside_it():
    results = read_results()
    page = RESULTS_PAGES_DIR / "performance.md"
    assert render(page.name, RESULTS_PAGES_DIR, {"bench": lambda: markdown(results)}) == page.read_text(), (
        f"{page} differs from {PERFORMANCE_RESULTS.name}: `make bench` writes both")
    assert results["targets"]  # the run the page shows measured every target


def test_every_figure_quoted_from_the_bench_is_what_its_results_say(tmp_path):
    results = read_results()
    origin = f"make bench of {results['date']}"
    assert disagreements(MEASURED, results, origin, DOCS_DIR, README) == []
    # the check can fail: a page whose figure drifted is named, with what it should say
    quoted = MEASURED[0]
    figures = quoted.read(results)
    said, drifted = (quoted.words.format(*f) for f in (figures, [x + 1 for x in figures]))
    shutil.copytree(DOCS_DIR, tmp_path / "docs")
    shutil.copy(README, tmp_path / "README.md")
    page = tmp_path / "README.md" if quoted.page == "README.md" else tmp_path / "docs" / quoted.page
    text = " ".join(page.read_text().split())
    assert said in text
    page.write_text(text.replace(said, drifted))
    [wrong] = disagreements(MEASURED, results, origin, tmp_path / "docs", tmp_path / "README.md")
    assert wrong == f"{quoted.page} should say {said!r} ({origin})"


def test_every_figure_quoted_from_the_replay_is_what_it_kept():
    replayed = read_replay()
    assert disagreements(REPLAYED, replayed, f"make replay of {replayed['date']}", DOCS_DIR, README) == []
