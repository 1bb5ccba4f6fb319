"""The ml-platform rules as pulumi_policy policies: one policy per rule in `rules.RULES`.

Importing this module starts nothing: `PolicyPack(...)` (which starts the gRPC server and blocks) is constructed
only in `policies/__main__.py`. Tests drive these policies through the real analyzer servicer
(`tests/policy_pack.py`).

- Object and resource rules become `ResourceValidationPolicy`s that run `rules.check_resource` on the resource the
  engine hands over (read-only proxies, numbers as floats) and report that rule's findings.
- Stack rules become `StackValidationPolicy`s over every Kubernetes object of the stack.
- `gpu-shm-memory-volume` can also remediate (enforcement level `remediate`): it adds a memory-backed `/dev/shm`
  volume and mounts to the GPU containers that lack one (see `remediate_shm_volume`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceRemediation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import _DictProxy, _ListProxy
from pulumi_policy.secret import _DictSecretsProxy, _ListSecretsProxy

from rules import RULES, Finding, Rule, Settings, check_resource, describe, kubernetes_object
from rules.mounts import clean_path
from rules.podspecs import PodSite, pod_sites
from rules.workload import check_shm_volume
from settings import ENVIRONMENTS, SHM_MIN_SIZE_PATTERN, settings_from_config
from vocabulary.policy_rules import SHM_PATH, SHM_RULE
from vocabulary.workloads import WORKLOAD_KINDS_BY_KIND

PACK_NAME = "ml-platform"
# Every policy carries its own default (the rule's); this is only the pack-wide fallback.
PACK_ENFORCEMENT = EnforcementLevel.ADVISORY

SHM_VOLUME = "dshm"
SHM_SIZE_LIMIT = "16Gi"
# Policy-config properties (Pulumi policy-config format), with the defaults the engine fills in.
CONFIG_SCHEMAS: dict[str, PolicyConfigSchema] = {
    "gpu-shm-size-limit": PolicyConfigSchema(
        properties={
            "shmMinSize": {
                "type": "string",
                "default": "8Gi",
                "description": "Smallest /dev/shm sizeLimit that does not draw a warning (a Kubernetes quantity).",
                "pattern": SHM_MIN_SIZE_PATTERN,
            }
        }
    ),
    "no-time-slicing-in-production": PolicyConfigSchema(
        properties={
            "environment": {
                "type": "string",
                "enum": list(ENVIRONMENTS),
                "default": "dev",
                "description": "The stack's environment: time-slicing is reported on every pool in prod.",
            }
        }
    ),
}


# ---------------------------------------------------------------- validation


def rule_settings(rule: Rule, config: Mapping[str, Any]) -> Settings:
    """Settings for one policy from its config (`args.get_config()`: the properties, enforcement excluded).

    The engine applies the enforcement level; inside the pack every other rule is disabled so that
    `check_resource` runs this rule only.
    """
    settings = settings_from_config({rule.id: {k: v for k, v in config.items() if k != "enforcementLevel"}})
    disabled: dict[str, Any] = {other.id: "disabled" for other in RULES if other.id != rule.id}
    return dataclasses.replace(settings, enforcement=disabled)


def violation_message(rule: Rule, finding: Finding) -> str:
    return f"{finding.object}: {finding.message}\nremediation: {rule.remediation}"


def _validate_resource(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        settings = rule_settings(rule, args.get_config())
        for finding in check_resource(args.resource_type, args.name, args.props, settings):
            if finding.rule == rule.id:
                report_violation(violation_message(rule, finding), None)

    return validate


def _validate_stack(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    on_stack = rule.on_stack
    assert on_stack is not None

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        settings = rule_settings(rule, args.get_config())
        objects: list[tuple[Mapping[str, Any], str]] = []
        for resource in args.resources:
            obj = kubernetes_object(resource.resource_type, resource.props)
            if obj is not None:
                objects.append((obj, resource.urn))
        for finding in on_stack([obj for obj, _ in objects], settings):
            if finding.rule == rule.id:
                # The offending object's resource, so that the CLI lists the violation under it.
                urn = next((u for obj, u in objects if describe(obj) == finding.object), None)
                report_violation(violation_message(rule, finding), urn)

    return validate


def build_policies() -> list[Policy]:
    """One policy per rule, named by the rule id, at the rule's default enforcement level."""
    policies: list[Policy] = []
    for rule in RULES:
        common: dict[str, Any] = {
            "name": rule.id,
            "description": rule.description,
            "enforcement_level": EnforcementLevel(rule.default),
            "config_schema": CONFIG_SCHEMAS.get(rule.id),
            "remediation_steps": rule.remediation,
        }
        if rule.on_stack is not None:
            if rule.on_object is not None or rule.on_resource is not None:
                raise ValueError(f"{rule.id}: a rule is either a stack rule or an object/resource rule")
            policies.append(StackValidationPolicy(validate=_validate_stack(rule), **common))
        else:
            remediate = _remediate if rule.id == SHM_RULE else None
            policies.append(ResourceValidationPolicy(validate=_validate_resource(rule), remediate=remediate, **common))
    return policies


