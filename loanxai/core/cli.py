"""What every command's arguments share: one help formatter.

Defaults are shown after each option's help, paths under the checkout relative to it (the
same help, and the same generated command reference, on every machine).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from loanxai.artifacts import REPO_ROOT

__all__ = ["HelpFormatter", "command_parser"]


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
