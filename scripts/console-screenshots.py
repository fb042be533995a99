#!/usr/bin/env python
"""The docs' pictures of the reviewer console: its queue, a review, an application, the monitoring
and the models pages, taken by Debian's chromium (driven by Playwright) from the real console over
a record of its own.

It starts the classifier and the console on free loopback ports (LOAN_AUTH=off, a record in a
temporary folder), sends the first 600 held-out applications, decides two rejected applications,
contests them (one with a corrected input), and writes docs/images/console-*.png. Run by hand
after `make train`; nothing here runs in CI (the browser tests do: tests/integration/test_console_pages.py).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

from loanxai.artifacts import CLASSIFIER_DIR, REPO_ROOT
from loanxai.data.description import DEFAULT_DESCRIPTION, LABEL, load_description
from loanxai.ops.replay import applications, held_out_predictions, send
from loanxai.ops.services import classifier_service, console_service, free_port

IMAGES = REPO_ROOT / "docs" / "images"
#: held-out applications sent first, so that the monitoring page has figures
HELD_OUT = 600
#: the census example with the occupation and hours of a clear rejection
APPLICATION = dict(load_description(DEFAULT_DESCRIPTION).example) | {"occupation": "Sales", "hours-per-week": 40}


def main() -> int:
    """Take the pictures; the exit status."""
    chromium = shutil.which("chromium")
    if chromium is None or not (CLASSIFIER_DIR / "manifest.json").exists():
        sys.stderr.write("error: needs Debian's chromium and a trained model (make train)\n")
        return 1
    folder = Path(tempfile.mkdtemp(prefix="loanxai-console-shots-"))
    env = {"LOAN_RECORDS_URL": f"sqlite:///{folder}/decisions.sqlite", "LOAN_AUTH": "off", "LOAN_CREDITOR":
           "Example Savings Bank|1 Main Street|Springfield", "LOAN_CREDITOR_PHONE": "555-0100",
           "LOAN_AGENCY": "Consumer Financial Protection Bureau|1700 G Street NW|Washington, DC 20552"}
    classifier = classifier_service(free_port(), free_port(), env)
    console = console_service(free_port(), env)
    try:
        classifier.start(folder / "classifier.log")
        classifier.wait_ready()
        console.start(folder / "console.log")
        console.wait_ready()
        schema, test, _ = held_out_predictions(CLASSIFIER_DIR)
        sent = test.head(HELD_OUT)
        send(classifier.url, applications(schema, sent), sent[LABEL].astype(bool).tolist())
        for application_id, grounds, corrections in (
                ("A-20261206-0412", "I work 60 hours a week, not 40.", {"hours-per-week": 60}),
                ("A-20261206-0415", "Please have a person look at my application.", None)):
            answer = requests.post(classifier.predictions_url, timeout=30, json={
                "jsonData": [APPLICATION], "meta": {"tags": {"application_ids": [application_id], "reasons": True}}})
            answer.raise_for_status()
            body = {"application_id": application_id, "grounds": grounds,
                    **({"corrections": corrections} if corrections else {})}
            requests.post(console.url + "/api/v1/reviews", json=body, timeout=30).raise_for_status()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 420})
            page.goto(console.url + "/")
            page.screenshot(path=str(IMAGES / "console-queue.png"))
            page.set_viewport_size({"width": 1100, "height": 1500})
            page.goto(console.url + "/reviews/1")
            page.screenshot(path=str(IMAGES / "console-review.png"), full_page=True)
            for name, path in (("application", "/decisions?application_id=A-20261206-0412"),
                               ("monitoring", "/monitoring"), ("models", "/models")):
                page.goto(console.url + path)
                page.screenshot(path=str(IMAGES / f"console-{name}.png"), full_page=True)
            browser.close()
    finally:
        console.stop()
        classifier.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"wrote the console's pictures in {IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
