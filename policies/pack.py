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
from rules.podspecs import PodSite, pod_sites
from rules.workload import check_shm_volume
from settings import settings_from_config
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
                "pattern": r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$",
            }
        }
    ),
    "no-time-slicing-in-production": PolicyConfigSchema(
        properties={
            "environment": {
                "type": "string",
                "enum": ["dev", "staging", "prod"],
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
    return str(path or "").rstrip("/") == SHM_PATH


def _all_containers(site: PodSite) -> list[dict[str, Any]]:
    """Every container of the pod spec that can mount a volume (ephemeral containers too)."""
    found = [c.spec for c in site.containers if isinstance(c.spec, dict)]
    more = site.spec.get("ephemeralContainers")
    return found + [c for c in (more if isinstance(more, list) else []) if isinstance(c, dict)]


def _mounts(container: dict[str, Any]) -> list[Any]:
    mounts = container.get("volumeMounts")
    return mounts if isinstance(mounts, list) else []


def _only_shm_users(name: str, users: list[dict[str, Any]], everyone: list[dict[str, Any]]) -> bool:
    """True when every mount of volume `name` in the pod is a /dev/shm mount of one of `users`."""
    for container in everyone:
        for mount in _mounts(container):
            if (
                isinstance(mount, dict)
                and mount.get("name") == name
                and (not _is_shm_path(mount.get("mountPath")) or not any(container is u for u in users))
            ):
                return False
    return True


def _fix_pod_spec(site: PodSite, offending: set[str]) -> bool:
    """Give the offending containers of one pod spec (a plain dict: changes land in the props) a memory /dev/shm."""
    pod_spec = site.spec
    volumes = pod_spec.get("volumes", [])
    if not isinstance(pod_spec, dict) or not isinstance(volumes, list):
        return False  # e.g. unknown during preview: leave it to validation
    everyone = _all_containers(site)
    gpu = [c.spec for c in site.containers if c.name in offending and isinstance(c.spec, dict)]
    by_name = {str(v.get("name")): i for i, v in enumerate(volumes) if isinstance(v, dict)}
    changed = False

    def set_volume(name: str) -> None:
        if name in by_name:
            volumes[by_name[name]] = _memory_volume(name)
        else:
            by_name[name] = len(volumes)
            volumes.append(_memory_volume(name))

    new_volume: str | None = None
    for container in gpu:
        mounts = container.get("volumeMounts", [])
        if not isinstance(mounts, list):
            continue
        at_shm = next((m for m in mounts if isinstance(m, dict) and _is_shm_path(m.get("mountPath"))), None)
        if at_shm is None:
            if new_volume is None:
                # Reuse a memory `dshm` that only serves /dev/shm; otherwise add one under a free name.
                new_volume, n = SHM_VOLUME, 0
                while new_volume in by_name and not (
                    _is_memory(volumes[by_name[new_volume]]) and _only_shm_users(new_volume, everyone, everyone)
                ):
                    n += 1
                    new_volume = f"{SHM_VOLUME}-{n}"
                if new_volume not in by_name:
                    set_volume(new_volume)
            mounts.append({"name": new_volume, "mountPath": SHM_PATH})
            container["volumeMounts"] = mounts
            changed = True
        else:
            # Something not memory-backed (or missing) is mounted at /dev/shm: make it the memory emptyDir only
            # when no other container uses that volume; otherwise leave it and let validation fail.
            name = str(at_shm.get("name"))
            if _only_shm_users(name, gpu, everyone):
                set_volume(name)
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
