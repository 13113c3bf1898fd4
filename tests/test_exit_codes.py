"""The exit codes README.md documents are the codes the commands return, with one meaning for all of them.

The table is parsed from README.md and checked against the code: every command of the ``omopfed`` tree
(walked through click), the codes it declares in its help, the status → code maps behind them, and every
error class. Then real invocations of the installed command show a 2 and a 1 as one line, no traceback.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from omop import errors
from omop.errors import ExitCode, OmopFedError
from omop.keys import generate_hub_keys, generate_trust_key, register_trust, trust_public_name
from omopfed.localservices.processes import free_port
from tests.cli_runner import assert_one_line_error, run_omopfed

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("omop", "trust_worker", "hub_broker", "omopfed")
EVERY_COMMAND = "every command"
#: What any command can exit with: done, an ``OmopFedError`` (1, or 2 for a ``UsageError``), a command line
#: that does not parse (2), Ctrl-C (130). Other codes a command declares in its help ("Exit codes: ...").
BASE_CODES = {ExitCode.OK, ExitCode.ERROR, ExitCode.USAGE, ExitCode.INTERRUPTED}


@dataclass(frozen=True)
class Row:
    meaning: str
    commands: frozenset[str] | None  # None: every command


def readme_table() -> dict[int, Row]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    table: dict[int, Row] = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| (\d+) \| (.+) \| (.+) \|", line)
        if match is None:
            continue
        code, meaning, commands = int(match[1]), match[2], match[3]
        assert code not in table, f"README lists exit code {code} twice"
        named = None if commands == EVERY_COMMAND else frozenset(re.findall(r"`([^`]+)`", commands))
        table[code] = Row(meaning, named)
    assert table, "README.md has no exit code table"
    return table


def command_tree() -> dict[str, Any]:
    """Every command a user can run (``hub submit``, ``trust budget grant``, ...) → its click command."""
    import typer

    from omopfed import cli

    cli._mount([])  # every command group, as for ``omopfed --help``
    found: dict[str, Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)
        if subcommands is None or getattr(command, "invoke_without_command", False):
            found[" ".join(path)] = command
        for name, sub in (subcommands or {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(cli.app), ())
    return found


def declared_codes(command: Any) -> set[int]:
    """The codes named in the ``Exit codes: 0 ..., 3 ..., 4 ...`` sentence of a command's help, if any."""
    help_text = " ".join((command.help or "").split())
    match = re.search(r"Exit codes: (.*?)\.(?: |$)", help_text)
    if match is None:
        return set()
    return {int(code) for code in re.findall(r"(?:^|, )(\d+) ", match[1])}


@pytest.fixture(scope="module")
def table() -> dict[int, Row]:
    return readme_table()


@pytest.fixture(scope="module")
def commands() -> dict[str, Any]:
    return command_tree()


def test_the_table_documents_exactly_the_exit_codes_the_code_knows(table: dict[int, Row]) -> None:
    assert set(table) == {int(code) for code in ExitCode}
    for code in BASE_CODES:
        assert table[code].commands is None, f"exit code {code} applies to every command"


def test_every_command_returns_only_documented_codes(table: dict[int, Row], commands: dict[str, Any]) -> None:
    assert {"hub submit", "hub result", "trust check", "stack up", "demo", "keys list"} <= set(commands)
    for name, command in commands.items():
        undocumented = (BASE_CODES | declared_codes(command)) - set(table)
        assert not undocumented, f"omopfed {name} can exit {sorted(undocumented)}, not in README.md"


def test_the_commands_the_table_names_are_those_that_declare_the_code(
    table: dict[int, Row], commands: dict[str, Any]
) -> None:
    for code, row in table.items():
        if row.commands is None:
            continue
        declaring = {name for name, command in commands.items() if code in declared_codes(command)}
        assert declaring == row.commands, f"exit code {code}: README names {sorted(row.commands)}"


def test_outcome_codes_come_from_the_status_maps_the_help_declares(commands: dict[str, Any]) -> None:
    from hub_broker.report import EXIT_CODES
    from omop.states import QueryStatus, ResultStatus
    from trust_worker.cli_run import CHECK_EXIT

    assert set(EXIT_CODES) == set(QueryStatus) - {QueryStatus.PENDING}
    assert set(CHECK_EXIT) == set(ResultStatus)
    for name in ("hub submit", "hub result"):
        assert set(EXIT_CODES.values()) == declared_codes(commands[name])
    assert set(CHECK_EXIT.values()) == declared_codes(commands["trust check"])


def _product_modules() -> Iterator[str]:
    for package in PACKAGES:
        yield package
        module = importlib.import_module(package)
        yield from (info.name for info in pkgutil.walk_packages(module.__path__, f"{package}."))


