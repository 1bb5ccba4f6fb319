"""Workload invariants: what the platform itself declares for users to run (a team's shared RayCluster, and the
training runtimes and examples to come) passes the mandatory GPU policies and lands: on a queue that exists, on a
pool that exists and offers the GPUs it requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rules import RULES, Settings
from tools.invariants.base import Invariant, Violation
from tools.invariants.plan import PlanView
from vocabulary.labels import GPU_TAINT_KEY, LABEL_GPU, LABEL_POOL
from vocabulary.queues import QUEUE_LABEL
from vocabulary.resources import is_gpu_resource
from vocabulary.workloads import WORKLOAD_KINDS_BY_KIND

MANDATORY = tuple(rule for rule in RULES if rule.default == "mandatory" and rule.on_object is not None)


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


def check_mandatory_policies(plan: PlanView) -> Iterator[Violation]:
    """The platform's own workloads must pass what it enforces on everyone's (the cluster would refuse them)."""
    settings = Settings(environment=plan.config.environment)
    for resource in plan.resources:
        obj = resource.object
        if obj is None or obj.get("kind") not in WORKLOAD_KINDS_BY_KIND:
            continue
        for rule in MANDATORY:
            assert rule.on_object is not None
            for finding in rule.on_object(obj, settings):
                yield Violation("platform-workloads-pass-policies", _name(obj), f"{rule.id}: {finding.message}")


def _ray_pod_templates(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj.get("spec", {})
    yield spec.get("headGroupSpec", {}).get("template", {})
    for group in spec.get("workerGroupSpecs", []):
        yield group.get("template", {})


def check_ray_clusters_land(plan: PlanView) -> Iterator[Violation]:
    """A RayCluster on a LocalQueue that does not exist is never admitted; GPU workers on a pool that does not exist
    (or whose nodes do not offer what they request, or whose taint they do not tolerate) never start."""
    queues = {(o["metadata"].get("namespace"), o["metadata"].get("name")) for o in plan.objects("LocalQueue")}
    pools = {pool.name: pool for pool in plan.pools}
    for cluster in plan.objects("RayCluster"):
        meta = cluster.get("metadata", {})
        queue = (meta.get("labels") or {}).get(QUEUE_LABEL)
        if queue is not None and (meta.get("namespace"), queue) not in queues:
            yield Violation("ray-clusters-land", _name(cluster), f"is on LocalQueue {queue}, not planned there")
        for template in _ray_pod_templates(cluster):
            pod = template.get("spec", {})
            wanted = {
                key
                for c in pod.get("containers", [])
                for key in (c.get("resources", {}).get("limits") or {})
                if is_gpu_resource(key)
            }
            if not wanted:
                continue
            pool = pools.get((pod.get("nodeSelector") or {}).get(LABEL_POOL, ""))
            if pool is None:
                yield Violation("ray-clusters-land", _name(cluster), "GPU workers select no planned GPU pool")
                continue
            model = (pod.get("nodeSelector") or {}).get(LABEL_GPU)
            if model is not None and model != pool.model.key:
                yield Violation(
                    "ray-clusters-land",
                    _name(cluster),
                    f"GPU workers select GPU model {model} on pool {pool.name}, whose nodes are {pool.model.key}",
                )
            if not wanted <= set(pool.advertised):
                yield Violation(
                    "ray-clusters-land",
                    _name(cluster),
                    f"GPU workers request {', '.join(sorted(wanted))}, which pool {pool.name} does not offer",
                )
            if not any(t.get("key") == GPU_TAINT_KEY for t in pod.get("tolerations", [])):
                yield Violation(
                    "ray-clusters-land", _name(cluster), f"GPU workers do not tolerate pool {pool.name}'s GPU taint"
                )


def check_runtimes_land(plan: PlanView) -> Iterator[Violation]:
    """A training runtime whose pods select nodes no pool has, or do not tolerate the GPU taint, runs nowhere."""
    nodes = [pool.node_labels(c, "operator") for pool in plan.pools for c in pool.capacity_types]
    for runtime in plan.objects("ClusterTrainingRuntime"):
        jobs = runtime.get("spec", {}).get("template", {}).get("spec", {}).get("replicatedJobs", [])
        for job in jobs:
            pod = job.get("template", {}).get("spec", {}).get("template", {}).get("spec", {})
            selector = pod.get("nodeSelector") or {}
            if plan.pools and not any(all(labels.get(k) == v for k, v in selector.items()) for labels in nodes):
                yield Violation("runtimes-land", _name(runtime), f"its pods select {selector}, which no GPU pool has")
            if plan.pools and not any(t.get("key") == GPU_TAINT_KEY for t in pod.get("tolerations", [])):
                yield Violation("runtimes-land", _name(runtime), "its pods do not tolerate the GPU pools' taint")


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "platform-workloads-pass-policies",
        "Every workload the platform declares (Ray clusters, runtimes) passes the mandatory GPU policies.",
        check_mandatory_policies,
    ),
    Invariant(
        "ray-clusters-land",
        "Every RayCluster the platform declares is on a planned LocalQueue, and its GPU workers select a planned pool "
        "that offers what they request and tolerate its taint.",
        check_ray_clusters_land,
    ),
    Invariant(
        "runtimes-land",
        "Every training runtime the platform declares selects nodes a GPU pool has and tolerates their taint.",
        check_runtimes_land,
    ),
)
