"""The one command line, ``loanxai`` (``python -m loanxai``): its commands, declared once, and
what every command shares.

:data:`COMMANDS` names each command, the module that implements it and a line saying what it
does; ``loanxai --help``, the command reference and the tests read it. A command's module gives
``parser()`` (its arguments) and ``run(args, settings)`` (its work; an exit status, or None for
0). :func:`main` does the rest once for all of them: it reads the arguments and the settings
(:class:`~loanxai.config.Settings`, the environment read once and passed in), configures logging and
turns our errors, and the OSErrors of files and connections, into a message and an exit status
(0 done, 1 refused or failed with a message, 2 a usage error, as argparse gives it). Only the
command asked for is imported (``loanxai score`` never loads the training code).

Defaults are shown after each option's help, paths under the checkout relative to it (the
same help, and the same generated command reference, on every machine). Our lines are logged
with their time; the libraries' own warnings and notices only when ``LOAN_LIBRARY_LOGS`` asks.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from loanxai.artifacts import REPO_ROOT
from loanxai.config import Settings
from loanxai.core.text import printable
from loanxai.errors import LoanError

__all__ = ["COMMANDS", "LIBRARY_LOGGERS", "SERVICE_LOG_FORMAT", "Command", "HelpFormatter", "command_help",
           "command_parser", "configure_logging", "main", "microservice", "overview"]

logger = logging.getLogger(__name__)

#: loggers that speak to a library's developers, not to the user of a command: alibi's anchor search, fairlearn's grid
#: sizes, WeasyPrint's CSS steps, font notices, alembic's plugins, seldon-core's note that TensorFlow is absent, and
#: Python's warnings (deprecations of libraries)
LIBRARY_LOGGERS = ("alibi", "fairlearn", "weasyprint", "fontTools", "matplotlib", "PIL", "shap", "alembic",
                   "seldon_core.imports_helper", "py.warnings")

#: how the long-running services log: the source of each line too, as Seldon's wrapper logs
SERVICE_LOG_FORMAT = "%(asctime)s - %(name)s:%(funcName)s:%(lineno)s - %(levelname)s:  %(message)s"

#: the exit statuses: done; refused or failed, with a message; a usage error (argparse's own)
DONE, FAILED, USAGE = 0, 1, 2


@dataclass(frozen=True)
class Command:
    """One command of ``loanxai``: its name, the module giving ``parser()`` and ``run(args, settings)``, what it
    does (one line), and whether it is a long-running service (logged as the services log, at
    ``LOAN_LOG_LEVEL``)."""

    name: str
    module: str
    summary: str
    service: bool = False

    def load(self) -> ModuleType:
        """The command's module (imported now, not before: only the command asked for is loaded)."""
        return importlib.import_module(self.module)


COMMANDS = (
    Command("train", "loanxai.training.train", "search, train and write the artifacts, from a dataset description"),
    Command("report", "loanxai.report.build", "the bias and evaluation report and the model card of trained artifacts"),
    Command("gate", "loanxai.fairness.gate", "check the fairness gate of trained artifacts"),
    Command("score", "loanxai.clients.score", "decide a file of applications through the classifier"),
    Command("client", "loanxai.clients.api", "call both services once, as SeldonClient does"),
    Command("records", "loanxai.records.cli", "read the decision record: show, list, export, redecide, notices, purge"),
    Command("figures", "loanxai.report.production", "production figures from the decision record"),
    Command("compare", "loanxai.report.compare", "the challenger beside the champion, on the decisions it shadowed"),
    Command("promote", "loanxai.ops.promote", "make the challenger the champion when it serves every group as well"),
    Command("images", "loanxai.ops.images", "the images' tag and labels, from the trained artifacts"),
    Command("tokens", "loanxai.ops.tokens", "keys, signed tokens and the sampling key of LOAN_AUTH=on"),
    Command("rules", "loanxai.monitoring.rules", "write Prometheus's recording and alerting rules"),
    Command("dashboard", "loanxai.monitoring.dashboard", "write the Grafana dashboard"),
    Command("replay", "loanxai.ops.replay", "replay held-out traffic and a trap against running services"),
    Command("run", "loanxai.ops.local", "both services, the console and Prometheus on this machine (make run, demo)"),
    Command("serve", "loanxai.serving.server.supervisor", "serve a class as a Seldon Core microservice", service=True),
    Command("console", "loanxai.console.server", "the reviewer console's server", service=True),
    Command("cluster", "loanxai.ops.cluster.cli", "a local Kubernetes control plane with Seldon Core's operator"),
    Command("reference", "loanxai.ops.reference", "write the generated sections of the docs"),
)
_BY_NAME = {command.name: command for command in COMMANDS}


class ToolFormatter(logging.Formatter):
    """A command's lines: the time and the message; a warning or an error says which it is."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line, ``WARNING: `` or ``ERROR: `` before the message of one."""
        line = super().formatMessage(record)
        if record.levelno < logging.WARNING:
            return line
        moment, _, message = line.partition(" ")
        return f"{moment} {record.levelname}: {message}"


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


def configure_logging(settings: Settings, service: bool = False) -> None:
    """Log to stderr: a tool's INFO lines with their time; a service's at ``SELDON_LOG_LEVEL`` with their
    source. The libraries' warnings and notices (:data:`LIBRARY_LOGGERS`) only with
    ``LOAN_LIBRARY_LOGS=on``, else only their errors."""
    if service:
        logging.basicConfig(level=settings.server.log_level, format=SERVICE_LOG_FORMAT)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(ToolFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.captureWarnings(True)
    if not settings.tool.library_logs:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


def command_help(command: Command) -> argparse.ArgumentParser:
    """``command``'s parser, named as the user calls it (``loanxai <name>``)."""
    parser = command.load().parser()
    parser.prog = f"loanxai {command.name}"
    return parser


def overview() -> argparse.ArgumentParser:
    """``loanxai``'s own parser: its usage, and every command with what it does."""
    width = max(len(command.name) for command in COMMANDS)
    listing = "\n".join(f"  {command.name:<{width}}  {command.summary}" for command in COMMANDS)
    return argparse.ArgumentParser(
        prog="loanxai", usage="loanxai COMMAND [options] (loanxai COMMAND --help: its options)",
        description="Explainable, fair and auditable loan decisions on Seldon Core.",
        epilog=f"commands:\n{listing}\n\nexit status: 0 done, 1 refused or failed (with a message), 2 a usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``loanxai COMMAND ...`` (``argv``: the arguments after the program's name); its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        overview().print_help(sys.stdout if argv else sys.stderr)
        return DONE if argv else USAGE
    command = _BY_NAME.get(argv[0])
    if command is None:
        overview().error(f"no command {argv[0]!r}; the commands: {', '.join(_BY_NAME)}")
    module = command.load()
    args = command_help(command).parse_args(argv[1:])
    settings = Settings()
    try:
        configure_logging(settings, command.service)
        status = module.run(args, settings)
    except (LoanError, OSError) as error:  # an OSError: a file or a connection (requests' errors are OSErrors)
        message = error.message if isinstance(error, LoanError) else str(error)
        logger.error("loanxai %s: %s", command.name, printable(message))
        return FAILED
    return DONE if status is None else status


def microservice() -> int:
    """``loanxai-microservice``: ``loanxai serve``, under the name the images' command has (in place of
    ``seldon-core-microservice``)."""
    return main(["serve", *sys.argv[1:]])
