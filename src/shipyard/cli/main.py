"""Entry point: the typer app, and one error line with an exit code for every failure."""

from __future__ import annotations

import sys

import typer

from shipyard.cli import (
    airflow,
    apply,
    batch,
    demo,
    deploy,
    experiment,
    features,
    models,
    monitor,
    runs,
    serve,
    serve_models,
    train,
    versions,
)
from shipyard.cli._common import err_console
from shipyard.core.errors import ShipyardError

app = typer.Typer(name="shipyard", no_args_is_help=True, add_completion=False,
                  help="Shipyard: features, models, serving and monitoring in one tool.",
                  pretty_exceptions_enable=False)
app.command("init")(apply.init)
app.command("apply")(apply.apply)
app.add_typer(versions.app, name="versions")
app.command("materialize")(features.materialize)
app.command("materialize-incremental")(features.materialize_incremental)
app.add_typer(features.app, name="features")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.command("train")(train.train)
app.command("demo")(demo.demo)
app.command("serve-features")(serve.serve_features)
app.command("serve")(serve_models.serve)
app.command("batch-predict")(batch.batch_predict)
app.add_typer(batch.app, name="jobs")
app.command("scheduler")(batch.scheduler)
app.add_typer(experiment.app, name="experiment")
app.add_typer(monitor.app, name="monitor")
app.add_typer(deploy.app, name="deploy")
app.add_typer(airflow.app, name="airflow")


def run(argv: list[str] | None = None) -> None:
    """Run the CLI; a ShipyardError prints one line (a traceback only with --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    try:
        # standalone mode: click prints usage errors itself and exits 2
        app(args=args, prog_name="shipyard")
    except ShipyardError as exc:
        if debug:
            raise
        hint = f" [dim]({exc.hint})[/dim]" if exc.hint else ""
        err_console.print(f"[bold red]error:[/bold red] {exc.message}{hint}", highlight=False,
                          soft_wrap=True)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    run()
