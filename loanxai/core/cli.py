"""What every command shares: one help formatter and one way of logging.

Defaults are shown after each option's help, paths under the checkout relative to it (the
same help, and the same generated command reference, on every machine). Our lines are logged
with their time; the libraries' own warnings and notices only when ``LOAN_LIBRARY_LOGS`` asks.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from loanxai.artifacts import REPO_ROOT
from loanxai.config import ToolSettings

__all__ = ["LIBRARY_LOGGERS", "HelpFormatter", "command_parser", "configure_logging", "quiet_libraries"]

#: loggers that speak to a library's developers, not to the user of a command: alibi's anchor search, fairlearn's grid
#: sizes, WeasyPrint's CSS steps, font notices, and Python's warnings (deprecations of libraries)
LIBRARY_LOGGERS = ("alibi", "fairlearn", "weasyprint", "fontTools", "matplotlib", "PIL", "shap", "py.warnings")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's defaults-showing formatter, with paths in the checkout shown relative to it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in text or not action.option_strings:
            return text
        default = action.default
        if isinstance(default, Path) and default.is_relative_to(REPO_ROOT):
            default = default.relative_to(REPO_ROOT)
        return f"{text} (default: {default})".strip()


def command_parser(description: str) -> argparse.ArgumentParser:
    """A command's parser: ``description`` (a docstring's first line) and :class:`HelpFormatter`."""
    return argparse.ArgumentParser(description=description.replace("``", ""), formatter_class=HelpFormatter)


def configure_logging() -> None:
    """Log to stderr, our INFO lines with their time; the libraries' warnings and notices (
    :data:`LIBRARY_LOGGERS`) only with ``LOAN_LIBRARY_LOGS=on``, else only their errors."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    quiet_libraries()


def quiet_libraries() -> None:
    """The libraries' warnings and notices (:data:`LIBRARY_LOGGERS`: WeasyPrint's CSS and fonts, ...)
    to the log only with ``LOAN_LIBRARY_LOGS=on``, else only their errors."""
    logging.captureWarnings(True)
    if not ToolSettings.from_env().library_logs:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
