"""The docs' reference pages, generated from the code: ``loanxai reference`` (``make reference``).

A page under ``docs/reference/`` holds prose and generated sections, each between
``<!-- generated: NAME -->`` and ``<!-- end generated -->``. This module rewrites every
section from what it describes:

============================= ======================================================================
section                       from
============================= ======================================================================
``service-settings`` ...      the settings' declarations (:mod:`loanxai.config`)
``errors``                    every :class:`~loanxai.errors.LoanError` with its status and reason
``description-format``        the dataset description's JSON Schema (:data:`~loanxai.data.description.SCHEMA`)
``commands``, ``make-targets`` each command's argument parser, the Makefile's ``help``
``series``                    the series the services export (:data:`~loanxai.monitoring.series.SERIES`)
``recording-rules``, ``alerts`` the generated Prometheus rules (:mod:`loanxai.monitoring.rules`)
============================= ======================================================================

``--check`` writes nothing and exits 1 naming each page that differs from what the code
says; a test runs it, so the docs cannot drift from the code.

The results pages (``docs/results/``) are written the same way from the files the
measurements write (``bench/results/``): ``--results performance`` after ``make bench``,
``--results reliability`` after ``make reliability``, ``--results replay`` after ``make
replay`` (the make targets do it). They are
dated data, not code: nothing checks them against a fresh run. The files they are written from
are kept beside their page, in git (:data:`KEPT`): a test checks each page's generated section
against them, and the figures a page's prose quotes from the bench and the replay (:mod:`loanxai.ops.measured`).
"""
from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import re
import typing
from collections.abc import Callable, Iterator
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from loanxai import errors
from loanxai.artifacts import DOCS_DIR, REPO_ROOT, RESULTS_DIR
from loanxai.config import (
    SCRIPT_SETTINGS,
    SELDON_VARIABLES,
    EnvSettings,
    ReviewSettings,
    ServerSettings,
    ServiceSettings,
    Settings,
    ToolSettings,
)
from loanxai.core import cli
from loanxai.core.cli import command_parser

__all__ = ["KEPT", "PAGES", "PERFORMANCE_RESULTS", "RELIABILITY_RESULTS", "REPLAY_RESULTS", "parser", "render", "run",
           "stale_pages"]

logger = logging.getLogger(__name__)

REFERENCE_DIR = DOCS_DIR / "reference"
RESULTS_PAGES_DIR = DOCS_DIR / "results"
#: the results of the ``make bench`` run the performance page shows and quotes
PERFORMANCE_RESULTS = RESULTS_PAGES_DIR / "performance.json"
#: the figures of the ``make reliability`` run the reliability page shows
RELIABILITY_RESULTS = RESULTS_PAGES_DIR / "reliability.json"
#: what the ``make replay`` run the replay page shows sent, and the alerts it fired
REPLAY_RESULTS = RESULTS_PAGES_DIR / "replay.json"
_SECTION = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)
#: the width argparse wraps the commands' help to (it reads COLUMNS): the same text on every machine
HELP_COLUMNS = "100"


def _table(header: list[str], rows: list[list[str]]) -> str:
    cells = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(_cell(str(cell)) for cell in row) + " |" for row in cells) + "\n"


def _cell(text: str) -> str:
    """A table cell: one line, its pipes escaped outside code spans (Python-Markdown's tables
    split no code span, and show a backslash inside one as it is)."""
    parts = text.replace("\n", " ").split("`")
    return "`".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


def _code(value: Any) -> str:
    return f"`{value}`"


# --- configuration -----------------------------------------------------------------------------------


def _default(f: Any) -> str:
    shown = f.metadata["setting"].shown_default
    if shown is not None:
        return shown
    value = f.default if f.default is not MISSING else f.default_factory()
    if isinstance(value, bool):
        return "`on`" if value else "`off`"
    return "none" if value in (None, ()) else _code(value)


def settings_table(cls: type[EnvSettings]) -> str:
    """Every setting of ``cls``: variable, default, meaning, and the rule its value follows."""
    rows = []
    types = typing.get_type_hints(cls)
    for f in fields(cls):  # type: ignore[arg-type]
        declared = f.metadata["setting"]
        rule = declared.rule or (f"one of {', '.join(map(_code, declared.choices))}" if declared.choices
                                 else "`on` or `off`" if types[f.name] is bool else "a path" if Path in typing.get_args(
                                     types[f.name]) else "comma-separated" if types[f.name] == tuple[str, ...] else "")
        rows.append([_code(declared.env), _default(f), declared.meaning, rule])
    return _table(["variable", "default", "meaning", "value"], rows)


def script_settings_table() -> str:
    rows = [[_code(s.env), s.default or "none", s.meaning, ", ".join(f"`scripts/{name}`" for name in s.scripts)]
            for s in SCRIPT_SETTINGS]
    return _table(["variable", "default", "meaning", "read by"], rows)


