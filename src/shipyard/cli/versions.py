"""`shipyard versions list|diff`: the history of applied definitions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.features.registry import Plan

app = typer.Typer(help="The history of applied definitions.", no_args_is_help=True)


@app.command("list")
def list_versions(project: ProjectOption = Path(".")) -> None:
    """List every applied version of the definitions."""
    with open_project(project) as proj:
        versions = proj.registry.list_versions()
    table = Table("version", "applied at (UTC)", "by", "changes", "sha256")
    for v in versions:
        counts = {a: sum(c["action"] == a for c in v.changes) for a in ("add", "change", "remove")}
        table.add_row(str(v.version), v.created_at.strftime("%Y-%m-%d %H:%M:%S"), v.applied_by,
                      f"+{counts['add']} ~{counts['change']} -{counts['remove']}",
                      v.definitions_sha256[:12])
    console.print(table)


@app.command("diff")
def diff(old: int, new: int, project: ProjectOption = Path(".")) -> None:
    """Show what changed between two versions."""
    from shipyard.cli.apply import print_plan

    with open_project(project) as proj:
        print_plan(Plan(proj.registry.diff(old, new), version=new))
