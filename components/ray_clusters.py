"""A team's shared RayCluster (`teams[].rayCluster`), with the field guide's defaults (no Pulumi: the Teams layer
registers it, tests and the plan invariants read it).

- The head runs no tasks (`num-cpus: "0"`) and no GPUs, on Karpenter's CPU pool where there is one (it scales),
  else on system nodes; Ray's in-tree autoscaler runs beside it.
- GPU workers start at 0 on one of the team's GPU pools: they select it by the portable pool label (and, for whole
  GPUs, the model label: Kueue picks a flavor only among those whose node labels the pods allow), tolerate the GPU
  taint, and request and limit the pool's GPU resource (MIG slices included), with `num-gpus` set.
- CPU workers start at 0 on Karpenter's CPU pool (spot first), where there is one.
- Every worker's Ray container mounts a memory `/dev/shm` of `shmSize` (Ray's object store lives there). KubeRay
  would add one sized to the container's memory limit; the platform sets it explicitly, so its size is the
  config's and the policies see it. The head, which runs no tasks, keeps KubeRay's own (its memory limit).
- In the team's namespace, on its LocalQueue, as an elastic Kueue workload (its autoscaler resizes it), at the
  team's default priority.
"""

from __future__ import annotations

import re
from typing import Any

from components.config.teams import RayClusterConfig, Team
from components.gpu_pools import PlatformFacts, ResolvedGpuPool
from components.storage.team_objects import apply_team_storage
from components.team_quotas import team_pools
from vocabulary.labels import (
    CPU_WORKER_ROLE,
    GPU_TAINT_KEY,
    LABEL_GPU,
    LABEL_POOL,
    LABEL_ROLE,
    LABEL_TEAM,
    MANAGED_BY,
    SYSTEM_NODE_SELECTOR,
)
from vocabulary.policy_rules import SHM_PATH
from vocabulary.queues import ELASTIC_JOB_ANNOTATION, LOCAL_QUEUE, QUEUE_LABEL
from vocabulary.resources import GPU_RESOURCE
from vocabulary.workloads import KUBERAY_SHM_VOLUME

RAY_CLUSTER_NAME = "shared"
GPU_GROUP, CPU_GROUP = "gpu", "cpu"


def ray_gpu_pool(team: Team, pools: tuple[ResolvedGpuPool, ...]) -> ResolvedGpuPool | None:
    """The pool of the GPU workers: the one named, else the team's first GPU pool."""
    config = team.ray_cluster
    mine = team_pools(team, pools)
    if config is None or not mine:
        return None
    if config.gpu_pool is None:
        return mine[0]
    return next((p for p in mine if p.name == config.gpu_pool), None)


def _container(image: str, cpu: str, memory: str, gpus: tuple[str, int] | None, shm: bool = True) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": cpu, "memory": memory}
    if gpus is not None:
        amounts[gpus[0]] = gpus[1]
    return {
        "name": "ray",
        "image": image,
        # Requests equal limits: the scheduler and the quotas count what the container may use.
        "resources": {"requests": dict(amounts), "limits": dict(amounts)},
        **({"volumeMounts": [{"name": KUBERAY_SHM_VOLUME, "mountPath": SHM_PATH}]} if shm else {}),
    }


def _template(
    team: Team, config: RayClusterConfig, container: dict[str, Any], facts: PlatformFacts, **spec: Any
) -> dict[str, Any]:
    pod: dict[str, Any] = {"priorityClassName": team.priority, "containers": [container], **spec}
    if "volumeMounts" in container:
        pod["volumes"] = [{"name": KUBERAY_SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": config.shm_size}}]
    apply_team_storage(pod, container, facts)
    return {"metadata": {"labels": {LABEL_TEAM: team.name}}, "spec": pod}


def _group(name: str, max_replicas: int, params: dict[str, str], template: dict[str, Any]) -> dict[str, Any]:
    return {
        # No `replicas`: the autoscaler owns it (the CRD defaults it to 0).
        "groupName": name,
        "minReplicas": 0,
        "maxReplicas": max_replicas,
        "rayStartParams": params,
        "template": template,
    }


def team_ray_cluster(team: Team, pools: tuple[ResolvedGpuPool, ...], facts: PlatformFacts) -> dict[str, Any] | None:
    config = team.ray_cluster
    if config is None:
        return None
    head = _template(
        team, config, _container(config.image, config.head_cpu, config.head_memory, None, shm=False), facts,
        nodeSelector={LABEL_ROLE: CPU_WORKER_ROLE} if facts.cpu_worker_pool else dict(SYSTEM_NODE_SELECTOR),
    )  # fmt: skip
    groups = []
    pool = ray_gpu_pool(team, pools)
    if pool is not None and config.max_gpu_workers > 0:
        gpus = (pool.gpu_resource, config.gpus_per_worker)
        worker = _container(config.image, config.gpu_worker_cpu, config.gpu_worker_memory, gpus)
        template = _template(
            team,
            config,
            worker,
            facts,
            nodeSelector={LABEL_POOL: pool.name}
            | ({LABEL_GPU: pool.model.key} if pool.gpu_resource == GPU_RESOURCE else {}),
            tolerations=[{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        )
        groups.append(_group(GPU_GROUP, config.max_gpu_workers, {"num-gpus": str(config.gpus_per_worker)}, template))
    if facts.cpu_worker_pool and config.max_cpu_workers > 0:
        worker = _container(config.image, config.cpu_worker_cpu, config.cpu_worker_memory, None)
        template = _template(team, config, worker, facts, nodeSelector={LABEL_ROLE: CPU_WORKER_ROLE})
        groups.append(_group(CPU_GROUP, config.max_cpu_workers, {}, template))
    version = re.search(r":(\d+\.\d+\.\d+)", config.image)
    spec: dict[str, Any] = {
        "enableInTreeAutoscaling": True,
        "autoscalerOptions": {"upscalingMode": "Default", "idleTimeoutSeconds": 60},
        "headGroupSpec": {"rayStartParams": {"num-cpus": "0"}, "template": head},
        "workerGroupSpecs": groups,
    }
    if version:
        spec = {"rayVersion": version.group(1), **spec}
    metadata = {
        "name": RAY_CLUSTER_NAME,
        "namespace": team.name,
        "labels": {**MANAGED_BY, LABEL_TEAM: team.name, QUEUE_LABEL: LOCAL_QUEUE},
        "annotations": {ELASTIC_JOB_ANNOTATION: "true"},
    }
    return {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": metadata, "spec": spec}