def seldon_variables_table() -> str:
    return _table(["variable", "default", "meaning"],
                  [[_code(env), _code(default) if default else "none", meaning] for env, default, meaning in SELDON_VARIABLES])


# --- errors ------------------------------------------------------------------------------------------


def _error_classes() -> Iterator[type[errors.LoanError]]:
    for name in errors.__all__:
        cls = getattr(errors, name)
        if cls is not errors.LoanError:
            yield cls


def errors_table() -> str:
    """Every error a service can answer with (status 400 and up) and every one a tool stops with."""
    rows = []
    for cls in sorted(_error_classes(), key=lambda c: (c.status_code == 500 and c.reason.startswith("MICROSERVICE_INTERNAL"),
                                                       c.status_code, c.__name__)):
        served = not (cls.status_code == 500 and cls.reason == errors.LoanError.reason)
        meaning = " ".join(inspect.getdoc(cls).split())
        rows.append([_code(cls.__name__), str(cls.status_code) if served else "(a tool's exit)",
                     _code(cls.reason) if served else "", meaning])
    return _table(["error", "status", "reason", "when"], rows)


# --- the dataset description ---------------------------------------------------------------------------


def description_table() -> str:
    """Every key of the description format, from its JSON Schema: type, default and meaning."""
    from loanxai.data.description import SCHEMA

    rows = []
    for path, node, required in _schema_keys(SCHEMA, ""):
        default = "required" if required else (_code(node["default"]) if "default" in node else "none")
        rows.append([_code(path), _schema_type(node), default, node.get("description", "")])
    return _table(["key", "type", "default", "meaning"], rows)


def _schema_keys(node: dict[str, Any], prefix: str) -> Iterator[tuple[str, dict[str, Any], bool]]:
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        yield path, child, key in node.get("required", ())
        if child.get("type") == "object" and "properties" in child:
            yield from _schema_keys(child, path + ".")
        if child.get("type") == "array" and "properties" in child.get("items", {}):
            yield from _schema_keys(child["items"], path + "[].")


def _schema_type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " | ".join(_code(v) for v in node["enum"])
    if "const" in node:
        return _code(node["const"])
    if "oneOf" in node:
        return " or ".join(_schema_type(option) for option in node["oneOf"])
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(node.get('items', {}))}"
    if isinstance(kind, list):
        return " or ".join(kind)
    return "mapping" if kind == "object" else kind


# --- commands and make targets ------------------------------------------------------------------------


def commands_section() -> str:
    """``loanxai --help`` and each command's ``--help``, as argparse prints them; then the services' command."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        parts = [_help_block("loanxai", cli.overview().format_help())]
        parts += [_help_block(f"loanxai {command.name}", cli.command_help(command).format_help())
                  for command in cli.COMMANDS]
        return "\n".join(parts)
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _help_block(command: str, text: str) -> str:
    return f"### `{command}`\n\n```text\n{text.rstrip()}\n```\n"


def make_targets_table() -> str:
    """The targets ``make help`` lists, with its words."""
    lines = re.findall(r'^\t@echo "(make .*?)\s+- (.*)"$', (REPO_ROOT / "Makefile").read_text(), re.M)
    return _table(["command", "does"], [[_code(command.strip()), does.replace('\\"', '"')] for command, does in lines])


# --- metrics, rules, alerts ---------------------------------------------------------------------------------


def series_table() -> str:
    from loanxai.monitoring.series import SERIES

    return _table(["series", "type", "labels", "meaning", "exported by"],
                  [[_code(s.name), s.kind, ", ".join(map(_code, s.labels)) or "", s.meaning, s.service] for s in SERIES])


def recording_rules_table() -> str:
    from loanxai.monitoring.rules import RuleOptions, recording_rules

    return _table(["record", "expression (window 1h)"],
                  [[_code(rule["record"]), _code(rule["expr"])] for rule in recording_rules(RuleOptions())])


def alerts_table() -> str:
    from loanxai.monitoring.rules import RuleOptions, alerting_rules

    def words(text: str) -> str:  # the annotation's template with its placeholders named
        return re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", r"<\1>", re.sub(r"\{\{\s*\$value[^}]*\}\}", "<value>", text))

    return _table(["alert", "severity", "for", "fires when", "says"],
                  [[_code(a["alert"]), a["labels"]["severity"], a["for"], _code(a["expr"]),
                    words(a["annotations"]["description"])] for a in alerting_rules(RuleOptions())])


#: page -> section -> what writes it
PAGES: dict[str, dict[str, Callable[[], str]]] = {
    "configuration.md": {
        "service-settings": lambda: settings_table(ServiceSettings),
        "server-settings": lambda: settings_table(ServerSettings),
        "tool-settings": lambda: settings_table(ToolSettings),
        "review-settings": lambda: settings_table(ReviewSettings),
        "script-settings": script_settings_table,
        "seldon-variables": seldon_variables_table,
    },
    "errors.md": {"errors": errors_table},
    "dataset-description.md": {"description-format": description_table},
    "commands.md": {"commands": commands_section, "make-targets": make_targets_table},
    "metrics.md": {"series": series_table, "recording-rules": recording_rules_table, "alerts": alerts_table},
}


def performance_section() -> str:
    """The last ``make bench``'s tables, as it wrote them."""
    return _result_file("latest.md", "make bench").read_text()


