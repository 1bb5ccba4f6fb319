"""GPU invariants: every GPU pool's nodes can serve the GPUs the pool promises, are measured, and cost nothing
when idle unless the stack says otherwise.

They read the plan itself: what creates a pool's nodes (EKS node groups, Karpenter NodePools with their
EC2NodeClass, GKE node pools; on existing clusters the nodes the pool describes, labelled as the plan summary
says), their labels and taints, and the GPU stack's values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from components.gpu_pools import ResolvedGpuPool
from tools.invariants.base import Invariant, Violation
from tools.invariants.plan import PlanView
from vocabulary.labels import (
    GPU_TAINT_KEY,
    LABEL_POOL,
    NVIDIA_DEPLOY_LABEL,
    NVIDIA_DEVICE_PLUGIN_CONFIG_LABEL,
    NVIDIA_MIG_CONFIG_LABEL,
)

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
EKS_TAINT_EFFECT = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
# The gpu-operator chart's operand tolerations when the values set none (pinned values.yaml: daemonsets.tolerations).
OPERATOR_DEFAULT_TOLERATIONS = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]


@dataclass(frozen=True)
class NodeSource:
    """Something that makes nodes of a pool, and what its nodes look like."""

    what: str  # e.g. "EKS node group serve-mig-baseline"
    stack: str  # operator | bottlerocket | gke
    labels: dict[str, str]
    taints: list[dict[str, str]] = field(default_factory=list)
    min_nodes: int = 0
    raw: dict[str, Any] = field(default_factory=dict)


def _eks_node_groups(plan: PlanView, pool: str) -> Iterator[NodeSource]:
    for r in plan.of_type(NODE_GROUP):
        labels = r.inputs.get("labels") or {}
        if labels.get(LABEL_POOL) != pool:
            continue
        stack = "bottlerocket" if "BOTTLEROCKET" in str(r.inputs.get("amiType")) else "operator"
        taints = [
            {"key": t["key"], "value": t.get("value", ""), "effect": EKS_TAINT_EFFECT.get(t["effect"], t["effect"])}
            for t in r.inputs.get("taints") or []
        ]
        scaling = r.inputs.get("scalingConfig") or {}
        minimum = max(int(scaling.get("minSize") or 0), int(scaling.get("desiredSize") or 0))
        yield NodeSource(f"EKS node group {r.name}", stack, labels, taints, minimum, r.inputs)


def _karpenter_node_pools(plan: PlanView, pool: str) -> Iterator[NodeSource]:
    classes = {o["metadata"]["name"]: o["spec"] for o in plan.objects("EC2NodeClass")}
    for obj in plan.objects("NodePool"):
        template = obj["spec"]["template"]
        labels = template.get("metadata", {}).get("labels") or {}
        if labels.get(LABEL_POOL) != pool:
            continue
        node_class = classes.get(template["spec"]["nodeClassRef"]["name"], {})
        aliases = [str(t.get("alias", "")) for t in node_class.get("amiSelectorTerms") or []]
        stack = "bottlerocket" if any(a.startswith("bottlerocket@") for a in aliases) else "operator"
        what = f"Karpenter NodePool {obj['metadata']['name']}"
        yield NodeSource(what, stack, labels, list(template["spec"].get("taints") or []), 0, obj)


def _gke_node_pools(plan: PlanView, pool: str) -> Iterator[NodeSource]:
    for r in plan.of_type(GKE_NODE_POOL):
        node_config = r.inputs.get("nodeConfig") or {}
        labels = node_config.get("labels") or {}
        if labels.get(LABEL_POOL) != pool:
            continue
        scaling = r.inputs.get("autoscaling") or {}
        minimum = max(int(scaling.get("totalMinNodeCount") or 0), int(r.inputs.get("initialNodeCount") or 0))
        # GKE taints GPU nodes nvidia.com/gpu=present:NoSchedule itself; its device plugin tolerates that.
        yield NodeSource(f"GKE node pool {r.inputs.get('name', r.name)}", "gke", labels, [], minimum, r.inputs)


def node_sources(plan: PlanView, pool: ResolvedGpuPool) -> list[NodeSource]:
    if pool.cloud == "existing":
        # The nodes exist already, labelled and tainted as the plan summary tells the operator to.
        taint = pool.taint.as_k8s()
        return [
            NodeSource(f"existing {c} nodes", "operator", pool.node_labels(c, "operator"), [taint])
            for c in pool.capacity_types
        ]
    return [
        *_eks_node_groups(plan, pool.name),
        *_karpenter_node_pools(plan, pool.name),
        *_gke_node_pools(plan, pool.name),
    ]


def _operator_values(plan: PlanView) -> dict[str, Any] | None:
    release = plan.release("gpu-operator")
    return None if release is None else dict(release.inputs.get("values") or {})


def _enabled(values: dict[str, Any], *path: str, default: bool = True) -> bool:
    node: Any = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return bool(node)


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    for t in tolerations:
        key_ok = (
            t.get("key") in (None, "", taint["key"]) if t.get("operator") == "Exists" else t.get("key") == taint["key"]
        )
        value_ok = t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", "")
        effect_ok = t.get("effect") in (None, "", taint["effect"])
        if key_ok and value_ok and effect_ok:
            return True
    return False


def _subject(pool: ResolvedGpuPool) -> str:
    return f"GPU pool {pool.name}"


def check_advertised(plan: PlanView) -> Iterator[Violation]:
    """Something advertises the pool's GPUs on every node that can join it."""
    values = _operator_values(plan)
    for pool in plan.pools:
        sources = node_sources(plan, pool)
        if not sources and pool.config.max_nodes > 0:
            yield Violation("gpu-advertised", _subject(pool), "nothing in the plan creates this pool's nodes")
        for source in sources:
            if source.stack == "operator" and (values is None or not _enabled(values, "devicePlugin", "enabled")):
                yield Violation(
                    "gpu-advertised",
                    _subject(pool),
                    f"{source.what}: no device plugin advertises its GPUs (the GPU Operator with its device plugin "
                    "is not in the plan)",
                )
            if source.stack == "operator" and values is not None and not _enabled(values, "nfd", "enabled"):
                yield Violation(
                    "gpu-advertised",
                    _subject(pool),
                    f"{source.what}: Node Feature Discovery is off, so the GPU Operator never finds the node's GPUs",
                )


