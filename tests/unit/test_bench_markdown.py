"""The bench's tables render any results file, including one written before a stage was renamed."""
from bench.stages import OTHER, STAGES, profile_markdown


def test_a_profile_renders_with_the_stages_its_results_name():
    renamed = "record: a stage's name of an earlier version"
    shares = {renamed: 0.25, **{stage: 0.5 / len(STAGES) for stage in list(STAGES)[1:]}, OTHER: 0.25}
    cases = [{"path": "fast path", "rows": 100, "database": "sqlite", "requests_per_s": 290.0, "failed": None,
              "shares": shares},
             {"path": "fast path", "rows": 1, "database": "sqlite", "requests_per_s": 0, "failed": "SIGSEGV"}]
    lines = profile_markdown(cases)
    assert f"| {renamed} | 25% | py-spy failed |" in lines
    assert lines[-2] == f"| {OTHER} | 25% | py-spy failed |"  # the rest, last
    assert not any(list(STAGES)[0] in line for line in lines)  # a stage the results do not name is not shown
