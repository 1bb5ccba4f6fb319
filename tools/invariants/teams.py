"""Team invariants: every GPU resource a team can be scheduled onto is bounded by that team's quota; every team
can queue work (a LocalQueue in its namespace, pointing at a ClusterQueue that accepts that namespace); every
flavor a ClusterQueue names exists, and every GPU flavor with quota lands on pool nodes that offer its resource."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tools.invariants.base import Invariant, Violation
from tools.invariants.plan import PlanView

QUOTA_NAME = "team-quota"


def check_quota_covers_pools(plan: PlanView) -> Iterator[Violation]:
    """A resource with no quota key is unlimited: one team could take every GPU of that kind."""
    quotas = {
        str(obj["metadata"].get("namespace")): obj.get("spec", {}).get("hard", {})
        for obj in plan.objects("ResourceQuota")
        if obj["metadata"].get("name") == QUOTA_NAME
    }
    for team in plan.config.teams:
        hard = quotas.get(team.name)
        if hard is None:
            yield Violation("team-gpu-quota-covers-pools", f"team {team.name}", "has no team-quota ResourceQuota")
            continue
        for pool in plan.pools:
            for resource in pool.advertised:
                if f"requests.{resource}" in hard:
                    continue
                how = "may use" if team.name in pool.teams else "may not use (a bare pod would take them unbounded)"
                yield Violation(
                    "team-gpu-quota-covers-pools",
                    f"team {team.name}",
                    f"{how} GPU pool {pool.name}, whose nodes offer {resource}, but its quota does not bound "
                    f"requests.{resource}",
                )


def _labels(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata", {}).get("labels") or {}


def check_team_queues(plan: PlanView) -> Iterator[Violation]:
    """A team without a LocalQueue (or whose queue points nowhere) has its jobs ignored or held forever."""
    local = {str(o["metadata"].get("namespace")): o for o in plan.objects("LocalQueue")}
    cluster = {str(o["metadata"]["name"]): o for o in plan.objects("ClusterQueue")}
    namespaces = {str(n["metadata"].get("name")): n for n in plan.objects("Namespace")}
    for team in plan.config.teams:
        subject = f"team {team.name}"
        queue = local.get(team.name)
        if queue is None:
            yield Violation("team-can-queue", subject, "has no LocalQueue in its namespace")
            continue
        target = str(queue.get("spec", {}).get("clusterQueue"))
        cq = cluster.get(target)
        if cq is None:
            yield Violation("team-can-queue", subject, f"its LocalQueue points at ClusterQueue {target}, not planned")
            continue
        selector = cq.get("spec", {}).get("namespaceSelector")
        namespace = namespaces.get(team.name)
        labels = _labels(namespace) if namespace else {}
        if not isinstance(selector, dict) or not _selects(selector, labels):
            yield Violation(
                "team-can-queue", subject, f"ClusterQueue {target}'s namespaceSelector does not select its namespace"
            )


def _selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """matchLabels only (what the platform writes); any matchExpressions is not understood, so not trusted."""
    if selector.get("matchExpressions"):
        return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def check_flavors(plan: PlanView) -> Iterator[Violation]:
    """A missing flavor makes the ClusterQueue inactive; a GPU flavor whose node labels match no node offering its
    resource admits jobs that can never be scheduled."""
    flavors = {str(o["metadata"]["name"]): o for o in plan.objects("ResourceFlavor")}
    nodes = [
        (pool.node_labels(capacity, "operator") | pool.labels(capacity), set(pool.advertised))
        for pool in plan.pools
        for capacity in pool.capacity_types
    ]
    for cq in plan.objects("ClusterQueue"):
        subject = f"ClusterQueue {cq['metadata']['name']}"
        for group in cq.get("spec", {}).get("resourceGroups", []):
            for flavor in group.get("flavors", []):
                name = str(flavor.get("name"))
                found = flavors.get(name)
                if found is None:
                    yield Violation("queue-flavors-exist", subject, f"names ResourceFlavor {name}, not planned")
                    continue
                wanted = (found.get("spec") or {}).get("nodeLabels") or {}
                for amounts in flavor.get("resources", []):
                    resource = str(amounts.get("name"))
                    nothing = str(amounts.get("nominalQuota")) == "0" and str(amounts.get("borrowingLimit")) == "0"
                    if resource in ("cpu", "memory") or nothing:
                        continue
                    if not any(resource in offers and _subset(wanted, labels) for labels, offers in nodes):
                        yield Violation(
                            "queue-flavors-exist",
                            subject,
                            f"gives quota of {resource} in flavor {name}, but no pool's nodes with its node labels "
                            f"{wanted} offer {resource}",
                        )


def _subset(wanted: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def check_network_policies_enforced(plan: PlanView) -> Iterator[Violation]:
    """NetworkPolicies the network plugin does not enforce isolate nothing: EKS's VPC CNI needs its network policy
    agent on, GKE needs Dataplane V2. An existing cluster's CNI is its owner's (docs/teams.md)."""
    if not any(True for _ in plan.objects("NetworkPolicy")):
        return
    cloud = plan.config.cluster.cloud
    if cloud == "aws":
        cni = [r for r in plan.of_type("aws:eks/addon:Addon") if r.inputs.get("addonName") == "vpc-cni"]
        settings = [json.loads(str(r.inputs.get("configurationValues") or "{}")) for r in cni]
        if not any(str(s.get("enableNetworkPolicy")).lower() == "true" for s in settings):
            yield Violation(
                "network-policies-enforced",
                "add-on vpc-cni",
                "the plan declares NetworkPolicies but the VPC CNI's network policy agent is off "
                '(configurationValues {"enableNetworkPolicy": "true"}): they would isolate nothing',
            )
    elif cloud == "gcp":
        clusters = plan.of_type("gcp:container/cluster:Cluster")
        if not any(r.inputs.get("datapathProvider") == "ADVANCED_DATAPATH" for r in clusters):
            yield Violation(
                "network-policies-enforced",
                "GKE cluster",
                "the plan declares NetworkPolicies but the cluster does not run Dataplane V2 (datapathProvider "
                "ADVANCED_DATAPATH): they would isolate nothing",
            )


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "team-gpu-quota-covers-pools",
        "Every GPU resource any pool offers is bounded by every team's ResourceQuota (0 where the pool is not the "
        "team's).",
        check_quota_covers_pools,
    ),
    Invariant(
        "team-can-queue",
        "Every team has a LocalQueue in its namespace pointing at a planned ClusterQueue that accepts the namespace.",
        check_team_queues,
    ),
    Invariant(
        "queue-flavors-exist",
        "Every flavor a ClusterQueue names is planned, and every GPU flavor with quota matches pool nodes that offer "
        "its resource.",
        check_flavors,
    ),
    Invariant(
        "network-policies-enforced",
        "When the plan declares NetworkPolicies, the cluster's network plugin enforces them (EKS VPC CNI network "
        "policy agent, GKE Dataplane V2).",
        check_network_policies_enforced,
    ),
)
