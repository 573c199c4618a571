"""Check that a `shipyard ...` argument list names a real command and parses."""

from __future__ import annotations

from typing import Any

import typer
import typer.main
from typer.exceptions import TyperException

from shipyard.cli.main import app


class BadCommandLine(Exception):
    """The arguments name no command, or its options do not parse."""


def parse_cli(args: list[str]) -> Any:
    """The leaf command `args` runs; raises BadCommandLine if the arguments do not parse."""
    command: Any = typer.main.get_command(app)
    rest, path = list(args), ["shipyard"]
    while hasattr(command, "get_command"):  # a group (typer vendors its own click)
        if not rest:
            raise BadCommandLine(f"{' '.join(path)} needs a subcommand")
        name = rest.pop(0)
        sub = command.get_command(typer.Context(command), name)
        if sub is None:
            raise BadCommandLine(f"{' '.join(path)} has no command {name!r}")
        command, path = sub, [*path, name]
    try:
        command.make_context(" ".join(path), rest)  # parses and converts every option
    except TyperException as exc:
        raise BadCommandLine(f"{' '.join(path)} {rest}: {exc}") from exc
    return command
