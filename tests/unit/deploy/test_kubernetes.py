"""deploy/kubernetes rendered for a project: valid against the Kubernetes schemas, with the
probes, autoscaling, resources and jobs production needs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import shipyard as sy
from shipyard.core.errors import ConfigError
from shipyard.integrations.kubernetes import RenderOptions, manifests_dir, overlays, render
from shipyard.integrations.kustomize import build, pod_spec, strategic_merge
from tests.conftest import require_module, server_missing
from tests.unit.deploy.cli_args import parse_cli

K8S_VERSIONS = ["1.30.0", "1.37.0"]  # the oldest we support (preStop sleep) and the newest
FRAUD = Path(sy.__file__).parent / "examples" / "fraud" / "features.py"
CONFIG = """project: fraud
deployments:
  - model: fraud@champion
jobs:
  - {name: nightly, kind: batch_predict, model: fraud@champion, input: in.parquet,
     output: out/, cron: "0 2 * * *"}
  - {name: nightly-spark, kind: batch_predict, model: fraud@champion, input: in.parquet,
     output: out2/, cron: "0 3 * * *", engine: spark}
  - {name: backfill, kind: batch_predict, model: fraud@champion, input: in.parquet,
     output: out3/, engine: spark}
  - {name: hourly-views, kind: materialize, cron: "0 * * * *"}
  - {name: watch, kind: monitor, cron: "5 * * * *"}
monitoring:
  model: fraud@champion
  alerts: [{metric: drift, column: '*', window: 1d}]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> sy.Project:
    root = tmp_path_factory.mktemp("k8s") / "fraud"
    (root / "extra").mkdir(parents=True)
    shutil.copy(FRAUD, root / "features.py")
    (root / "extra" / "helpers.py").write_text("SCALE = 2\n")
    (root / "shipyard.yaml").write_text(CONFIG)
    return sy.Project.load(root)


@pytest.fixture(scope="module", params=["dev", "prod"])
def rendered(request: pytest.FixtureRequest, project: sy.Project) -> list[dict[str, Any]]:
    return render(project, RenderOptions(overlay=request.param))


