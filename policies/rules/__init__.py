"""ml-platform policy rules: plain Python shared by the Pulumi policy pack, check.py and the admission policies.

Importing this package starts nothing. Rules read Kubernetes objects as mappings (dicts, or the policy engine's
read-only proxies with float numbers). See policies/RULES.md for what each rule checks and where.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vocabulary.policy_rules import LIMITS_RULE, SHM_RULE
from vocabulary.priorities import PRIORITY_CLASS_NAMES

from . import infra, podspecs, stack, workload
from .findings import Enforcement, Finding, Settings
from .values import describe

ObjectCheck = Callable[[Mapping[str, Any], Settings], Iterable[Finding]]
ResourceCheck = Callable[[str, str, Mapping[str, Any], Settings], Iterable[Finding]]
StackCheck = Callable[[Sequence[Mapping[str, Any]], Settings], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    default: Enforcement
    remediation: str
    on_object: ObjectCheck | None = None  # a Kubernetes object (manifest or Pulumi kubernetes resource)
    on_resource: ResourceCheck | None = None  # a non-Kubernetes Pulumi resource (type, name, props)
    on_stack: StackCheck | None = None  # every Kubernetes object of a stack or of the files checked
    # The kinds `on_stack` reads (empty: every kind): check.py keeps only those while it streams the rest.
    stack_kinds: tuple[str, ...] = ()


SHM_REMEDIATION = (
    "add to the pod spec `volumes: [{name: dshm, emptyDir: {medium: Memory, sizeLimit: 16Gi}}]` and to the GPU "
    "container `volumeMounts: [{name: dshm, mountPath: /dev/shm}]`"
)

RULES: tuple[Rule, ...] = (
    Rule(
        SHM_RULE,
        "GPU containers mount a memory-backed emptyDir at /dev/shm (PyTorch data loaders, NCCL and the Ray object "
        "store crash with 'bus error' or crawl on Docker's 64 MB default).",
        "mandatory",
        SHM_REMEDIATION,
        on_object=workload.check_shm_volume,
    ),
    Rule(
        LIMITS_RULE,
        "Every GPU a container requests has a limit equal to the request (GPUs are not overcommitted).",
        "mandatory",
        "set resources.limits[<gpu resource>] to the same quantity as resources.requests, or set only the limit",
        on_object=workload.check_limits,
    ),
    Rule(
        "gpu-shm-size-limit",
        "The /dev/shm emptyDir of a GPU container has a sizeLimit of at least shmMinSize (default 8Gi).",
        "advisory",
        "set emptyDir.sizeLimit on the /dev/shm volume, e.g. 16Gi (it counts against the pod's memory)",
        on_object=workload.check_shm_size,
    ),
    Rule(
        "gpu-node-targeting",
        "GPU pods tolerate the nvidia.com/gpu taint and select a GPU type.",
        "advisory",
        "add `tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]` and "
        "`nodeSelector: {ml-platform.io/gpu: <gpu>}` (or ml-platform.io/pool)",
        on_object=workload.check_node_targeting,
    ),
    Rule(
        "gpu-training-restart-policy",
        "Bare GPU Pods, Jobs and CronJobs do not restart in a loop burning GPU hours.",
        "advisory",
        "set restartPolicy: Never (and a Job backoffLimit); resume from checkpoints",
        on_object=workload.check_restart_policy,
    ),
    Rule(
        "gpu-priority-class",
        "GPU workloads set a priorityClassName so serving is never evicted for an experiment.",
        "advisory",
        f"set priorityClassName: {', '.join(PRIORITY_CLASS_NAMES[:-1])} or {PRIORITY_CLASS_NAMES[-1]}",
        on_object=workload.check_priority_class,
    ),
    Rule(
        "gpu-no-cuda-visible-devices",
        "CUDA_VISIBLE_DEVICES is not set by hand: the device plugin owns it.",
        "advisory",
        "remove the CUDA_VISIBLE_DEVICES env var; request nvidia.com/gpu instead",
        on_object=workload.check_cuda_visible_devices,
    ),
    Rule(
        "helm-chart-pinned",
        "Helm charts are pinned to exact versions.",
        "advisory",
        "set an exact chart version (components/versions.py)",
        on_resource=infra.check_helm_pinned,
    ),
    Rule(
        "no-time-slicing-in-production",
        "GPU time-slicing (no memory isolation) is not used in production or on inference pools.",
        "advisory",
        "use MIG (sharing.mode: mig) or whole GPUs for production and inference pools",
        on_object=infra.check_time_slicing_object,
        on_resource=infra.check_time_slicing_resource,
    ),
    Rule(
        "team-namespace-gpu-quota",
        "Every team namespace has a ResourceQuota with a GPU limit.",
        "advisory",
        "add a ResourceQuota with hard requests.nvidia.com/gpu to the namespace (quota counts GPUs by request; a "
        "limit alone is copied to the request, so limit-only pods count too)",
        on_stack=stack.check_team_quotas,
        stack_kinds=stack.TEAM_QUOTA_KINDS,
    ),
    Rule(
        "eks-imdsv2-hop-limit",
        "EKS nodes require IMDSv2 with a hop limit of 1 (pods cannot borrow the node's IAM role).",
        "advisory",
        "metadataOptions: {httpTokens: required, httpPutResponseHopLimit: 1}",
        on_object=infra.check_imds_object,
        on_resource=infra.check_imds_resource,
    ),
    Rule(
        "cluster-secrets-encryption",
        "Cluster secrets are envelope-encrypted with a KMS key.",
        "advisory",
        "set encryptionConfig {resources: [secrets], provider: {keyArn: <kms key>}} on the EKS cluster",
        on_resource=infra.check_secrets_encryption,
    ),
)
RULES_BY_ID = {rule.id: rule for rule in RULES}
MANDATORY_BY_DEFAULT = tuple(r.id for r in RULES if r.default == "mandatory")


def enforcement(rule: Rule, settings: Settings) -> Enforcement:
    return settings.enforcement.get(rule.id, rule.default)


def enabled(settings: Settings) -> list[Rule]:
    return [rule for rule in RULES if enforcement(rule, settings) != "disabled"]


def check_object(obj: Mapping[str, Any], settings: Settings | None = None) -> list[Finding]:
    """Every object-level finding for one Kubernetes object."""
    settings = settings or Settings()
    podspecs.forget()
    return [
        finding for rule in enabled(settings) if rule.on_object is not None for finding in rule.on_object(obj, settings)
    ]


def check_stack(objects: Sequence[Mapping[str, Any]], settings: Settings | None = None) -> list[Finding]:
    settings = settings or Settings()
    return [
        finding
        for rule in enabled(settings)
        if rule.on_stack is not None
        for finding in rule.on_stack(objects, settings)
    ]


def kubernetes_object(resource_type: str, props: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Pulumi Kubernetes resource as the object it creates (None for Helm, YAML groups and providers)."""
    if not resource_type.startswith("kubernetes:") or resource_type.startswith(
        ("kubernetes:helm.sh/", "kubernetes:yaml", "kubernetes:kustomize")
    ):
        return None
    _, group_version, kind = resource_type.split(":")
    obj = {k: v for k, v in props.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": group_version.removeprefix("core/"), "kind": kind, **obj}


def check_resource(
    resource_type: str, name: str, props: Mapping[str, Any], settings: Settings | None = None
) -> list[Finding]:
    """Every finding for one Pulumi resource: Kubernetes objects get the object rules, others the infra rules."""
    settings = settings or Settings()
    obj = kubernetes_object(resource_type, props)
    if obj is not None:
        return check_object(obj, settings)
    return [
        finding
        for rule in enabled(settings)
        if rule.on_resource is not None
        for finding in rule.on_resource(resource_type, name, props, settings)
    ]


__all__ = [
    "MANDATORY_BY_DEFAULT",
    "RULES",
    "RULES_BY_ID",
    "Enforcement",
    "Finding",
    "Rule",
    "Settings",
    "check_object",
    "check_resource",
    "check_stack",
    "describe",
    "enforcement",
    "kubernetes_object",
]
