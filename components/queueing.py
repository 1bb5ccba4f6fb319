"""Kueue objects built from the resolved pools and the teams (no Pulumi: the Kueue and Teams layers register them,
tests and the plan invariants read them).

- A ResourceFlavor per kind of GPU quota: whole GPUs per model (node label `ml-platform.io/gpu`), MIG slices per
  resource name; each carries the GPU toleration, which Kueue adds to the pods it admits. `default` holds CPU and
  memory.
- Per team a ClusterQueue in one cohort: nominal quota from `gpuQuota`, borrowing limit from `gpuBorrowingLimit`;
  reclaiming lent GPUs preempts borrowers, and within a team a higher priority preempts a lower one. CPU and memory
  are not borrowed: the namespace's ResourceQuota bounds them anyway.
- `ml-platform-spare`: a ClusterQueue in the cohort with the GPUs no team is promised (the pools' capacity at
  maxNodes less the teams' quotas) and no LocalQueue: it only lends, so teams can borrow beyond the capacity other
  teams leave idle, up to their borrowing limits.
- Per team a LocalQueue `default`, the queue users submit to.
- WorkloadPriorityClasses mirroring the PriorityClasses.
"""

from __future__ import annotations

from typing import Any

from components.config.teams import Team
from components.gpu_pools import ResolvedGpuPool
from components.team_quotas import capacity_rows, gpu_borrowing, gpu_quota, team_pools
from vocabulary.labels import GPU_TAINT_KEY, LABEL_GPU, LABEL_TEAM, MANAGED_BY
from vocabulary.priorities import PRIORITY_CLASS_NAMES, PRIORITY_DESCRIPTIONS, PRIORITY_VALUES
from vocabulary.queues import COHORT, CPU_FLAVOR, LOCAL_QUEUE, SPARE_QUEUE
from vocabulary.resources import GPU_RESOURCE

KUEUE_API = "kueue.x-k8s.io/v1beta2"
GPU_TOLERATION = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "labels": dict(MANAGED_BY), **extra}


def flavor_resources(pools: tuple[ResolvedGpuPool, ...]) -> dict[str, str]:
    """GPU flavor -> the one resource it holds quota for, over all pools."""
    return {flavor: resource for pool in pools for resource, flavor in pool.kueue_flavors.items()}


def resource_flavors(pools: tuple[ResolvedGpuPool, ...]) -> list[dict[str, Any]]:
    flavors = [{"apiVersion": KUEUE_API, "kind": "ResourceFlavor", "metadata": _meta(CPU_FLAVOR), "spec": {}}]
    for flavor, resource in sorted(flavor_resources(pools).items()):
        spec: dict[str, Any] = {"tolerations": [dict(GPU_TOLERATION)]}
        if resource == GPU_RESOURCE:
            spec["nodeLabels"] = {LABEL_GPU: flavor}
        flavors.append({"apiVersion": KUEUE_API, "kind": "ResourceFlavor", "metadata": _meta(flavor), "spec": spec})
    return flavors


def workload_priority_classes() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": KUEUE_API,
            "kind": "WorkloadPriorityClass",
            "metadata": _meta(name),
            "value": PRIORITY_VALUES[name],
            "description": PRIORITY_DESCRIPTIONS[name],
        }
        for name in PRIORITY_CLASS_NAMES
    ]


def team_flavor_quotas(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, tuple[str, int, int]]:
    """GPU flavor -> (resource, nominal quota, borrowing limit) for every GPU flavor the team's pools offer."""
    quota, borrowing = gpu_quota(team, pools), gpu_borrowing(team, pools)
    out: dict[str, tuple[str, int, int]] = {}
    for pool in team_pools(team, pools):
        keys = {resource: key for key, resource in pool.quota_keys.items()}
        for resource, flavor in pool.kueue_flavors.items():
            key = keys[resource]
            out[flavor] = (resource, quota.get(key, 0), borrowing.get(key, 0))
    return out


def cluster_queue(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> dict[str, Any]:
    r = team.resources
    cpu_memory = {
        "coveredResources": ["cpu", "memory"],
        "flavors": [
            {
                "name": CPU_FLAVOR,
                "resources": [
                    {"name": "cpu", "nominalQuota": r.cpu, "borrowingLimit": "0"},
                    {"name": "memory", "nominalQuota": r.memory, "borrowingLimit": "0"},
                ],
            }
        ],
    }
    # One resource group per GPU resource: its flavors list exactly that resource (every flavor of a group must
    # list every resource the group covers, and a MIG flavor offers no whole GPUs).
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for flavor, (resource, nominal, borrow) in sorted(team_flavor_quotas(team, pools).items()):
        amounts = {"name": resource, "nominalQuota": nominal, "borrowingLimit": borrow}
        by_resource.setdefault(resource, []).append({"name": flavor, "resources": [amounts]})
    groups = [cpu_memory] + [
        {"coveredResources": [resource], "flavors": flavors} for resource, flavors in sorted(by_resource.items())
    ]
    spec = {
        "cohortName": COHORT,
        # Only the team's namespace may point a LocalQueue at it (users cannot label namespaces).
        "namespaceSelector": {"matchLabels": {LABEL_TEAM: team.name}},
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": groups,
        "preemption": {
            # GPUs lent to another team come back: its borrowing workloads are preempted.
            "reclaimWithinCohort": "Any",
            "borrowWithinCohort": {"policy": "Never"},
            "withinClusterQueue": "LowerPriority",
        },
    }
    meta = _meta(team.name)
    meta["labels"][LABEL_TEAM] = team.name
    return {"apiVersion": KUEUE_API, "kind": "ClusterQueue", "metadata": meta, "spec": spec}


def local_queue(team: Team) -> dict[str, Any]:
    meta = _meta(LOCAL_QUEUE, namespace=team.name)
    meta["labels"][LABEL_TEAM] = team.name
    return {"apiVersion": KUEUE_API, "kind": "LocalQueue", "metadata": meta, "spec": {"clusterQueue": team.name}}


def spare_queue(teams: list[Team], pools: tuple[ResolvedGpuPool, ...]) -> dict[str, Any] | None:
    """The unpromised GPUs as a ClusterQueue that only lends (no namespaceSelector: no LocalQueue may use it)."""
    flavor_of = {key: flavor for pool in pools for key, flavor in _key_flavors(pool).items()}
    # One group per resource, as in the teams' queues; several keys can share a resource (two GPU models).
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for row in capacity_rows(teams, pools):
        if (spare := row.available - row.promised) > 0:
            amounts = [{"name": row.resource, "nominalQuota": spare}]
            by_resource.setdefault(row.resource, []).append({"name": flavor_of[row.key], "resources": amounts})
    if not by_resource:
        return None
    groups = [{"coveredResources": [r], "flavors": flavors} for r, flavors in sorted(by_resource.items())]
    spec = {"cohortName": COHORT, "resourceGroups": groups}
    return {"apiVersion": KUEUE_API, "kind": "ClusterQueue", "metadata": _meta(SPARE_QUEUE), "spec": spec}


def _key_flavors(pool: ResolvedGpuPool) -> dict[str, str]:
    """Quota key -> flavor of one pool (both follow the resource it advertises)."""
    return {key: pool.kueue_flavors[resource] for key, resource in pool.quota_keys.items()}