# ---------------------------------------------------------------- remediation

_PROXIES = (_DictProxy, _ListProxy, _DictSecretsProxy, _ListSecretsProxy)


def thaw(value: Any) -> Any:
    """A plain dict/list copy of engine props (read-only proxies), keeping `Secret` markers so that a remediation
    does not turn a secret input into plain text."""
    if isinstance(value, Secret):
        return Secret(thaw(value.value))
    if isinstance(value, _PROXIES):
        return thaw(value["__target"])  # the raw target: still holds the Secret markers
    if isinstance(value, Mapping):
        return {str(k): thaw(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [thaw(v) for v in value]
    return value


def _memory_volume(name: str) -> dict[str, Any]:
    return {"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE_LIMIT}}


def _is_memory(volume: Any) -> bool:
    empty_dir = volume.get("emptyDir") if isinstance(volume, dict) else None
    return isinstance(empty_dir, dict) and empty_dir.get("medium") == "Memory"


def _is_shm_path(path: Any) -> bool:
    """/dev/shm for the container runtime (it compares cleaned paths: "/dev/shm/", "//dev/shm", "/dev/../dev/shm"),
    resolved exactly here: the remediation only rewrites what certainly is /dev/shm."""
    return isinstance(path, str) and bool(path) and clean_path(path) == SHM_PATH


def _all_containers(site: PodSite) -> list[dict[str, Any]]:
    """Every container of the pod spec that can mount a volume (ephemeral containers too)."""
    found = [c.spec for c in site.containers if isinstance(c.spec, dict)]
    more = site.spec.get("ephemeralContainers")
    return found + [c for c in (more if isinstance(more, list) else []) if isinstance(c, dict)]


def _mounts(container: dict[str, Any]) -> list[Any]:
    mounts = container.get("volumeMounts")
    return mounts if isinstance(mounts, list) else []


class _Uses:
    """Who mounts each volume of a pod spec, and where: built once and kept up to date as the remediation names or
    adds mounts, so that asking about every mount stays linear (10,000 mounts each scanning 10,000 would not)."""

    def __init__(self, everyone: list[dict[str, Any]]) -> None:
        self.by_name: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.answers: dict[str, dict[frozenset[int], bool]] = {}  # by volume name, then by users asked about
        for container in everyone:
            for mount in _mounts(container):
                if isinstance(mount, dict) and isinstance(mount.get("name"), str):
                    self.add(container, mount)

    def add(self, container: dict[str, Any], mount: dict[str, Any]) -> None:
        name = mount["name"]
        self.by_name.setdefault(name, []).append((id(container), mount))
        self.answers.pop(name, None)

    def only_shm_users(self, name: str, users: frozenset[int]) -> bool:
        """True when every mount of volume `name` in the pod is a /dev/shm mount of a container in `users` (ids)."""
        answers = self.answers.setdefault(name, {})
        if users not in answers:
            answers[users] = all(
                _is_shm_path(mount.get("mountPath")) and container in users
                for container, mount in self.by_name.get(name, ())
            )
        return answers[users]


def _fix_pod_spec(site: PodSite, offending: set[str]) -> bool:
    """Give the offending containers of one pod spec (a plain dict: changes land in the props) a memory /dev/shm.

    What cannot be fixed safely (a volume other containers also use, two volumes of one name) is left as it is:
    validation then reports it."""
    pod_spec = site.spec
    volumes = pod_spec.get("volumes") if isinstance(pod_spec, dict) else None
    volumes = [] if volumes is None else volumes
    if not isinstance(pod_spec, dict) or not isinstance(volumes, list):
        return False  # e.g. unknown during preview: leave it to validation
    everyone = _all_containers(site)
    gpu = [c.spec for c in site.containers if c.name in offending and isinstance(c.spec, dict)]
    uses = _Uses(everyone)
    everyone_ids, gpu_ids = frozenset(map(id, everyone)), frozenset(map(id, gpu))
    # Volumes without a name cannot be mounted: they are left alone and never reused.
    by_name: dict[str, list[int]] = {}
    for i, v in enumerate(volumes):
        if isinstance(v, dict) and isinstance(v.get("name"), str) and v["name"]:
            by_name.setdefault(v["name"], []).append(i)
    changed = False

    def set_volume(name: str) -> None:
        if name in by_name:
            volumes[by_name[name][0]] = _memory_volume(name)
        else:
            by_name[name] = [len(volumes)]
            volumes.append(_memory_volume(name))

    def memory(name: str) -> bool:
        """The only volume of that name is a memory emptyDir."""
        return len(by_name.get(name, ())) == 1 and _is_memory(volumes[by_name[name][0]])

    chosen: str | None = None

    def memory_volume() -> str:
        """A memory `dshm` that only serves /dev/shm, or a new one under a free name (shared by the containers)."""
        nonlocal chosen
        if chosen is None:
            name, n = SHM_VOLUME, 0
            while name in by_name and not (memory(name) and uses.only_shm_users(name, everyone_ids)):
                n += 1
                name = f"{SHM_VOLUME}-{n}"
            if name not in by_name:
                set_volume(name)
            chosen = name
        return chosen

    for container in gpu:
        mounts = container.get("volumeMounts")
        mounts = [] if mounts is None else mounts
        if not isinstance(mounts, list):
            continue
        at_shm = [m for m in mounts if isinstance(m, dict) and _is_shm_path(m.get("mountPath"))]
        if not at_shm:
            mounts.append({"name": memory_volume(), "mountPath": SHM_PATH})
            uses.add(container, mounts[-1])
            container["volumeMounts"] = mounts
            changed = True
            continue
        for mount in at_shm:
            name = mount.get("name")
            if not isinstance(name, str) or not name:
                mount["name"] = memory_volume()  # a mount must name a volume: ours
                uses.add(container, mount)
                changed = True
            elif not memory(name) and len(by_name.get(name, ())) <= 1 and uses.only_shm_users(name, gpu_ids):
                # Not memory-backed (or missing), and nothing else uses it: make it the memory emptyDir. A volume
                # other containers use is left, and validation fails.
                set_volume(name)
                changed = True
        exact = [m for m in mounts if isinstance(m, dict) and m.get("mountPath") == SHM_PATH]
        if len(at_shm) == 1 and not exact:
            # The same directory for the runtime, written as KubeRay compares it (else it adds a second mount).
            at_shm[0]["mountPath"] = SHM_PATH
            changed = True
    if changed:
        pod_spec["volumes"] = volumes
    return changed


def remediate_shm_volume(resource_type: str, props: Mapping[str, Any]) -> dict[str, Any] | None:
    """New props with a memory-backed /dev/shm for every GPU container `gpu-shm-memory-volume` reports, or None
    when there is nothing to change (not a workload kind, no finding, or nothing that can be fixed safely)."""
    obj = kubernetes_object(resource_type, props)
    if obj is None or obj.get("kind") not in WORKLOAD_KINDS_BY_KIND:
        return None
    offending: dict[str, set[str]] = {}
    for finding in check_shm_volume(obj, Settings()):
        if finding.site is not None and finding.container is not None:
            offending.setdefault(finding.site, set()).add(finding.container)
    if not offending:
        return None
    new_props = thaw(props)
    changed = False
    # The object of the copy shares its nested dicts: the pod specs found in it are the ones to change.
    for site in pod_sites(kubernetes_object(resource_type, new_props) or {}):
        if site.path in offending:
            changed |= _fix_pod_spec(site, offending[site.path])
    return new_props if changed else None


def _remediate_props(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    return remediate_shm_volume(args.resource_type, args.props)


# `ResourceRemediation` is annotated as returning an awaitable, but the servicer (`_PolicyAnalyzerServicer.Remediate`)
# also takes a plain mapping (`elif result is not None: new_props = result`); tests/policies/test_policy_pack.py
# checks it.
_remediate = cast(ResourceRemediation, _remediate_props)