def _by(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_the_overlays_are_dev_and_prod() -> None:
    assert overlays() == ["dev", "prod"]


def test_every_rendered_manifest_is_valid_for_kubernetes(rendered: list[dict[str, Any]]) -> None:
    validator: Any = require_module("kubernetes_validate")
    assert len(rendered) >= 18
    for manifest in rendered:
        for version in K8S_VERSIONS:
            validator.validate(manifest, version, strict=True)


def test_the_validator_rejects_a_broken_manifest(rendered: list[dict[str, Any]]) -> None:
    validator: Any = require_module("kubernetes_validate")
    deployment = json.loads(json.dumps(_by(rendered, "Deployment")["shipyard-model-server"]))
    pod_spec(deployment)["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_servers_have_probes_resources_spread_and_a_budget(rendered: list[dict[str, Any]]) -> None:
    deployments = _by(rendered, "Deployment")
    assert set(deployments) == {"shipyard-model-server", "shipyard-feature-server"}
    budgets = _by(rendered, "PodDisruptionBudget")
    services = _by(rendered, "Service")
    for name, deployment in deployments.items():
        spec = pod_spec(deployment)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        container = spec["containers"][0]
        ports = {p["name"] for p in container["ports"]}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert "http" in ports and container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert spec["terminationGracePeriodSeconds"] > int(
            container["args"][container["args"].index("--graceful-timeout") + 1])
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["topologySpreadConstraints"]
        assert all(c["labelSelector"]["matchLabels"].items() <= labels.items()
                   for c in spec["topologySpreadConstraints"])
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_prod_spreads_over_zones_and_keeps_two_pods(project: sy.Project) -> None:
    manifests = render(project, RenderOptions(overlay="prod"))
    model = _by(manifests, "Deployment")["shipyard-model-server"]
    keys = {c["topologyKey"] for c in pod_spec(model)["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert model["spec"]["replicas"] == 3
    assert _by(manifests, "PodDisruptionBudget")["shipyard-model-server"]["spec"][
        "minAvailable"] == 2
    assert all(m["metadata"]["namespace"] == "shipyard" for m in manifests)


def _quantity(value: str | int) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, scale in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def test_every_container_requests_and_limits_resources(rendered: list[dict[str, Any]]) -> None:
    workloads = [m for m in rendered if pod_spec(m) is not None]
    assert {m["kind"] for m in workloads} == {"Deployment", "CronJob", "Job"}
    for manifest in workloads:
        for container in pod_spec(manifest)["containers"]:
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                assert _quantity(resources["requests"][resource]) <= _quantity(
                    resources["limits"][resource]), (manifest["metadata"]["name"], resource)


def test_the_autoscalers_scale_on_cpu_and_on_requests_per_second(
        rendered: list[dict[str, Any]]) -> None:
    deployments = _by(rendered, "Deployment")
    rules = yaml.safe_load(_by(rendered, "ConfigMap")["shipyard-prometheus-adapter-rules"][
        "data"]["config.yaml"])["rules"]
    exposed = {rule["name"]["as"]: rule["seriesQuery"] for rule in rules}
    for name, hpa in _by(rendered, "HorizontalPodAutoscaler").items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": name} and name in deployments
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        kinds = {m["type"]: m for m in spec["metrics"]}
        assert kinds["Resource"]["resource"] == {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
        per_pod = kinds["Pods"]["pods"]
        assert per_pod["metric"]["name"] in exposed  # prometheus-adapter serves it
        assert float(per_pod["target"]["averageValue"]) > 0
        assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60
        assert spec["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert exposed["shipyard_prediction_requests_per_second"].startswith(
        "shipyard_prediction_requests_total{")


def test_the_adapter_rules_read_counters_the_servers_export(
        rendered: list[dict[str, Any]]) -> None:
    from prometheus_client import generate_latest

    from shipyard.serving.metrics import Metrics
    from shipyard.serving.model_metrics import ModelMetrics

    metrics = Metrics()
    ModelMetrics(metrics.registry)
    exported = {line.split()[2] for line in generate_latest(metrics.registry).decode().splitlines()
                if line.startswith("# TYPE") and line.endswith(" counter")}
    rules = yaml.safe_load(_by(rendered, "ConfigMap")["shipyard-prometheus-adapter-rules"][
        "data"]["config.yaml"])["rules"]
    for rule in rules:
        assert rule["seriesQuery"].split("{")[0] in exported
        assert "rate(" in rule["metricsQuery"]


def test_the_project_is_filled_in(project: sy.Project) -> None:
    manifests = render(project, RenderOptions(overlay="prod", image="reg.example/shipyard:9",
                                              models=("fraud@champion", "churn/3"), replicas=5))
    files = _by(manifests, "ConfigMap")["shipyard-project"]["data"]
    assert files["shipyard.yaml"] == CONFIG
    assert files["features.py"] == FRAUD.read_text() and files["extra__helpers.py"] == "SCALE = 2\n"
    model = _by(manifests, "Deployment")["shipyard-model-server"]
    args = pod_spec(model)["containers"][0]["args"]
    assert args[args.index("--model"):] == ["--model", "fraud@champion", "--model", "churn/3"]
    assert model["spec"]["replicas"] == 5
    assert _by(manifests, "HorizontalPodAutoscaler")["shipyard-model-server"]["spec"][
        "minReplicas"] == 5
    for manifest in manifests:
        assert manifest["metadata"]["labels"]["shipyard.dev/project"] == "fraud"
        spec = pod_spec(manifest)
        for container in (spec or {}).get("containers", []):
            assert container["image"] == "reg.example/shipyard:9"
        for volume in (spec or {}).get("volumes", []):
            if volume.get("configMap", {}).get("name") == "shipyard-project":
                assert {"key": "extra__helpers.py", "path": "extra/helpers.py"} in volume[
                    "configMap"]["items"]


def test_jobs_become_cronjobs_and_spark_jobs_run_on_kubernetes(
        rendered: list[dict[str, Any]]) -> None:
    crons, jobs = _by(rendered, "CronJob"), _by(rendered, "Job")
    assert set(crons) == {"shipyard-job-nightly", "shipyard-job-nightly-spark",
                          "shipyard-job-hourly-views", "shipyard-job-watch", "shipyard-monitor"}
    assert crons["shipyard-job-nightly"]["spec"]["schedule"] == "0 2 * * *"
    watch = crons["shipyard-job-watch"]
    assert watch["spec"]["schedule"] == "5 * * * *"
    assert pod_spec(watch)["containers"][0]["args"] == ["jobs", "run", "watch"]
    assert crons["shipyard-job-hourly-views"]["spec"]["schedule"] == "0 * * * *"
    assert set(jobs) == {"shipyard-job-backfill"} and jobs["shipyard-job-backfill"]["spec"][
        "suspend"] is True
    spark_pods = [pod_spec(crons["shipyard-job-nightly-spark"]), pod_spec(jobs[
        "shipyard-job-backfill"])]
    for spec in spark_pods:
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["SHIPYARD_SPARK__MASTER"]["value"].startswith("k8s://")
        conf = json.loads(env["SHIPYARD_SPARK__CONF"]["value"])
        assert conf["spark.kubernetes.container.image"] == spec["containers"][0]["image"]
        assert conf["spark.driver.host"] == "$(POD_IP)" and "POD_IP" in env
    for manifest in (*crons.values(), *jobs.values()):
        assert pod_spec(manifest)["restartPolicy"] == "Never"
        assert manifest["spec"].get("concurrencyPolicy", "Forbid") == "Forbid"


def test_every_container_runs_a_real_cli_command(rendered: list[dict[str, Any]]) -> None:
    seen = set()
    for manifest in rendered:
        for container in (pod_spec(manifest) or {}).get("containers", []):
            command = parse_cli(container["args"])
            seen.add(command.name)
    assert {"serve", "serve-features", "run"} <= seen


def test_bad_options_fail_with_a_clear_error(project: sy.Project) -> None:
    with pytest.raises(ConfigError, match="No overlay 'staging'"):
        render(project, RenderOptions(overlay="staging"))
    with pytest.raises(ConfigError, match="not a model reference"):
        render(project, RenderOptions(models=("fraud champion",)))
    with pytest.raises(ConfigError, match="at least 1"):
        render(project, RenderOptions(replicas=0))


def test_without_alert_rules_there_is_no_monitor_and_materialization_is_the_default(
        tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: lean\ndeployments: [{model: m@live}]\n")
    crons = _by(render(sy.Project.load(tmp_path), RenderOptions(overlay="dev")), "CronJob")
    assert set(crons) == {"shipyard-materialize"}
    assert pod_spec(crons["shipyard-materialize"])["containers"][0]["args"] == [
        "materialize-incremental", "now"]


def test_a_project_without_models_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: empty\n")
    with pytest.raises(ConfigError, match="no model to serve"):
        render(sy.Project.load(tmp_path), RenderOptions())


def test_strategic_merge_follows_kustomize() -> None:
    base = {"containers": [{"name": "a", "image": "x", "args": ["1", "2"]}],
            "tolerations": [{"key": "k"}], "drop": 1}
    patch = {"containers": [{"name": "a", "args": ["3"]}, {"name": "b"}],
             "tolerations": [{"key": "j"}], "drop": None}
    assert strategic_merge(base, patch) == {
        "containers": [{"name": "b"}, {"name": "a", "image": "x", "args": ["3"]}],
        "tolerations": [{"key": "j"}]}


def test_the_cli_writes_one_file_per_object(project: sy.Project, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from shipyard.cli.main import run

    with pytest.raises(SystemExit) as exit_info:  # typer exits, with 0 on success
        run(["deploy", "render", "--overlay", "dev", "-p", str(project.root), "--image", "sy:1",
             "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 0
    files = sorted(p.name for p in (tmp_path / "out").glob("*.yaml"))
    assert "deployment-shipyard-model-server.yaml" in files and "manifests.yaml" in files
    stream = list(yaml.safe_load_all((tmp_path / "out" / "manifests.yaml").read_text()))
    assert len(stream) == len(files) - 1
    with pytest.raises(SystemExit) as exit_info:
        run(["deploy", "render", "--overlay", "qa", "-p", str(project.root)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "No overlay 'qa'" in err and len(err.strip().splitlines()) <= 2


@pytest.mark.parametrize("folder", ["base", "overlays/dev", "overlays/prod"])
def test_our_kustomize_build_equals_kubectl_kustomize(folder: str) -> None:
    """The Python build (used by `deploy render`) gives exactly what `kubectl kustomize` does."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        server_missing("kubectl (with its built-in kustomize)", FileNotFoundError("kubectl"))
    path = manifests_dir() / folder
    out = subprocess.run([str(kubectl), "kustomize", str(path)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    theirs = {(m["kind"], m["metadata"]["name"]): m for m in yaml.safe_load_all(out) if m}
    ours = {(m["kind"], m["metadata"]["name"]): m for m in build(path)}
    assert sorted(ours) == sorted(theirs)
    for key, manifest in ours.items():
        assert manifest == theirs[key], key
