"""`Teams`: the cluster's PriorityClasses, and per team a namespace with its quotas, defaults, access and network
isolation.

Plain functions (config and pool facts in, dicts out) build every object; the layer only registers them. A team's
GPU quota is per GPU model (whole GPUs) and per MIG resource; ResourceQuota can only count resource names, so it
holds the sum per resource name (`requests.nvidia.com/gpu`, `requests.nvidia.com/mig-1g.10gb`, ...).
"""

from __future__ import annotations

from typing import Any

from components.config.teams import Team
from components.gpu_pools import ResolvedGpuPool
from components.kube import register_all
from components.layer import Layer
from components.team_quotas import gpu_requests
from vocabulary.labels import LABEL_TEAM, MANAGED_BY
from vocabulary.namespaces import MONITORING_NAMESPACE
from vocabulary.priorities import (
    NEVER_PREEMPTING,
    PRIORITY_CLASS_NAMES,
    PRIORITY_DESCRIPTIONS,
    PRIORITY_VALUES,
    RESTRICTED_PRIORITY,
    PriorityClassName,
)

# Containers that set nothing still land with sane requests (so the scheduler and the quota count them). No default
# limits: the LimitRanger gives a container without a limit the default one, and a container that requests more
# memory than that (a 64Gi data loader) is then rejected as request > limit. No CPU limit either: throttling starves
# data loaders.
LIMIT_RANGE_DEFAULTS = {"defaultRequest": {"cpu": "250m", "memory": "512Mi"}}


def priority_classes() -> list[dict[str, Any]]:
    """Cluster-wide; none is the global default, so a pod without one gets its team's (or 0)."""
    return [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name, "labels": dict(MANAGED_BY)},
            "value": PRIORITY_VALUES[name],
            "globalDefault": False,
            "preemptionPolicy": "Never" if name in NEVER_PREEMPTING else "PreemptLowerPriority",
            "description": PRIORITY_DESCRIPTIONS[name],
        }
        for name in PRIORITY_CLASS_NAMES
    ]


def allowed_priorities(team: Team) -> list[PriorityClassName]:
    if team.priority_classes is not None:
        return list(dict.fromkeys([*team.priority_classes, team.priority]))
    floor = PRIORITY_VALUES[team.priority]
    return [
        name
        for name in PRIORITY_CLASS_NAMES
        if PRIORITY_VALUES[name] <= floor and (name != RESTRICTED_PRIORITY or team.priority == RESTRICTED_PRIORITY)
    ]


def namespace(team: Team) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": team.name,
            "labels": {
                **MANAGED_BY,
                LABEL_TEAM: team.name,  # quotas, network policies and cost showback select on it
                # GPU workloads need no privileges: baseline is enforced, restricted reported.
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
            },
        },
    }


def _namespaced(kind: str, api_version: str, name: str, team: Team, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": team.name, "labels": {**MANAGED_BY, LABEL_TEAM: team.name}}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **spec}


def resource_quota(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, Any]:
    """The hard backstop: GPUs per resource name (quota counts extended resources by request only), CPU, memory,
    storage and pods."""
    r = team.resources
    hard: dict[str, str] = {
        "requests.cpu": r.cpu,
        "requests.memory": r.memory,
        "requests.storage": r.storage,
        "pods": str(r.pods),
    }
    hard |= {f"requests.{resource}": str(count) for resource, count in sorted(gpu_requests(team, pools).items())}
    return _namespaced("ResourceQuota", "v1", "team-quota", team, {"spec": {"hard": hard}})


def priority_quotas(team: Team) -> list[dict[str, Any]]:
    """A PriorityClass the team may not use gets a quota of 0 pods scoped to it: the API server then rejects such
    pods in this namespace (the Kubernetes way to restrict who uses a class)."""
    allowed = allowed_priorities(team)
    return [
        _namespaced(
            "ResourceQuota",
            "v1",
            f"no-{name}",
            team,
            {
                "spec": {
                    "hard": {"pods": "0"},
                    "scopeSelector": {
                        "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": [name]}]
                    },
                }
            },
        )
        for name in PRIORITY_CLASS_NAMES
        if name not in allowed
    ]


def limit_range(team: Team) -> dict[str, Any]:
    return _namespaced(
        "LimitRange",
        "v1",
        "container-defaults",
        team,
        {"spec": {"limits": [{"type": "Container", **LIMIT_RANGE_DEFAULTS}]}},
    )


def role_bindings(team: Team) -> list[dict[str, Any]]:
    """The team's groups edit its namespace (Kubernetes' built-in `edit` ClusterRole, bound per namespace)."""
    if not team.groups:
        return []
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in team.groups]
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}
    spec = {"subjects": subjects, "roleRef": role_ref}
    return [_namespaced("RoleBinding", "rbac.authorization.k8s.io/v1", "team-edit", team, spec)]


def network_policies(team: Team) -> list[dict[str, Any]]:
    """Ingress denied by default; allowed from the same namespace and from the monitoring namespace (Prometheus
    scrapes). Egress is left open (images, datasets, checkpoints)."""
    api = "networking.k8s.io/v1"

    def policy(name: str, ingress: list[dict[str, Any]] | None) -> dict[str, Any]:
        spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"]}
        if ingress is not None:
            spec["ingress"] = ingress
        return _namespaced("NetworkPolicy", api, name, team, {"spec": spec})

    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}
    return [
        policy("default-deny-ingress", None),
        policy("allow-same-namespace", [{"from": [{"podSelector": {}}]}]),
        policy("allow-monitoring", [{"from": [monitoring]}]),
    ]


def team_objects(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> list[dict[str, Any]]:
    return [
        namespace(team),
        resource_quota(team, pools),
        *priority_quotas(team),
        limit_range(team),
        *role_bindings(team),
        *network_policies(team),
    ]


class Teams(Layer[list[Team]]):
    """PriorityClasses, then every team's namespace and the objects inside it."""

    TYPE = "ml-platform:teams:Teams"

    def build(self) -> dict[str, Any]:
        classes = register_all(priority_classes(), self.in_cluster())
        pools = self.handle.gpu_pools
        for team in self.section:
            [ns, *inside] = team_objects(team, pools)
            [created] = register_all([ns], self.in_cluster())
            register_all(inside, self.in_cluster(created, *classes))
        return {"teams": [t.name for t in self.section]}
