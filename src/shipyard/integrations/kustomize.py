"""A small kustomize in Python: resources, namespace, labels, images, replicas and
strategic-merge patches — the subset deploy/kubernetes uses, so rendering needs no kubectl.

It follows `kubectl kustomize` for what it supports (tests compare the two where kubectl is
installed) and refuses any other kustomization field instead of ignoring it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from shipyard.core.errors import ConfigError

Manifest = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas",
             "patches"}
# list fields merged item by item (by this key) in a strategic-merge patch; others replace
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name",
              "topologySpreadConstraints": "topologyKey"}
# kinds without a namespace of their own
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                 "StorageClass", "PriorityClass", "CustomResourceDefinition"}
_POD_TEMPLATE_PATHS = {"Deployment": ("spec", "template"), "StatefulSet": ("spec", "template"),
                       "DaemonSet": ("spec", "template"), "Job": ("spec", "template"),
                       "CronJob": ("spec", "jobTemplate", "spec", "template")}


def load_yaml_documents(path: Path) -> list[Manifest]:
    """The non-empty YAML documents of a file."""
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}", hint="Fix its syntax.") from exc


def build(folder: Path) -> list[Manifest]:
    """The manifests of the kustomization in `folder`, as `kubectl kustomize` would emit them."""
    folder = Path(folder)
    config_path = folder / "kustomization.yaml"
    if not config_path.is_file():
        raise ConfigError(f"No kustomization.yaml in {str(folder)!r}.",
                          hint="Pass a kustomize base or overlay folder.")
    docs = load_yaml_documents(config_path)
    config = docs[0] if docs else {}
    unknown = sorted(set(config) - SUPPORTED)
    if unknown:
        raise ConfigError(f"{config_path} uses {', '.join(unknown)}, which Shipyard's renderer "
                          "does not support.", hint=f"Use only {', '.join(sorted(SUPPORTED))}.")
    manifests: list[Manifest] = []
    for entry in config.get("resources", []):
        target = (folder / entry).resolve()
        manifests.extend(build(target) if target.is_dir() else load_yaml_documents(target))
    for patch in config.get("patches", []):
        for doc in load_yaml_documents(folder / patch["path"]):
            _apply_patch(manifests, doc, folder / patch["path"])
    for rule in config.get("replicas", []):
        _find(manifests, None, rule["name"], folder)["spec"]["replicas"] = int(rule["count"])
    for rule in config.get("labels", []):
        for manifest in manifests:
            _add_labels(manifest, rule.get("pairs", {}), bool(rule.get("includeTemplates")))
    if "namespace" in config:
        for manifest in manifests:
            set_namespace(manifest, config["namespace"])
    for image in config.get("images", []):
        for manifest in manifests:
            set_image(manifest, image["name"], image.get("newName"), image.get("newTag"))
    return manifests


def pod_spec(manifest: Manifest) -> Manifest | None:
    """The pod spec inside a workload (Deployment, Job, CronJob, ...), or None."""
    path = _POD_TEMPLATE_PATHS.get(manifest.get("kind", ""))
    if path is None:
        return None
    node: Any = manifest
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node.get("spec") if isinstance(node, dict) else None


def set_image(manifest: Manifest, name: str, new_name: str | None, new_tag: str | None) -> None:
    """Replace the image `name` (with or without a tag) in every container, like `images:`."""
    spec = pod_spec(manifest)
    for container in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
        image = container.get("image", "")
        base, _, tag = image.partition(":") if "@" not in image else (image, "", "")
        if base != name:
            continue
        container["image"] = f"{new_name or base}:{new_tag or tag}" if (new_tag or tag) else (
            new_name or base)


def set_namespace(manifest: Manifest, namespace: str) -> None:
    """Move a namespaced object into `namespace` (and its RoleBinding subjects, like kustomize)."""
    if manifest.get("kind") in CLUSTER_KINDS:
        return
    manifest.setdefault("metadata", {})["namespace"] = namespace
    if manifest.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
        for subject in manifest.get("subjects", []):
            if subject.get("kind") == "ServiceAccount":
                subject["namespace"] = namespace


def _add_labels(manifest: Manifest, pairs: dict[str, str], templates: bool) -> None:
    manifest.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    if templates and (path := _POD_TEMPLATE_PATHS.get(manifest.get("kind", ""))):
        node: Any = manifest
        for key in path:
            node = node.setdefault(key, {})
        node.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _find(manifests: list[Manifest], kind: str | None, name: str, where: Path) -> Manifest:
    for manifest in manifests:
        if manifest.get("metadata", {}).get("name") == name and kind in (None, manifest["kind"]):
            return manifest
    raise ConfigError(f"{where} refers to {kind or 'an object'} {name!r}, which no resource "
                      "defines.", hint="Fix the name, or add the resource to `resources:`.")


def _apply_patch(manifests: list[Manifest], patch: Manifest, where: Path) -> None:
    target = _find(manifests, patch.get("kind"), patch.get("metadata", {}).get("name", ""), where)
    merged = strategic_merge(target, patch)
    target.clear()
    target.update(merged)


def strategic_merge(base: Any, patch: Any, field: str | None = None) -> Any:
    """Merge `patch` into `base`: maps key by key, keyed lists item by item, others replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)  # `key: null` deletes, as in kustomize
            elif key in out:
                out[key] = strategic_merge(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    merge_key = MERGE_KEYS.get(field or "")
    if isinstance(base, list) and isinstance(patch, list) and merge_key:
        out = copy.deepcopy(base)
        index = {item.get(merge_key): i for i, item in enumerate(out) if isinstance(item, dict)}
        added = []
        for item in patch:
            key = item.get(merge_key) if isinstance(item, dict) else None
            if key in index:
                out[index[key]] = strategic_merge(out[index[key]], item)
            else:
                added.append(copy.deepcopy(item))
        return added + out  # kustomize puts the patch's new items first
    return copy.deepcopy(patch)


def dump(manifests: list[Manifest]) -> str:
    """The manifests as one multi-document YAML stream."""
    return "---\n".join(yaml.safe_dump(m, sort_keys=False, width=100) for m in manifests)
