"""`Teams`: the cluster's PriorityClasses, and per team a namespace with its quotas, defaults, access and network
isolation.

Plain functions (config and pool facts in, dicts out) build every object; the layer only registers them. A team's
GPU quota is per GPU model (whole GPUs) and per MIG resource; ResourceQuota can only count resource names, so it
holds the sum per resource name (`requests.nvidia.com/gpu`, `requests.nvidia.com/mig-1g.10gb`, ...).
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.config.base import byte_quantity, quantity_value
from components.config.teams import CONTAINER_DEFAULT_REQUEST, Team
from components.gpu_pools import ResolvedGpuPool
from components.kube import register, register_all
from components.layer import (
    CHECKPOINT_BUCKET_URI,
    KUBERAY_OPERATOR_READY,
    KUEUE_QUEUES,
    PROMETHEUS_CRDS,
    SHARED_STORAGE,
    Layer,
)
from components.queueing import cluster_queue, local_queue, spare_queue
from components.ray_clusters import team_ray_cluster
from components.storage.team_objects import team_storage_objects
from components.team_quotas import gpu_requests
from vocabulary.labels import LABEL_DEFAULT_PRIORITY, LABEL_TEAM, MANAGED_BY
from vocabulary.namespaces import KUBERAY_NAMESPACE, MONITORING_NAMESPACE
from vocabulary.priorities import (
    NEVER_PREEMPTING,
    PRIORITY_CLASS_NAMES,
    PRIORITY_DESCRIPTIONS,
    PRIORITY_VALUES,
    RESTRICTED_PRIORITY,
    PriorityClassName,
)
from vocabulary.storage import SHARED_STORAGE_CLASS
from vocabulary.workloads import KSERVE_INFERENCESERVICE_LABEL, RAY_DASHBOARD_PORT, RAY_NODE_TYPE_LABEL

# Containers that set nothing still land with sane requests (so the scheduler and the quota count them). No default
# limits: the LimitRanger gives a container without a limit the default one, and a container that requests more
# memory than that (a 64Gi data loader) is then rejected as request > limit. No CPU limit either: throttling starves
# data loaders.
LIMIT_RANGE_DEFAULTS = {"defaultRequest": dict(CONTAINER_DEFAULT_REQUEST)}


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
                LABEL_DEFAULT_PRIORITY: team.priority,  # the default-priority policy reads it
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


def resource_quota(
    team: Team, pools: tuple[ResolvedGpuPool, ...], shared_volume: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The hard backstop: GPUs per resource name (quota counts extended resources by request only), CPU, memory,
    storage and pods. The platform's shared volume comes on top of the team's storage, and is the only claim of
    its StorageClass (on FSx and Filestore every claim is a new file system, billed by size)."""
    r = team.resources
    hard: dict[str, str] = {
        "requests.cpu": r.cpu,
        "requests.memory": r.memory,
        "requests.storage": r.storage,
        "pods": str(r.pods),
    }
    if shared_volume is not None:
        storage_class, size = shared_volume
        hard["requests.storage"] = byte_quantity(quantity_value(r.storage) + quantity_value(size))
        if storage_class == SHARED_STORAGE_CLASS:
            # the platform's own class only: an existing cluster's class may be the one every claim uses
            hard[f"{storage_class}.storageclass.storage.k8s.io/persistentvolumeclaims"] = "1"
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
    """The team's groups edit its namespace (Kubernetes' built-in `edit` ClusterRole, to which Kueue's chart
    aggregates LocalQueue and Workload access) and view the shared dashboards and alert rules in the monitoring
    namespace (`view`: no Secrets)."""
    if not team.groups:
        return []
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in team.groups]

    def binding(role: str) -> dict[str, Any]:
        return {
            "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        }

    edit = _namespaced("RoleBinding", "rbac.authorization.k8s.io/v1", "team-edit", team, binding("edit"))
    view = _namespaced("RoleBinding", "rbac.authorization.k8s.io/v1", f"team-{team.name}-view", team, binding("view"))
    view["metadata"]["namespace"] = MONITORING_NAMESPACE
    return [edit, view]


def serves_models(team: Team) -> bool:
    """A team that may run production inference serves models: its InferenceServices take traffic."""
    return RESTRICTED_PRIORITY in allowed_priorities(team)


def network_policies(team: Team, ray_operator: bool = False) -> list[dict[str, Any]]:
    """Ingress denied by default; allowed from the same namespace and from the monitoring namespace (Prometheus
    scrapes), and, for a team that serves models, to its KServe model-server pods from anywhere in the cluster
    (callers and ingress gateways live in other namespaces); with the KubeRay operator, to the Ray heads' dashboard
    port from its namespace (it submits RayJobs there). Egress is left open (images, datasets, checkpoints)."""
    api = "networking.k8s.io/v1"

    def policy(name: str, ingress: list[dict[str, Any]] | None) -> dict[str, Any]:
        spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"]}
        if ingress is not None:
            spec["ingress"] = ingress
        return _namespaced("NetworkPolicy", api, name, team, {"spec": spec})

    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}
    policies = [
        policy("default-deny-ingress", None),
        policy("allow-same-namespace", [{"from": [{"podSelector": {}}]}]),
        policy("allow-monitoring", [{"from": [monitoring]}]),
    ]
    if serves_models(team):
        serving = policy("allow-serving-ingress", [{"from": [{"namespaceSelector": {}}]}])
        serving["spec"]["podSelector"] = {
            "matchExpressions": [{"key": KSERVE_INFERENCESERVICE_LABEL, "operator": "Exists"}]
        }
        policies.append(serving)
    if ray_operator:
        operator = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": KUBERAY_NAMESPACE}}}
        ray = policy(
            "allow-kuberay-operator", [{"from": [operator], "ports": [{"protocol": "TCP", "port": RAY_DASHBOARD_PORT}]}]
        )
        ray["spec"]["podSelector"] = {"matchLabels": {RAY_NODE_TYPE_LABEL: "head"}}
        policies.append(ray)
    return policies


