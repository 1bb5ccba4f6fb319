"""Rules on GPU workloads: checks of one Kubernetes object, wherever its pod specs live."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from vocabulary.labels import GPU_TAINT_KEY, LABEL_GPU, LABEL_POOL
from vocabulary.policy_rules import LIMITS_RULE, SHM_RULE
from vocabulary.priorities import PRIORITY_CLASS_NAMES
from vocabulary.resources import is_gpu_resource
from vocabulary.workloads import KUBERAY_VERSION

from .findings import Finding, Settings
from .mounts import ShmPath, shm_path, volume_kind
from .podspecs import Container, PodSite, VolumesNamed, pod_sites
from .values import describe, get, is_whole, mapping, quantity, sequence, show

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
    """{resource: (request, limit)} for every GPU resource of the container, requests defaulted from limits as the
    API server does."""
    effective = container.effective
    names = [n for n in [*effective.requests, *effective.limits] if is_gpu_resource(n)]
    return {n: (effective.requests.get(n), effective.limits.get(n)) for n in dict.fromkeys(names)}


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


@dataclass(frozen=True)
class ShmMount:
    """A mount of the container at (or maybe at) /dev/shm, with the pod's volumes of its name."""

    mount: Mapping[str, Any]
    at: ShmPath
    named: VolumesNamed
    added: bool  # added by the operator (KubeRay), not written in the manifest

    @property
    def volumes(self) -> tuple[Mapping[str, Any], ...]:
        return self.named.volumes

    @property
    def memory(self) -> bool:
        return self.named.memory

    def problem(self) -> str:
        name, path = self.mount.get("name"), self.mount.get("mountPath")
        who = f"KubeRay {KUBERAY_VERSION} mounts" if self.added else "mounts"
        where = "at /dev/shm"
        if self.at == "maybe":
            where = f'at "{path}" (a ".." path that may be /dev/shm: write it without "..")'
        if not isinstance(name, str) or not name:
            return f"mounts a volume without a name {where}"
        if not self.volumes:
            return f'{who} "{name}" {where}, but the pod has no volume of that name'
        if len(self.volumes) > 1:
            return f'{who} "{name}" {where}, but the pod has {len(self.volumes)} volumes of that name'
        kind = volume_kind(self.volumes[0])
        article = "an" if kind[:1] in "aeiou" else "a"
        return f'{who} "{name}" {where}, {article} {kind} volume that is not memory-backed'


def shm_mounts(site: PodSite, container: Container) -> list[ShmMount]:
    """Every mount of the container at /dev/shm or maybe there, in the pod that runs. Linear in mounts and volumes:
    the volumes are looked up by name in the site's index."""
    return [
        ShmMount(m, at, site.volumes_named(m.get("name")), any(m is a for a in container.added_mounts))
        for m in container.mounts
        if (at := shm_path(m.get("mountPath"))) != "other"
    ]


def shm_problem(site: PodSite, container: Container) -> str | None:
    """Why the container has no memory-backed /dev/shm, or None. Two mounts at one path (`/dev/shm` and
    `/dev/shm/` pass the API server) leave it to the runtime which one wins: each must be memory-backed."""
    mounts = shm_mounts(site, container)
    bad = next((m for m in mounts if not m.memory), None)
    if bad is not None:
        return bad.problem()
    if not any(m.at == "shm" for m in mounts):
        unresolved = next((m.mount.get("mountPath") for m in mounts), None)
        if unresolved is not None:
            return (
                f'mounts its memory volume at "{unresolved}", a ".." path the policies do not resolve: write /dev/shm'
            )
        note = f" ({container.note})" if container.note else ""
        return f"does not mount anything at /dev/shm{note} (Docker's default is 64 MB)"
    return None


def check_shm_volume(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    for site in pod_sites(obj):
        if not site.has_pod_spec:
            continue
        for container in gpu_containers(site):
            problem = shm_problem(site, container)
            if problem is None:
                continue
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
            if shm_problem(site, container) is not None:
                continue  # the mandatory rule reports it
            seen: set[int] = set()
            named: set[int] = set()
            for shm in shm_mounts(site, container):
                if id(shm.named) in named:
                    continue  # another mount of the same volumes (each volume is judged once)
                named.add(id(shm.named))
                for volume in shm.volumes:
                    if id(volume) in seen:
                        continue
                    seen.add(id(volume))
                    size = get(volume, "emptyDir", "sizeLimit")
                    amount = quantity(size)
                    if size is None:
                        problem = "has no sizeLimit: a runaway data loader can use all node memory"
                    elif amount is None or amount < settings.shm_min_bytes:
                        problem = f"sizeLimit {show(size)} is below {settings.shm_min_size}"
                    else:
                        continue
                    if any(volume is v for v in site.added_volumes):
                        # KubeRay sizes its volume from the Ray container: set its memory limit (or a dshm volume).
                        problem += f" (KubeRay {KUBERAY_VERSION} sets it to the container's memory limit or request)"
                    yield Finding(
                        "gpu-shm-size-limit",
                        describe(obj),
                        f"/dev/shm of {_where(site, container)} {problem}",
                        container.name,
                        site.path,
                    )


def _amount_problem(name: str, request: Any, limit: Any, defaulted: bool) -> str | None:
    """What is wrong with one GPU resource's request and limit, as the API server will see them."""
    wanted = quantity(request)
    said = f"limits {name}: {show(limit)} (the API server copies it to the request)" if defaulted else None
    if limit is None:
        return f"requests {name}: {show(request)} without a limit"
    if said is None and (wanted is None or quantity(limit) != wanted):
        return f"requests {name}: {show(request)} but limits it to {show(limit)}"
    if wanted is None:
        return f"{said}, not a quantity"
    if wanted < 0 or not is_whole(wanted):
        return f"{said or f'requests {name}: {show(request)}'}, not a whole number of devices"
    return None


def check_limits(obj: Mapping[str, Any], settings: Settings) -> Iterator[Finding]:
    del settings
    for site in pod_sites(obj):
        for container in site.containers:
            defaulted = container.effective.defaulted
            for name, (request, limit) in gpu_requests(container).items():
                problem = _amount_problem(name, request, limit, name in defaulted)
                if problem is None:
                    continue
                yield Finding(
                    LIMITS_RULE,
                    describe(obj),
                    f"{_where(site, container)} {problem}; "
                    f"GPUs are not overcommitted: set limits.{name} equal to the request, a whole number of devices",
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
