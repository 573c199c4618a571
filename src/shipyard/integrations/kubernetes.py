"""Render deploy/kubernetes for one project: overlay merged, then the project filled in.

What a project changes in the templates: its files (shipyard.yaml and definitions) in the
`shipyard-project` ConfigMap, the image, the model references the model server serves, its
replicas, one CronJob (or suspended Job) per job of `jobs:` in shipyard.yaml, and the
monitoring CronJob when `monitoring.alerts` has rules.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.core.errors import ConfigError
from shipyard.integrations.kustomize import Manifest, build, dump, pod_spec

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.settings import JobConfig

PROJECT_CONFIGMAP = "shipyard-project"
MODEL_SERVER = "shipyard-model-server"
MONITOR = "shipyard-monitor"
TEMPLATES = {"materialize": "shipyard-materialize", "batch_predict": "shipyard-batch-predict",
             "spark": "shipyard-spark-batch-scoring"}
CONFIGMAP_LIMIT = 1 << 20  # the API server refuses larger ConfigMaps
_MODEL_REF = re.compile(r"^[A-Za-z_][\w.-]*(@[A-Za-z_][\w.-]*|/\d+)?$")
_SPARK_IMAGE = "spark.kubernetes.container.image"
_SPARK_CONF_ENV = "SHIPYARD_SPARK__CONF"


def manifests_dir() -> Path:
    """deploy/kubernetes: packaged with the wheel, or the source tree's in a checkout."""
    packaged = Path(__file__).with_name("kubernetes_manifests")
    if packaged.is_dir():
        return packaged
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "deploy" / "kubernetes"
        if (candidate / "base" / "kustomization.yaml").is_file():
            return candidate
    raise ConfigError("The Kubernetes manifests are not installed with this copy of Shipyard.",
                      hint="Pass --manifests PATH/TO/deploy/kubernetes.")


def overlays(manifests: Path | None = None) -> list[str]:
    """The overlay names available (folders of overlays/ with a kustomization.yaml)."""
    root = (manifests or manifests_dir()) / "overlays"
    return sorted(p.name for p in root.iterdir() if (p / "kustomization.yaml").is_file())


@dataclass(frozen=True)
class RenderOptions:
    """What `shipyard deploy render` may override; None keeps the overlay's value."""

    overlay: str = "prod"
    image: str | None = None
    models: tuple[str, ...] = ()
    replicas: int | None = None
    manifests: Path | None = None


def render(project: Project, options: RenderOptions) -> list[Manifest]:
    """The overlay's manifests with the project's files, image, models, replicas and jobs."""
    root = options.manifests or manifests_dir()
    if options.overlay not in overlays(root):
        raise ConfigError(f"No overlay {options.overlay!r} in {root / 'overlays'}.",
                          hint=f"Use one of: {', '.join(overlays(root))}.")
    manifests = build(root / "overlays" / options.overlay)
    configmap = _named(manifests, "ConfigMap", PROJECT_CONFIGMAP)
    _fill_project_files(configmap, project)
    _fill_models(manifests, _model_refs(project, options.models))
    if options.replicas is not None:
        _fill_replicas(manifests, options.replicas)
    manifests = _expand_jobs(manifests, project.settings.jobs)
    if not project.settings.monitoring.alerts:  # `shipyard monitor run` needs alert rules
        manifests = [m for m in manifests if m["metadata"]["name"] != MONITOR]
    _mount_project_files(manifests, sorted(configmap["data"]))
    for manifest in manifests:
        _set_images(manifest, options.image)
    for manifest in manifests:
        manifest["metadata"].setdefault("labels", {})["shipyard.dev/project"] = project.name
    return manifests


