"""`shipyard deploy render`: the Kubernetes manifests of a project, from a kustomize overlay."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._common import ProjectOption, console, open_project

app = typer.Typer(help="Deploy to Kubernetes: render the manifests of a project.",
                  no_args_is_help=True)


@app.command("render")
def render(
    overlay: Annotated[str, typer.Option(help="The overlay of deploy/kubernetes/overlays: "
                                              "dev or prod.")] = "prod",
    image: Annotated[str | None, typer.Option(help="The container image, e.g. "
                                                   "registry.example.com/shipyard:0.1.0 "
                                                   "(default: the overlay's).")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="A model the model server serves (repeat it); default: "
                              "`deployments:` in shipyard.yaml.")] = None,
    replicas: Annotated[int | None, typer.Option(help="Model-server replicas (and the "
                                                      "autoscaler's minimum).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write one file per object "
                                             "here (default: print the YAML).")] = None,
    manifests: Annotated[Path | None, typer.Option(help="Another deploy/kubernetes folder "
                                                        "(base/ and overlays/).")] = None,
    project: ProjectOption = Path("."),
) -> None:
    """Render the Kubernetes manifests of the project for an overlay (no kubectl needed)."""
    from shipyard.integrations.kubernetes import RenderOptions, write
    from shipyard.integrations.kubernetes import render as render_manifests
    from shipyard.integrations.kustomize import dump

    options = RenderOptions(overlay=overlay, image=image, models=tuple(model or ()),
                            replicas=replicas, manifests=manifests)
    with open_project(project) as proj:
        rendered = render_manifests(proj, options)
    if out is None:
        sys.stdout.write(dump(rendered))
        return
    paths = write(rendered, out)
    console.print(f"[green]✓[/green] {len(paths)} manifests for overlay {overlay} -> {out} "
                  f"(apply with `kubectl apply -f {out / 'manifests.yaml'}`)", highlight=False,
                  soft_wrap=True)