def _subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_is_in_the_one_hierarchy_with_a_documented_code(table: dict[int, Row]) -> None:
    for name in _product_modules():
        importlib.import_module(name)
    ours = {c for c in _subclasses(Exception) if c.__module__.split(".")[0] in PACKAGES}
    assert ours, "no error classes found"
    for cls in ours:
        assert issubclass(cls, OmopFedError), f"{cls.__module__}.{cls.__name__} is not an OmopFedError"
        assert cls.__module__ == "omop.errors", f"{cls.__name__} is defined outside omop/errors.py"
        assert cls.exit_code in table, f"{cls.__name__} exits {cls.exit_code}, not in README.md"
    drawn = set(re.findall(r"[├└]── (\w+)", errors.__doc__ or ""))
    assert drawn == {c.__name__ for c in ours if c is not OmopFedError}, "omop/errors.py's tree is stale"


def test_no_call_passes_an_exit_code() -> None:
    """The code belongs to the error's class, never to one ``raise``."""
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and any(k.arg == "exit_code" for k in node.keywords):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


# -- real invocations -----------------------------------------------------------------------------------


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = run_omopfed("hub", "submit", "--sql-file", tmp_path / "nope.sql", cwd=tmp_path)
    assert_one_line_error(missing, ExitCode.USAGE, "cannot read --sql-file")
    assert "not found" in missing.stderr
    unknown = run_omopfed("hub", "submit", "--no-such-option", cwd=tmp_path)
    assert_one_line_error(unknown, ExitCode.USAGE, "No such option: --no-such-option")
    assert "omopfed hub submit --help" in unknown.stderr
    bad_value = run_omopfed("stack", "up", "--dir", tmp_path / "s", "--trusts", "many", cwd=tmp_path)
    assert_one_line_error(bad_value, ExitCode.USAGE, "'--trusts'")
    # a query the hub's policy refuses is refused before anything is sent (the broker is not even there)
    refused = run_omopfed("hub", "submit", "--json", "--sql", "SELECT 1 AS x", env=_hub(tmp_path))
    assert_one_line_error(refused, ExitCode.USAGE, "query rejected at the hub (no_person_id)")
    assert refused.stdout == ""


def _hub(tmp_path: Path) -> dict[str, str]:
    """A hub with its keys and one registered trust, and a broker URL nothing listens on."""
    hub, trust = tmp_path / "hub", tmp_path / "t1"
    generate_hub_keys(hub)
    generate_trust_key("t1", trust)
    register_trust(hub, trust / trust_public_name("t1"))
    return {
        "OMOPFED_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
        "OMOPFED_HUB_STORE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "OMOPFED_HUB_KEYS_DIR": str(hub),
    }


def test_an_unreachable_broker_exits_1_with_one_line(tmp_path: Path) -> None:
    proc = run_omopfed("hub", "submit", "--sql", "SELECT person_id FROM person", env=_hub(tmp_path))
    assert_one_line_error(proc, ExitCode.ERROR, "cannot reach the broker")


def test_a_missing_key_directory_exits_1_with_one_line(tmp_path: Path) -> None:
    assert_one_line_error(
        run_omopfed("keys", "list", "--dir", tmp_path / "nowhere"), ExitCode.ERROR, "key directory not found"
    )


def test_a_local_server_that_dies_at_start_up_exits_1_with_one_line(tmp_path: Path) -> None:
    """``stack start`` of a broker whose configuration is unusable: the server exits at once, and so does the
    command, with the server's exit code and its own words (no traceback, no waiting out a timeout)."""
    from hub_broker.redis_acl import HUB_USER, password_file

    stack, base = tmp_path / "stack", tmp_path / "stack" / "redis" / "data"
    base.mkdir(parents=True)
    (base / "valkey.conf").write_text(f"port {free_port()}\nno-such-directive yes\n")
    (stack / "redis" / "acl").mkdir()
    password_file(stack / "redis" / "acl", HUB_USER).write_text("not-used\n")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])  # a PID that no longer runs anything
    gone.wait()
    state = {"dir": str(stack), "created_dir": True, "trusts": {}}
    state["valkey"] = {"base_dir": str(base), "port": 1, "pid": gone.pid, "host": "127.0.0.1"}
    (stack / "stack.json").write_text(json.dumps(state))
    proc = run_omopfed("stack", "start", "--dir", stack, "--service", "broker")
    expected = "embedded Valkey (restart) exited during start-up (exit code 1)"
    assert_one_line_error(proc, ExitCode.ERROR, expected)
    assert "no-such-directive" in proc.stderr