def reliability_section(path: Path | None = None) -> str:
    """The figures of a ``make reliability`` run (default: the last), one row per test."""
    figures = json.loads((path or _result_file(*KEPT["reliability.md"][:2])).read_text())
    date = figures.pop("date", "undated")
    rows = [[name.replace("_", " "), ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in measured.items())]
            for name, measured in figures.items()]
    return f"Measured {date}.\n\n" + _table(["what", "measured"], rows)


def replay_section(path: Path | None = None) -> str:
    """What a ``make replay`` run (default: the last) sent in each phase and the alerts that fired, with their values."""
    results = json.loads((path or _result_file(*KEPT["replay.md"][:2])).read_text())
    rows = []
    for phase, sent in results["phases"].items():
        fired = sent["alerts"] or [{"alertname": "(none)", "labels": {}, "value": None}]
        for alert in fired:
            about = ", ".join(f"{k} {v}" for k, v in alert["labels"].items())
            rows.append([phase, f"{sent['applications']:,} ({sent['approved']:,} approved)", alert["alertname"], about,
                         "" if alert["value"] is None else f"{alert['value']:.2f}"])
    return (f"Replayed {results['date']} on the {results['dataset']} model {results['model']}.\n\n"
            + _table(["phase", "applications sent", "alert fired", "about", "value"], rows))


def _result_file(name: str, command: str) -> Path:
    path = RESULTS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `{command}` first")
    return path


#: results page -> the file its measurement writes (in bench/results/), the command, where it is kept beside the page
KEPT: dict[str, tuple[str, str, Path]] = {
    "performance.md": ("latest.json", "make bench", PERFORMANCE_RESULTS),
    "reliability.md": ("reliability.json", "make reliability", RELIABILITY_RESULTS),
    "replay.md": ("replay.json", "make replay", REPLAY_RESULTS),
}

#: results page -> section -> what writes it (from bench/results/)
RESULTS: dict[str, dict[str, Callable[[], str]]] = {
    "performance.md": {"bench": performance_section},
    "reliability.md": {"reliability": reliability_section},
    "replay.md": {"replay": replay_section},
}


def render(page: str, folder: Path | None = None, writers: dict[str, Callable[[], str]] | None = None) -> str:
    """The page ``folder/page`` (default: a reference page) with each generated section written
    anew; every section the page declares must exist (and the other way round)."""
    path = (REFERENCE_DIR if folder is None else folder) / page
    text = path.read_text()
    writers = PAGES[page] if writers is None else writers
    found = [m.group("name") for m in _SECTION.finditer(text)]
    if sorted(found) != sorted(writers):
        raise ValueError(f"{path}: generated sections {sorted(found)}, expected {sorted(writers)}")
    return _SECTION.sub(lambda m: m.group(1) + "\n" + writers[m.group("name")]().rstrip() + "\n\n" + m.group(4), text)


def stale_pages() -> list[Path]:
    """The reference pages whose generated sections differ from what the code gives now."""
    return [REFERENCE_DIR / page for page in PAGES if render(page, REFERENCE_DIR) != (REFERENCE_DIR / page).read_text()]


def parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = command_parser(__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is stale")
    parser.add_argument("--results", choices=[page.removesuffix(".md") for page in RESULTS],
                        help="write this results page from bench/results/ instead")
    return parser


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Write the generated sections as ``args`` say (``loanxai reference``); 1 with ``--check`` if a page is stale."""
    if args.results:
        page = f"{args.results}.md"
        (RESULTS_PAGES_DIR / page).write_text(render(page, RESULTS_PAGES_DIR, RESULTS[page]))
        written, command, kept = KEPT[page]
        # kept beside the page, in git: a test checks the page and the figures quoted from it against them
        kept.write_text(_result_file(written, command).read_text())
        return 0
    if args.check:
        stale = stale_pages()
        for path in stale:
            logger.error("%s differs from the code: run `make reference`", path.relative_to(REPO_ROOT))
        return 1 if stale else 0
    for page in PAGES:
        (REFERENCE_DIR / page).write_text(render(page))
    return 0