def check_reaches_nodes(plan: PlanView) -> Iterator[Violation]:
    """The component that advertises a pool's GPUs tolerates its nodes' taints and is not kept off them; exactly one
    device plugin runs on a node."""
    values = _operator_values(plan) or {}
    tolerations = (values.get("daemonsets") or {}).get("tolerations") or OPERATOR_DEFAULT_TOLERATIONS
    off = f"{NVIDIA_DEPLOY_LABEL}.device-plugin"
    for pool in plan.pools:
        for source in node_sources(plan, pool):
            if source.stack == "operator":
                for taint in source.taints:
                    if not _tolerates(tolerations, taint):
                        yield Violation(
                            "gpu-advertiser-reaches-nodes",
                            _subject(pool),
                            f"{source.what}: the GPU Operator's operands do not tolerate taint "
                            f"{taint['key']}={taint.get('value', '')}:{taint['effect']}",
                        )
                if source.labels.get(off) == "false" or source.labels.get(f"{NVIDIA_DEPLOY_LABEL}.operands") == "false":
                    yield Violation(
                        "gpu-advertiser-reaches-nodes",
                        _subject(pool),
                        f"{source.what}: its labels keep the GPU Operator's device plugin off its nodes",
                    )
            elif source.stack == "bottlerocket" and "false" not in (
                source.labels.get(off),
                source.labels.get(f"{NVIDIA_DEPLOY_LABEL}.operands"),
            ):
                yield Violation(
                    "gpu-advertiser-reaches-nodes",
                    _subject(pool),
                    f"{source.what}: Bottlerocket runs its own device plugin; without {off}=false the GPU Operator "
                    "starts a second one on the same socket",
                )


def check_sharing_config(plan: PlanView) -> Iterator[Violation]:
    """A time-sliced pool's nodes select a device-plugin config that exists and shares as configured."""
    values = _operator_values(plan) or {}
    configs = ((values.get("devicePlugin") or {}).get("config") or {}).get("data") or {}
    for pool in plan.pools:
        sharing = pool.config.sharing
        if sharing.mode != "time-slicing":
            continue
        for source in node_sources(plan, pool):
            if source.stack == "gke":
                accel = ((source.raw.get("nodeConfig") or {}).get("guestAccelerators") or [{}])[0]
                shared = (accel.get("gpuSharingConfig") or {}).get("maxSharedClientsPerGpu")
                if shared != sharing.replicas:
                    yield Violation(
                        "sharing-config-exists",
                        _subject(pool),
                        f"{source.what}: GKE time-sharing is {shared!r}, the pool asks for {sharing.replicas}",
                    )
                continue
            name = source.labels.get(NVIDIA_DEVICE_PLUGIN_CONFIG_LABEL)
            if name is None:
                yield Violation(
                    "sharing-config-exists",
                    _subject(pool),
                    f"{source.what}: no {NVIDIA_DEVICE_PLUGIN_CONFIG_LABEL} label, so its GPUs are not time-sliced",
                )
            elif name not in configs:
                yield Violation(
                    "sharing-config-exists",
                    _subject(pool),
                    f"{source.what}: selects device-plugin config {name!r}, which the GPU Operator does not have "
                    f"(configs: {', '.join(sorted(configs)) or 'none'}); the device plugin would crash-loop",
                )
            else:
                shared = yaml.safe_load(configs[name])["sharing"]["timeSlicing"]["resources"][0]["replicas"]
                if shared != sharing.replicas:
                    yield Violation(
                        "sharing-config-exists",
                        _subject(pool),
                        f"{source.what}: config {name!r} shares {shared} ways, the pool asks for {sharing.replicas}",
                    )


def _mig_configs(values: dict[str, Any]) -> dict[str, Any]:
    data = (((values.get("migManager") or {}).get("config") or {}).get("data") or {}).get("config.yaml")
    return dict((yaml.safe_load(data) or {}).get("mig-configs") or {}) if data else {}


