"""`shipyard init` and `shipyard apply`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.features.registry import Plan
from shipyard.project import Project

_STYLE = {"add": "green", "change": "yellow", "remove": "red"}


def init(path: Annotated[Path, typer.Argument(help="Folder to create the project in.")] = Path("."),
         name: Annotated[str | None, typer.Option(help="Project name.")] = None) -> None:
    """Create a project: a folder with a minimal shipyard.yaml."""
    project = Project.init(path, name)
    console.print(f"Created project [bold]{project.name}[/bold] in {project.root}")


def print_plan(plan: Plan) -> None:
    """Show a plan, one coloured line per change."""
    if plan.is_noop:
        console.print(f"No changes: definitions are at version {plan.version}.")
        return
    console.print(f"[bold]{plan.count('add')} to add, {plan.count('change')} to change, "
                  f"{plan.count('remove')} to remove[/bold]")
    for change in plan.changes:
        console.print(f"[{_STYLE[change.action]}]{change}[/]", highlight=False)


def apply(project: ProjectOption = Path("."),
          plan: Annotated[bool, typer.Option("--plan", help="Only show what would change.")] = False,
          ) -> None:
    """Validate the project's definitions and store them as a new version."""
    with open_project(project) as proj:
        result = proj.apply(dry_run=plan)
        print_plan(result)
        if plan and not result.is_noop:
            console.print("Dry run: nothing stored. Run `shipyard apply` to store it.")
        elif result.applied:
            console.print(f"Applied as version [bold]{result.version}[/bold].")