DEFAULT_PRIORITY_POLICY = "ml-platform-team-default-priority"
# A pod that names no PriorityClass (the Priority plugin has then set priority 0 and PreemptLowerPriority, there
# being no global default).
NO_PRIORITY_CLASS = "!has(object.spec.priorityClassName) || object.spec.priorityClassName == ''"


def default_priority_patch() -> str:
    """JSONPatch: name the namespace's default class and drop the priority the Priority plugin already computed.
    A policy that changed the object makes the API server run the in-tree plugins again, and the Priority plugin
    then fills in the class's value and preemption policy (it rejects a pod whose priority differs from its
    class's, so the computed 0 must go)."""
    label = LABEL_DEFAULT_PRIORITY
    return (
        f'[JSONPatch{{op: "add", path: "/spec/priorityClassName", value: namespaceObject.metadata.labels["{label}"]}}]'
        ' + (has(object.spec.priority) ? [JSONPatch{op: "remove", path: "/spec/priority"}] : [])'
        ' + (has(object.spec.preemptionPolicy) ? [JSONPatch{op: "remove", path: "/spec/preemptionPolicy"}] : [])'
    )


def default_priority_objects() -> list[dict[str, Any]]:
    """One MutatingAdmissionPolicy for every team namespace (it reads the class from the namespace's label)."""
    meta = {"name": DEFAULT_PRIORITY_POLICY, "labels": dict(MANAGED_BY)}
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": meta,
        "spec": {
            "failurePolicy": "Fail",
            "reinvocationPolicy": "Never",
            "matchConstraints": {
                "resourceRules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}
                ],
                "namespaceSelector": {"matchExpressions": [{"key": LABEL_DEFAULT_PRIORITY, "operator": "Exists"}]},
            },
            "matchConditions": [{"name": "no-priority-class", "expression": NO_PRIORITY_CLASS}],
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": default_priority_patch()}}],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": dict(meta),
        "spec": {"policyName": DEFAULT_PRIORITY_POLICY},
    }
    return [policy, binding]


def team_objects(
    team: Team,
    pools: tuple[ResolvedGpuPool, ...],
    ray_operator: bool = False,
    shared_volume: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    return [
        namespace(team),
        resource_quota(team, pools, shared_volume),
        *priority_quotas(team),
        limit_range(team),
        *role_bindings(team),
        *network_policies(team, ray_operator),
    ]


class Teams(Layer[list[Team]]):
    """PriorityClasses, then every team's namespace and the objects inside it."""

    TYPE = "ml-platform:teams:Teams"

    def build(self) -> dict[str, Any]:
        classes = register_all(priority_classes(), self.in_cluster())
        if self.section and self.handle.platform.mutating_admission_policies:
            # Before any team namespace, so no pod lands there without its default.
            policy, binding = default_priority_objects()
            created_policy = register(policy, self.in_cluster(*classes))
            classes += [created_policy, register(binding, self.in_cluster(created_policy))]
        pools = self.handle.gpu_pools
        kueue = self.handle.installed(KUEUE_QUEUES)
        # The dashboards' namespace comes with the monitoring stack.
        monitoring = self.handle.installed(PROMETHEUS_CRDS)
        ray = self.handle.installed(KUBERAY_OPERATOR_READY)
        facts, storage = self.handle.platform, self.handle.installed(SHARED_STORAGE)
        bucket = self.handle.published(CHECKPOINT_BUCKET_URI)
        region = self.handle.region if self.handle.cloud == "aws" else None
        for team in self.section:
            [ns, *inside] = team_objects(team, pools, bool(ray), facts.shared_volume)
            # The namespace waits for the cluster and the PriorityClasses; what is inside waits for the namespace.
            [created] = register_all([ns], self.in_cluster(*classes))
            for obj in inside:
                elsewhere = obj["metadata"]["namespace"] != team.name
                register(obj, self.after(*(monitoring if elsewhere and monitoring else [created])))
            for obj in team_storage_objects(team.name, facts, bucket, region):
                register(obj, self.after(created, *storage))
            [queue] = register_all([cluster_queue(team, pools)], self.in_cluster(*kueue))
            [local] = register_all([local_queue(team)], self.after(created, queue))
            if ray and (cluster := team_ray_cluster(team, pools, self.handle.platform)) is not None:
                # After the operator (its CRDs) and the queue Kueue puts it on. Kueue (scheduling gates, flavor
                # node labels) and Ray's autoscaler (replicas) edit its pod templates, and Kueue refuses updates
                # that drop its gates: a config change replaces the cluster instead of patching it.
                replace = pulumi.ResourceOptions(replace_on_changes=["*"], delete_before_replace=True)
                register(cluster, pulumi.ResourceOptions.merge(self.after(local, *ray), replace))
        if (spare := spare_queue(self.section, pools)) is not None:
            register(spare, self.in_cluster(*kueue))
        return {"teams": [t.name for t in self.section]}
