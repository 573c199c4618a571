"""What every command shares: the project option, the console, error reporting."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shipyard.project import Project

console = Console()
err_console = Console(stderr=True)

ProjectOption = Annotated[
    Path, typer.Option("--project", "-p", help="The project folder (holds shipyard.yaml).",
                       envvar="SHIPYARD_PROJECT_DIR")
]


def open_project(path: Path) -> Project:
    """Load the project in `path`."""
    return Project.load(path)
