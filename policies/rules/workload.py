"""Rules on GPU workloads: checks of one Kubernetes object, wherever its pod specs live."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from vocabulary.labels import GPU_TAINT_KEY, LABEL_GPU, LABEL_POOL
from vocabulary.policy_rules import LIMITS_RULE, SHM_PATH, SHM_RULE
from vocabulary.priorities import PRIORITY_CLASS_NAMES
from vocabulary.resources import is_gpu_resource

from .findings import Finding, Settings
from .podspecs import Container, PodSite, pod_sites
from .values import describe, get, mapping, quantity, sequence, show

# Node labels that pin a GPU model: ours, GPU Feature Discovery's, GKE's, Karpenter's, the instance type.
GPU_TYPE_LABELS = (
    LABEL_GPU,
    LABEL_POOL,
    "nvidia.com/gpu.product",
    "cloud.google.com/gke-accelerator",
    "karpenter.k8s.aws/instance-gpu-name",
    "node.kubernetes.io/instance-type",
)


def gpu_requests(container: Container) -> dict[str, tuple[Any, Any]]:
    """{resource: (request, limit)} for every GPU resource named in requests or limits."""
    requests, limits = mapping(container.resources.get("requests")), mapping(container.resources.get("limits"))
    names = [n for n in [*requests, *limits] if is_gpu_resource(str(n))]
    return {str(n): (requests.get(n), limits.get(n)) for n in dict.fromkeys(names)}


def requests_gpus(container: Container) -> bool:
    for request, limit in gpu_requests(container).values():
        for value in (request, limit):
            amount = quantity(value)
            if (amount is None and value is not None) or (amount is not None and amount > 0):
                return True  # an unreadable amount counts: better a finding than a silent pass
    return False


def gpu_containers(site: PodSite) -> list[Container]:
    return [c for c in site.containers if requests_gpus(c)]


def _where(site: PodSite, container: Container) -> str:
    return f'container "{container.name}" in {site.path}'


def _mounts_at_shm(mount: Any) -> bool:
    return mapping(mount).get("mountPath") in (SHM_PATH, SHM_PATH + "/")


def shm_volumes(site: PodSite, container: Container) -> list[tuple[str, Mapping[str, Any] | None]]:
    """(name, volume or None when the pod has no such volume) for each mount at /dev/shm."""
    volumes = {mapping(v).get("name"): mapping(v) for v in sequence(site.spec.get("volumes")) if mapping(v).get("name")}
    return [
        (str(mapping(m).get("name")), volumes.get(mapping(m).get("name")))
        for m in sequence(container.spec.get("volumeMounts"))
        if _mounts_at_shm(m)
    ]


def memory_shm(site: PodSite, container: Container) -> Mapping[str, Any] | None:
    """The memory-backed emptyDir this container mounts at /dev/shm, if any."""
    return next((v for _, v in shm_volumes(site, container) if is_memory_backed(v)), None)


def is_memory_backed(volume: Mapping[str, Any] | None) -> bool:
    return volume is not None and get(volume, "emptyDir", "medium") == "Memory"


def check_shm_volume(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    for site in pod_sites(obj):
        if not site.has_pod_spec:
            continue
        for container in gpu_containers(site):
            mounted = shm_volumes(site, container)
            if memory_shm(site, container) is not None:
                continue
            if not mounted:
                if container.runtime_provides_shm:
                    continue  # KubeRay adds a memory /dev/shm to the Ray container itself
                problem = "does not mount anything at /dev/shm (Docker's default is 64 MB)"
            elif mounted[0][1] is None:
                problem = f'mounts "{mounted[0][0]}" at /dev/shm, but the pod has no volume of that name'
            else:
                name, volume = mounted[0]
                kind = next((k for k in volume or {} if k != "name"), "unknown")
                article = "an" if kind[:1] in "aeiou" else "a"
                problem = f'mounts "{name}" at /dev/shm, {article} {kind} volume that is not memory-backed'
            yield Finding(
                SHM_RULE,
                describe(obj),
                f"{_where(site, container)} requests GPUs but {problem}; add an emptyDir with medium: Memory and mount "
                "it at /dev/shm",
                container.name,
                site.path,
            )


def check_shm_size(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    for site in pod_sites(obj):
        if not site.has_pod_spec:
            continue
        for container in gpu_containers(site):
            volume = memory_shm(site, container)
            if volume is None:
                continue  # the mandatory rule reports it (or KubeRay provides it)
            size = get(volume, "emptyDir", "sizeLimit")
            amount = quantity(size)
            if size is None:
                problem = "has no sizeLimit: a runaway data loader can use all node memory"
            elif amount is None or amount < settings.shm_min_bytes:
                problem = f"sizeLimit {show(size)} is below {settings.shm_min_size}"
            else:
                continue
            yield Finding(
                "gpu-shm-size-limit",
                describe(obj),
                f"/dev/shm of {_where(site, container)} {problem}",
                container.name,
                site.path,
            )


def check_limits(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    for site in pod_sites(obj):
        for container in site.containers:
            for name, (request, limit) in gpu_requests(container).items():
                if request is None:
                    continue  # a limit alone is fine: Kubernetes copies it to the request
                wanted = quantity(request)
                if limit is None:
                    problem = f"requests {name}: {show(request)} without a limit"
                elif wanted is None or quantity(limit) != wanted:
                    problem = f"requests {name}: {show(request)} but limits it to {show(limit)}"
                elif wanted < 0 or wanted % 1 != 0:
                    problem = f"requests {name}: {show(request)}, not a whole number of devices"
                else:
                    continue
                yield Finding(
                    LIMITS_RULE,
                    describe(obj),
                    f"{_where(site, container)} {problem}; "
                    f"GPUs are not overcommitted: set limits.{name} equal to the request",
                    container.name,
                    site.path,
                )


def _tolerates_gpu(spec: Mapping[str, Any]) -> bool:
    for toleration in sequence(spec.get("tolerations")):
        t = mapping(toleration)
        key, operator = t.get("key"), t.get("operator", "Equal")
        if (key == GPU_TAINT_KEY or (key in (None, "") and operator == "Exists")) and t.get("effect") in (
            None,
            "",
            "NoSchedule",
        ):
            return True
    return False


def _selects_gpu_type(spec: Mapping[str, Any]) -> bool:
    if any(k in GPU_TYPE_LABELS for k in mapping(spec.get("nodeSelector"))):
        return True
    affinity = mapping(get(spec, "affinity", "nodeAffinity"))
    terms = list(sequence(get(affinity, "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")))
    terms += [
        mapping(p).get("preference") for p in sequence(affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))
    ]
    return any(
        mapping(expression).get("key") in GPU_TYPE_LABELS
        for term in terms
        for expression in sequence(mapping(term).get("matchExpressions"))
    )


def check_node_targeting(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    for site in pod_sites(obj):
        if not site.has_pod_spec or not gpu_containers(site):
            continue
        missing = []
        if not _tolerates_gpu(site.spec):
            missing.append("a toleration for the nvidia.com/gpu taint (key nvidia.com/gpu, operator Exists)")
        if not _selects_gpu_type(site.spec):
            missing.append("a nodeSelector or node affinity on a GPU type label (e.g. ml-platform.io/gpu)")
        if missing:
            yield Finding(
                "gpu-node-targeting",
                describe(obj),
                f"{site.path} runs GPU containers without " + " and ".join(missing),
                None,
                site.path,
            )


def check_restart_policy(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    if obj.get("kind") not in ("Pod", "Job", "CronJob"):
        return
    for site in pod_sites(obj):
        policy = site.spec.get("restartPolicy", "Always")
        if gpu_containers(site) and policy != "Never":
            yield Finding(
                "gpu-training-restart-policy",
                describe(obj),
                f"{site.path} has restartPolicy {policy}: a failing GPU job restarts in a loop and burns GPU hours; "
                "use Never (with a Job backoffLimit) and resume from checkpoints",
                None,
                site.path,
            )


def check_priority_class(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    for site in pod_sites(obj):
        if site.has_pod_spec and gpu_containers(site) and not site.spec.get("priorityClassName"):
            yield Finding(
                "gpu-priority-class",
                describe(obj),
                f"{site.path} runs GPU containers without priorityClassName "
                f"({', '.join(PRIORITY_CLASS_NAMES[:-1])} or {PRIORITY_CLASS_NAMES[-1]})",
                None,
                site.path,
            )


def check_cuda_visible_devices(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    for site in pod_sites(obj):
        for container in site.containers:
            if any(mapping(e).get("name") == "CUDA_VISIBLE_DEVICES" for e in sequence(container.spec.get("env"))):
                yield Finding(
                    "gpu-no-cuda-visible-devices",
                    describe(obj),
                    f"{_where(site, container)} sets CUDA_VISIBLE_DEVICES; the device plugin assigns GPUs, remove it",
                    container.name,
                    site.path,
                )