def check_mig_config(plan: PlanView) -> Iterator[Violation]:
    """A MIG pool's nodes select a layout the MIG manager has for their GPU model (GKE: the node pool partitions)."""
    configs = _mig_configs(_operator_values(plan) or {})
    for pool in plan.pools:
        if pool.config.sharing.mode != "mig":
            continue
        for source in node_sources(plan, pool):
            if source.stack == "gke":
                accel = ((source.raw.get("nodeConfig") or {}).get("guestAccelerators") or [{}])[0]
                if accel.get("gpuPartitionSize") != pool.config.sharing.profile:
                    yield Violation(
                        "mig-config-known",
                        _subject(pool),
                        f"{source.what}: partitions GPUs as {accel.get('gpuPartitionSize')!r}, the pool asks for "
                        f"{pool.config.sharing.profile}",
                    )
                continue
            name = source.labels.get(NVIDIA_MIG_CONFIG_LABEL)
            entries = configs.get(name or "") or []
            fits = [e for e in entries if set(pool.model.pci_device_ids) & set(e.get("device-filter") or [])]
            if name is None:
                message = f"no {NVIDIA_MIG_CONFIG_LABEL} label: its GPUs are never partitioned"
            elif not entries:
                known = ", ".join(sorted(configs)) or "none"
                message = f"selects MIG layout {name!r}, which the MIG manager does not have (layouts: {known})"
            elif not fits:
                message = f"MIG layout {name!r} has no entry for {pool.model.display_name} GPUs"
            else:
                continue
            yield Violation("mig-config-known", _subject(pool), f"{source.what}: {message}")


def check_metrics(plan: PlanView) -> Iterator[Violation]:
    """DCGM metrics are collected on every GPU pool, into a Prometheus that reads them."""
    values = _operator_values(plan)
    gke_managed = any(
        "DCGM" in ((r.inputs.get("monitoringConfig") or {}).get("enableComponents") or [])
        for r in plan.of_type(GKE_CLUSTER)
    )
    standalone = plan.release("dcgm-exporter")
    standalone_values = dict(standalone.inputs.get("values") or {}) if standalone is not None else {}
    for pool in plan.pools:
        for source in node_sources(plan, pool):
            if source.stack == "gke":
                if not gke_managed and standalone is None:
                    yield Violation(
                        "gpu-metrics-collected",
                        _subject(pool),
                        f"{source.what}: neither GKE's managed DCGM collection nor dcgm-exporter collects its metrics",
                    )
                continue
            if source.stack == "bottlerocket":
                selector = standalone_values.get("nodeSelector") or {}
                if standalone is None or not selector or any(source.labels.get(k) != v for k, v in selector.items()):
                    yield Violation(
                        "gpu-metrics-collected",
                        _subject(pool),
                        f"{source.what}: the GPU Operator leaves Bottlerocket nodes alone and no dcgm-exporter "
                        "selects them",
                    )
                continue
            exporter = values is not None and _enabled(values, "dcgmExporter", "enabled")
            monitor = values is not None and _enabled(values, "dcgmExporter", "serviceMonitor", "enabled")
            kept_off = source.labels.get(f"{NVIDIA_DEPLOY_LABEL}.dcgm-exporter") == "false"
            if not (exporter and monitor) or kept_off:
                yield Violation(
                    "gpu-metrics-collected",
                    _subject(pool),
                    f"{source.what}: no dcgm-exporter with a ServiceMonitor runs on its nodes",
                )


def check_always_on(plan: PlanView) -> Iterator[Violation]:
    """No GPU node runs while idle unless the pool says so (minNodes > 0)."""
    for pool in plan.pools:
        explicit = "min_nodes" in pool.config.model_fields_set and pool.config.min_nodes > 0
        for source in node_sources(plan, pool):
            if source.min_nodes > 0 and not explicit:
                yield Violation(
                    "no-unintended-always-on",
                    _subject(pool),
                    f"{source.what}: keeps {source.min_nodes} GPU node(s) running while idle, but the pool does not "
                    "set minNodes",
                )
            elif source.min_nodes > pool.config.min_nodes:
                yield Violation(
                    "no-unintended-always-on",
                    _subject(pool),
                    f"{source.what}: keeps {source.min_nodes} GPU node(s) running, more than minNodes "
                    f"({pool.config.min_nodes})",
                )


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("gpu-advertised", "Something advertises every GPU pool's GPUs on its nodes.", check_advertised),
    Invariant(
        "gpu-advertiser-reaches-nodes",
        "That component tolerates the pool's taints and runs on its nodes, alone.",
        check_reaches_nodes,
    ),
    Invariant(
        "sharing-config-exists", "The sharing config a time-sliced pool's nodes select exists.", check_sharing_config
    ),
    Invariant(
        "mig-config-known", "Every MIG layout a pool's nodes select is one the MIG manager has.", check_mig_config
    ),
    Invariant("gpu-metrics-collected", "DCGM metrics are collected on every GPU pool.", check_metrics),
    Invariant("no-unintended-always-on", "No GPU pool is always on unless minNodes says so.", check_always_on),
)
