"""`shipyard models list|show|alias|archive`: the model registry from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shipyard.cli._common import ProjectOption, console, open_project
from shipyard.cli.runs import STATUS_STYLE
from shipyard.core.errors import InvalidInputError, NotFoundError
from shipyard.models import ModelVersion, parse_ref
from shipyard.project import Project

app = typer.Typer(help="The model registry: versions, aliases and lineage.",
                  no_args_is_help=True)


@app.command("list")
def list_models(project: ProjectOption = Path(".")) -> None:
    """List registered models with their latest version and aliases."""
    with open_project(project) as proj:
        found = proj.models.list_models()
    table = Table("model", "versions", "latest", "aliases", "created (UTC)",
                  title=f"{len(found)} model(s)")
    for model in found:
        aliases = ", ".join(f"{a}→{v}" for a, v in model.aliases.items())
        table.add_row(model.name, str(model.version_count), str(model.latest_version or "-"),
                      aliases, model.created_at.strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)


def _versions_table(name: str, versions: list[ModelVersion]) -> Table:
    table = Table("version", "created (UTC)", "flavor", "aliases", "run", "tags", "status",
                  "description", title=f"model {name}")
    for v in versions:
        table.add_row(str(v.version), v.created_at.strftime("%Y-%m-%d %H:%M:%S"), v.flavor,
                      ", ".join(v.aliases), (v.run_id or "")[:8],
                      ", ".join(f"{k}={t}" for k, t in v.tags.items()),
                      "archived" if v.archived else "active", v.description)
    return table


def _lineage(proj: Project, mv: ModelVersion) -> Table:
    table = Table("lineage", "", title_justify="left")
    run = "-"
    if mv.run_id:
        try:
            info = proj.tracking.get_run(mv.run_id)
            style = STATUS_STYLE.get(info.status, "white")
            metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(info.metrics.items()))
            run = (f"{info.id[:8]} {info.experiment}/{info.name} [{style}]{info.status}[/]"
                   + (f" ({metrics})" if metrics else ""))
        except NotFoundError:
            run = f"{mv.run_id[:8]} (deleted)"
    table.add_row("run", run)
    table.add_row("dataset", mv.dataset_id or "-")
    table.add_row("feature service", mv.feature_service or "-")
    table.add_row("definitions version", str(mv.definitions_version or "-"))
    table.add_row("git commit", (mv.git_commit or "-")[:12])
    table.add_row("feature views", ", ".join(mv.views) or "-")
    return table


@app.command("show")
def show(ref: Annotated[str, typer.Argument(help="NAME, NAME/VERSION or NAME@ALIAS.")],
         project: ProjectOption = Path(".")) -> None:
    """Show a model's versions (NAME) or one version with its signature and lineage."""
    parsed = parse_ref(ref)
    with open_project(project) as proj:
        if parsed.version is None and parsed.alias is None:
            versions = proj.models.list_versions(parsed.name, include_archived=True)
            if not versions:
                proj.models.get_version(parsed)  # raises the not-found error with its hint
            console.print(_versions_table(parsed.name, versions))
            return
        mv = proj.models.get_version(parsed)
        summary = Table("", "", title=f"model {mv.ref}", title_justify="left", show_header=False)
        for key, value in (("flavor", mv.flavor + (" + onnx" if mv.has_onnx else "")),
                           ("created", f"{mv.created_at:%Y-%m-%d %H:%M:%S} by {mv.created_by}"),
                           ("aliases", ", ".join(mv.aliases) or "-"),
                           ("status", "archived" if mv.archived else "active"),
                           ("description", mv.description or "-"),
                           ("tags", ", ".join(f"{k}={v}" for k, v in mv.tags.items()) or "-"),
                           ("artifact", f"{mv.artifact.sha256[:12]} ({mv.artifact.size} bytes)")):
            summary.add_row(key, value)
        console.print(summary)
        signature = Table("input", "dtype", title="signature", title_justify="left")
        for column in mv.signature.inputs:
            signature.add_row(column.name, column.dtype.name)
        if mv.signature.output is not None:
            out = mv.signature.output
            signature.add_row(f"→ {out.name}", out.dtype.name, style="bold")
        console.print(signature)
        console.print(_lineage(proj, mv))


@app.command("alias")
def alias(name: Annotated[str, typer.Argument(help="The model.")],
          alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion.")],
          version: Annotated[int | None, typer.Argument(help="The version to point at.")] = None,
          delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
          project: ProjectOption = Path(".")) -> None:
    """Point NAME@ALIAS at VERSION (moving it atomically), or --delete it."""
    with open_project(project) as proj:
        if delete:
            proj.models.delete_alias(name, alias_name)
            console.print(f"Deleted {name}@{alias_name}.")
            return
        if version is None:
            raise InvalidInputError("Give the VERSION the alias should point at.",
                                    hint=f"e.g. shipyard models alias {name} {alias_name} 3")
        mv = proj.models.set_alias(name, alias_name, version)
        console.print(f"{name}@{alias_name} → version [bold]{mv.version}[/bold].")


@app.command("archive")
def archive(ref: Annotated[str, typer.Argument(help="NAME/VERSION.")],
            undo: Annotated[bool, typer.Option("--undo", help="Restore it.")] = False,
            project: ProjectOption = Path(".")) -> None:
    """Archive a version (it leaves 'latest' and lists), or --undo it."""
    with open_project(project) as proj:
        mv = proj.models.archive(ref, archived=not undo)
    console.print(f"{mv.ref} is now {'archived' if mv.archived else 'active'}.")
