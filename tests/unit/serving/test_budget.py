"""The callers' budgets, counted in a real SQLite file shared by processes."""
import multiprocessing
import time

import pytest

from loanxai.errors import CallerOverBudget
from loanxai.serving.auth import Caller
from loanxai.serving.budget import CallerBudget

OFFICER, AUDITOR = Caller("officer-7", "explain"), Caller("auditor-2", "audit")


def early_in_a_window(window_s):
    while time.time() % window_s > window_s / 4:
        time.sleep(0.05)


def test_explanations_past_the_budget_get_429_until_the_window_ends(tmp_path):
    budget = CallerBudget(tmp_path / "b.sqlite", explanations=2, model_rows=10**6, window_s=2)
    early_in_a_window(2)
    budget.admit(OFFICER)
    budget.admit(OFFICER)
    with pytest.raises(CallerOverBudget) as refused:
        budget.admit(OFFICER)
    assert refused.value.status_code == 429
    assert "2 explanations (LOAN_CALLER_EXPLANATIONS: 2)" in refused.value.message
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 2
    budget.admit(AUDITOR)  # each caller has its own
    assert budget.busiest_share() == 1.0
    time.sleep(int(refused.value.headers["Retry-After"]))
    budget.admit(OFFICER)


def test_classifier_rows_are_reserved_before_they_are_asked_and_never_pass_the_budget(tmp_path):
    budget = CallerBudget(tmp_path / "b.sqlite", explanations=100, model_rows=2000, window_s=3600)
    window = budget.admit(OFFICER)
    budget.reserve(OFFICER, window, 1500)
    assert budget.busiest_share() == pytest.approx(0.75)
    with pytest.raises(CallerOverBudget) as refused:  # 1500 + 600 would pass 2000: refused, nothing counted
        budget.reserve(OFFICER, window, 600)
    assert "would pass its budget of 2000 classifier rows (LOAN_CALLER_MODEL_ROWS; 1500 used)" in refused.value.message
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 3600
    budget.reserve(OFFICER, budget.admit(OFFICER), 500)  # exactly the budget: admitted and reserved
    with pytest.raises(CallerOverBudget) as refused:
        budget.admit(OFFICER)
    assert "2000 classifier rows (LOAN_CALLER_MODEL_ROWS: 2000)" in refused.value.message
    budget.reserve(AUDITOR, budget.admit(AUDITOR), 2000)  # each caller has its own


def _ask(path, n, answers):
    budget = CallerBudget(path, explanations=10, model_rows=10**6, window_s=3600)
    for _ in range(n):
        try:
            budget.admit(OFFICER)
            answers.put("ok")
        except CallerOverBudget:
            answers.put("429")


def test_the_budget_is_the_services_not_one_workers(tmp_path):
    path = tmp_path / "b.sqlite"
    CallerBudget(path, explanations=10, model_rows=10**6, window_s=3600)  # made before the workers fork
    answers = multiprocessing.get_context("fork").Queue()
    workers = [multiprocessing.get_context("fork").Process(target=_ask, args=(path, 8, answers)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    counted = [answers.get(timeout=5) for _ in range(24)]
    assert counted.count("ok") == 10 and counted.count("429") == 14