def write(manifests: list[Manifest], out: Path) -> list[Path]:
    """Write one file per object (`<kind>-<name>.yaml`) and an all-in-one `manifests.yaml`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for manifest in manifests:
        path = out / f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        path.write_text(dump([manifest]))
        paths.append(path)
    (out / "manifests.yaml").write_text(dump(manifests))
    return paths


def _named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    for manifest in manifests:
        if manifest["kind"] == kind and manifest["metadata"]["name"] == name:
            return manifest
    raise ConfigError(f"The overlay has no {kind} {name!r}.",
                      hint="Keep deploy/kubernetes/base in the overlay's resources.")


def _fill_project_files(configmap: Manifest, project: Project) -> None:
    from shipyard.features.discovery import python_files
    from shipyard.settings import CONFIG_FILE

    files = [project.root / CONFIG_FILE, *python_files(project.root)]
    data = {}
    for path in files:
        rel = path.relative_to(project.root).as_posix()
        data[rel.replace("/", "__")] = path.read_text()
    size = sum(len(text.encode()) for text in data.values())
    if size > CONFIGMAP_LIMIT:
        raise ConfigError(f"The project's files take {size:,} bytes; a ConfigMap holds at most "
                          f"{CONFIGMAP_LIMIT:,}.", hint="List data or generated files in "
                          ".shipyardignore, or bake the definitions into the image.")
    configmap["data"] = data


def _mount_project_files(manifests: list[Manifest], keys: list[str]) -> None:
    """Mount each ConfigMap key at its file path (nested definitions keep their folders)."""
    items = [{"key": key, "path": key.replace("__", "/")} for key in keys]
    for manifest in manifests:
        for volume in (pod_spec(manifest) or {}).get("volumes", []):
            if volume.get("configMap", {}).get("name") == PROJECT_CONFIGMAP:
                volume["configMap"]["items"] = copy.deepcopy(items)


def _model_refs(project: Project, models: tuple[str, ...]) -> list[str]:
    refs = list(models) or [d.model for d in project.settings.deployments]
    if not refs:
        raise ConfigError("The project names no model to serve.",
                          hint="Pass --model NAME@ALIAS, or list `deployments:` in shipyard.yaml.")
    for ref in refs:
        if not _MODEL_REF.match(ref):
            raise ConfigError(f"{ref!r} is not a model reference.",
                              hint="Use NAME@ALIAS (fraud@champion) or NAME/VERSION (fraud/3).")
    return refs


def _fill_models(manifests: list[Manifest], refs: list[str]) -> None:
    container = pod_spec(_named(manifests, "Deployment", MODEL_SERVER))["containers"][0]
    args, kept, skip = container.get("args", []), [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--model", "-m"):
            skip = True
        else:
            kept.append(arg)
    container["args"] = kept + [a for ref in refs for a in ("--model", ref)]


def _fill_replicas(manifests: list[Manifest], replicas: int) -> None:
    if replicas < 1:
        raise ConfigError(f"--replicas must be at least 1, not {replicas}.", hint="e.g. --replicas 3")
    _named(manifests, "Deployment", MODEL_SERVER)["spec"]["replicas"] = replicas
    for manifest in manifests:
        if (manifest["kind"] == "HorizontalPodAutoscaler"
                and manifest["spec"]["scaleTargetRef"]["name"] == MODEL_SERVER):
            spec = manifest["spec"]
            spec["minReplicas"] = replicas
            spec["maxReplicas"] = max(spec["maxReplicas"], replicas)


def _expand_jobs(manifests: list[Manifest], jobs: list[JobConfig]) -> list[Manifest]:
    """Replace the job templates with one object per job of shipyard.yaml."""
    templates = {kind: _named(manifests, "CronJob" if kind != "spark" else "Job", name)
                 for kind, name in TEMPLATES.items()}
    kept = [m for m in manifests if not any(m is t for t in templates.values())]
    if not any(j.kind == "materialize" for j in jobs):
        kept.append(templates["materialize"])  # the default: incremental, every 15 minutes
    for job in jobs:
        spark = job.engine == "spark"
        if spark:
            spark_job = templates["spark"]
            if job.cron:
                manifest = _cron_from_job(templates["batch_predict"], spark_job)
            else:
                manifest = copy.deepcopy(spark_job)
        elif job.kind == "monitor":  # the monitoring CronJob's settings, run as this job
            manifest = copy.deepcopy(_named(manifests, "CronJob", MONITOR))
        else:
            manifest = copy.deepcopy(templates[job.kind])
        slug = re.sub(r"[^a-z0-9-]+", "-", job.name.lower()).strip("-")[:40]
        manifest["metadata"]["name"] = f"shipyard-job-{slug}"
        manifest["metadata"].setdefault("labels", {})["shipyard.dev/job"] = slug
        if manifest["kind"] == "CronJob":
            manifest["spec"]["schedule"] = job.cron or "0 0 31 2 *"
            manifest["spec"]["suspend"] = job.cron is None  # manual jobs: `kubectl create job --from`
        pod_spec(manifest)["containers"][0]["args"] = ["jobs", "run", job.name]
        kept.append(manifest)
    return kept


def _cron_from_job(cron_template: Manifest, job: Manifest) -> Manifest:
    """A CronJob (the batch template's schedule settings) running the Spark Job's pod."""
    cron = copy.deepcopy(cron_template)
    job_spec = copy.deepcopy(job["spec"])
    job_spec.pop("suspend", None)
    cron["spec"]["jobTemplate"]["spec"] = job_spec
    cron["metadata"]["labels"] = {**cron["metadata"].get("labels", {}),
                                  **job["metadata"].get("labels", {})}
    return cron


def _set_images(manifest: Manifest, image: str | None) -> None:
    """Set every container's image (when given) and the Spark executors' to the same one."""
    spec = pod_spec(manifest)
    for container in (spec or {}).get("containers", []):
        if image:
            container["image"] = image
        for env in container.get("env", []):
            if env.get("name") == _SPARK_CONF_ENV:
                conf = json.loads(env["value"])
                conf[_SPARK_IMAGE] = container["image"]
                env["value"] = json.dumps(conf)
