"""deploy/Dockerfile: it parses, passes the hadolint rules, and runs commands the CLI has."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from shipyard.settings import load_settings
from tests.unit.deploy.cli_args import BadCommandLine, parse_cli
from tests.unit.deploy.dockerfile_rules import Instruction, lint, parse

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
# every role the one image plays (deploy/kubernetes runs each of these)
ROLES = [["serve", "--model", "fraud@champion"], ["serve-features"], ["scheduler"],
         ["monitor", "run"], ["batch-predict", "fraud@champion", "in.parquet", "-o", "out"],
         ["jobs", "run", "nightly"], ["materialize-incremental", "now"]]


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def _env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for pair in ins.args.split():
                key, _, value = pair.partition("=")
                env[key] = value.strip('"')
    return env


def test_the_dockerfile_passes_the_hadolint_rules(instructions: list[Instruction]) -> None:
    assert lint(instructions) == []


def test_the_rules_catch_what_they_are_named_after() -> None:
    bad = parse("FROM python\nADD . /src\nRUN cd /src && apt-get install curl && pip install x\n"
                "CMD shipyard serve\n")
    codes = {finding.split()[0].rstrip(":") for finding in lint(bad)}
    assert {"DL3006", "DL3020", "DL3003", "DL3008", "DL3014", "DL3015", "DL3009", "DL3042",
            "DL3013", "DL3025", "DL3002"} <= codes
    with pytest.raises(ValueError, match="unknown instruction"):
        parse("FROM python:3.11-slim\nRUNN echo\n")


def test_it_is_multi_stage_on_a_slim_base_and_runs_as_a_user(
        instructions: list[Instruction]) -> None:
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2 and all("-slim" in f for f in froms)
    final = max(i.line for i in instructions if i.keyword == "FROM")
    assert any(i.keyword == "COPY" and "--from=build" in i.args and i.line > final
               for i in instructions)
    user = [i.args for i in instructions if i.keyword == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0") and int(user.split(":")[0]) >= 10000


def test_it_installs_the_extras_a_server_needs(instructions: list[Instruction]) -> None:
    extras_arg = next(i.args for i in instructions if i.keyword == "ARG"
                      and i.args.startswith("EXTRAS="))
    extras = set(extras_arg.partition("=")[2].split(","))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert {"server", "postgres", "redis", "s3"} <= extras <= set(declared)


def test_the_build_stage_copies_what_the_wheel_needs(instructions: list[Instruction]) -> None:
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    wheel = build["targets"]["wheel"]
    needed = set(wheel["packages"]) | set(wheel.get("force-include", {}))
    copied = {part.rstrip("/") for i in instructions if i.keyword == "COPY" and "--from" not in i.args
              for part in i.args.split()[:-1]}
    assert {"pyproject.toml", "README.md"} <= copied
    for path in needed:
        assert any(path == c or path.startswith(c + "/") for c in copied), path
    assert all((ROOT / c).exists() for c in copied)


def test_the_healthcheck_probes_healthz(instructions: list[Instruction]) -> None:
    check = next(i for i in instructions if i.keyword == "HEALTHCHECK")
    assert "--interval=" in check.args and "/healthz" in check.args
    command = check.args[check.args.index("CMD") + 3:]
    assert Instruction("CMD", command, check.line).exec_form() is not None


def test_the_entrypoint_and_every_role_are_cli_commands(instructions: list[Instruction]) -> None:
    entrypoint = next(i for i in instructions if i.keyword == "ENTRYPOINT").exec_form()
    cmd = next(i for i in instructions if i.keyword == "CMD").exec_form()
    assert entrypoint is not None and entrypoint[-1] == "shipyard" and cmd is not None
    parse_cli([*cmd, "--model", "fraud@champion"])
    for role in ROLES:
        parse_cli(role)
    with pytest.raises(BadCommandLine):
        parse_cli(["serve-model"])  # the check does fail on a command that does not exist
    with pytest.raises(BadCommandLine):
        parse_cli(["serve", "--no-such-option"])


def test_the_image_environment_is_valid_settings(instructions: list[Instruction], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(instructions)
    (tmp_path / "shipyard.yaml").write_text("project: p\n")
    for key, value in env.items():
        if key.startswith("SHIPYARD_") and key != "SHIPYARD_PROJECT_DIR":
            monkeypatch.setenv(key, value)
    settings = load_settings(tmp_path)
    assert settings.server.host == "0.0.0.0"
    assert settings.prediction_log.path == env["SHIPYARD_PREDICTION_LOG__PATH"]
    assert env["SHIPYARD_PROJECT_DIR"] == "/srv/project"
