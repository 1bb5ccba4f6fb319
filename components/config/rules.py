"""Config rules that span keys and sections: `check_rules` runs every rule on whatever parts of the stack
file parsed, so a user sees every problem in one run, not one per `pulumi up`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from components.catalog import CLOUDS
from components.config.access_rules import access_rules, access_warnings
from components.config.base import Autoscaler, Environment, quantity_value
from components.config.cluster import MUTATING_ADMISSION_POLICY_GA, SUPPORTED_KUBERNETES_VERSIONS, ClusterConfig
from components.config.cluster_rules import cluster_rules
from components.config.errors import Problem, key_path
from components.config.gpu import GpuStackConfig
from components.config.gpu_pools import GpuPool
from components.config.gpu_rules import gpu_section_rules, gpu_warnings, pool_gpu_rules, scaling_gpu_rules
from components.config.platform import AUTOSCALERS_BY_CLOUD, DEFAULT_AUTOSCALER, PlatformConfig
from components.config.pool_rules import capacity_rules, pool_rules, reservation_rules
from components.config.scaling import CPU_POOL_NAME, ScalingConfig
from components.config.storage_rules import storage_rules, workload_warnings
from components.config.teams import Team
from components.gpu_pools import SHARED_TEAM, ResolvedGpuPool, is_fixed_group, platform_facts, resolve_gpu_pools
from components.ray_clusters import ray_gpu_pool
from components.team_quotas import capacity_rows, gpu_quota, offered_keys
from components.versions import CLUSTER_AUTOSCALER_APP_MINOR
from vocabulary.namespaces import PLATFORM_OWNED_NAMESPACES
from vocabulary.queues import COHORT, SPARE_QUEUE
from vocabulary.resources import GPU_RESOURCE

M = TypeVar("M", bound=BaseModel)
RESERVED_NAMESPACES = {"default", *PLATFORM_OWNED_NAMESPACES}


@dataclass
class _Parsed:
    """The parts of a stack file that parsed on their own (None where they did not)."""

    cloud: str | None
    environment: str
    cluster: ClusterConfig | None
    pools: list[tuple[int, GpuPool]]
    teams: list[tuple[int, Team]]
    autoscaler: str | None
    gpu: GpuStackConfig
    scaling: ScalingConfig | None


def _parse(model: type[M], raw: Any) -> M | None:
    """The part as the schema reads it; when some keys are wrong (already reported), the part without them, so
    the cross-key rules still check the rest. None when nothing sensible is left (a required key is wrong)."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        if not isinstance(raw, dict):
            return None
        wrong = {err["loc"][0] for err in error.errors() if err["loc"]}
        try:
            return model.model_validate({k: v for k, v in raw.items() if k not in wrong})
        except ValidationError:
            return None


def _parse_list(model: type[M], raw: Any) -> list[tuple[int, M]]:
    if not isinstance(raw, list):
        return []
    return [(i, m) for i, item in enumerate(raw) if (m := _parse(model, item)) is not None]


def _gather(sections: dict[str, Any], config: PlatformConfig | None) -> _Parsed:
    if config is not None:
        return _Parsed(
            config.cluster.cloud,
            config.environment,
            config.cluster,
            list(enumerate(config.gpu_pools)),
            list(enumerate(config.teams)),
            config.autoscaler,
            config.gpu,
            config.scaling,
        )
    raw_cluster = sections.get("cluster")
    cluster = _parse(ClusterConfig, raw_cluster)
    cloud = cluster.cloud if cluster else (raw_cluster or {}).get("cloud") if isinstance(raw_cluster, dict) else None
    autoscaler = sections.get("autoscaler")
    return _Parsed(
        cloud if cloud in CLOUDS else None,
        # A bad environment is reported by the schema; judging the rest as dev adds no made-up problems.
        env if (env := sections.get("environment", "dev")) in get_args(Environment) else "dev",
        cluster,
        _parse_list(GpuPool, sections.get("gpuPools")),
        _parse_list(Team, sections.get("teams")),
        autoscaler if isinstance(autoscaler, str) else None,
        _parse(GpuStackConfig, sections.get("gpu", {})) or GpuStackConfig(),
        _parse(ScalingConfig, sections.get("scaling", {})),
    )


def _item(raw: Any, i: int) -> Any:
    return raw[i] if isinstance(raw, list) and i < len(raw) else None


def _duplicates(section: str, names: list[tuple[int, str]]) -> Iterator[Problem]:
    counts = Counter(n for _, n in names)
    for i, name in names:
        if counts[name] > 1:
            yield Problem(key_path([section, i, "name"]), name, f"names must be unique within {section}")


def _pool_name_and_group_rules(parsed: _Parsed) -> Iterator[Problem]:
    for i, pool in parsed.pools:
        if parsed.cloud == "aws" and parsed.autoscaler == "cluster-autoscaler" and pool.max_nodes == 0:
            yield Problem(
                key_path(["gpuPools", i, "maxNodes"]),
                0,
                "an EKS node group needs maxNodes >= 1 (cluster-autoscaler scales each one from 0 to maxNodes)",
            )
        if pool.name == CPU_POOL_NAME:
            yield Problem(key_path(["gpuPools", i, "name"]), pool.name, "reserved for the CPU NodePool; pick another")
        overlay = parsed.scaling is not None and parsed.scaling.node_overlay
        if not is_fixed_group(pool, parsed.autoscaler, parsed.cloud, overlay):
            continue
        if not 1 <= pool.min_nodes == pool.max_nodes:
            yield Problem(
                key_path(["gpuPools", i, "minNodes"]),
                pool.min_nodes,
                "Karpenter cannot plan for MIG slices, so a MIG pool is a fixed group: set minNodes = "
                f"maxNodes (>= 1; maxNodes is {pool.max_nodes}), or use autoscaler: cluster-autoscaler",
            )
        if len(pool.capacity) > 1:
            yield Problem(
                key_path(["gpuPools", i, "capacity"]),
                list(pool.capacity),
                "a MIG pool under Karpenter is one fixed group of one capacity type (nothing falls back to the "
                "other): list one, or use autoscaler: cluster-autoscaler",
            )


def _team_rules(parsed: _Parsed, raw_pools: Any) -> Iterator[Problem]:
    # Names as written, so a pool with another problem still counts as defined.
    pool_names = (
        {p["name"] for p in raw_pools if isinstance(p, dict) and isinstance(p.get("name"), str) and p["name"]}
        if isinstance(raw_pools, list)
        else set()
    )
    for i, team in parsed.teams:
        if team.name in RESERVED_NAMESPACES:
            yield Problem(key_path(["teams", i, "name"]), team.name, "reserved namespace; pick another name")
        elif team.name == SHARED_TEAM:
            yield Problem(
                key_path(["teams", i, "name"]),
                team.name,
                f"reserved: the {SHARED_TEAM!r} cost tag marks pools several teams use; pick another name",
            )
        elif team.name in (SPARE_QUEUE, COHORT) or team.name.startswith("kube-"):
            yield Problem(
                key_path(["teams", i, "name"]),
                team.name,
                "reserved: kube- names are Kubernetes', ml-platform is the teams' Kueue cohort and ml-platform-spare "
                "the ClusterQueue of the GPUs no team is promised; pick another name",
            )
        for j, pool_name in enumerate(team.pools):
            if pool_name not in pool_names:
                yield Problem(
                    key_path(["teams", i, "pools", j]),
                    pool_name,
                    "allowed: " + (", ".join(sorted(pool_names)) or "no pools defined"),
                )


def _team_quota_rules(config: PlatformConfig) -> Iterator[Problem]:
    """A team's GPU quota (and borrowing limit) names what its pools offer: GPU models for whole GPUs, MIG
    resources for slices."""
    try:
        pools = resolve_gpu_pools(config)
    except (KeyError, ValueError):
        return  # a pool problem, reported by the pool rules
    for i, team in enumerate(config.teams):
        offered = offered_keys(team, pools)
        for field, amount in (("gpuQuota", team.gpu_quota), ("gpuBorrowingLimit", team.gpu_borrowing_limit)):
            if amount is not None:
                yield from _quota_keys(["teams", i, field], amount, offered)
        yield from _ray_cluster_rules(config, i, team, pools)
        if team.priority_classes is not None and team.priority not in team.priority_classes:
            yield Problem(
                key_path(["teams", i, "priority"]),
                team.priority,
                "must be one of the team's priorityClasses: " + ", ".join(team.priority_classes),
            )
    yield from _shared_key_rules(config, pools)
    if config.kueue.overcommit == "error":
        for row in capacity_rows(config.teams, pools):
            if row.overcommitted:
                yield Problem(
                    key_path(["kueue", "overcommit"]),
                    "error",
                    f"the teams' {row.key} quotas add up to {row.promised} ({promised_by(config, pools, row.key)}), "
                    f"more than the pools can ever provide ({row.available} at maxNodes): lower the teams' "
                    "gpuQuota or raise the pools' maxNodes",
                )


def promised_by(config: PlatformConfig, pools: tuple[ResolvedGpuPool, ...], key: str) -> str:
    amounts = [(t.name, gpu_quota(t, pools).get(key, 0)) for t in config.teams]
    return ", ".join(f"{name} {n}" for name, n in amounts if n)


def _shared_key_rules(config: PlatformConfig, pools: tuple[ResolvedGpuPool, ...]) -> Iterator[Problem]:
    """Pools whose GPUs count under one quota key share one Kueue flavor (it selects nodes by GPU model): they must
    sell the same kind of GPU and serve the same teams, or a team's quota would admit its jobs onto the other pool's
    nodes (another team's, or MIG slices for a whole-GPU job)."""
    first: dict[str, ResolvedGpuPool] = {}
    for j, pool in enumerate(pools):
        for key, resource in pool.quota_keys.items():
            other = first.setdefault(key, pool)
            if other is pool:
                continue
            # A MIG resource is one size of slice whatever the model; a GPU model's nvidia.com/gpu may be whole GPUs,
            # time-sliced shares or (GKE, migStrategy single) slices.
            if resource == GPU_RESOURCE and _kind(other) != _kind(pool):
                yield Problem(
                    key_path(["gpuPools", j, "sharing"]),
                    pool.config.sharing.mode,
                    f"pools {other.name} and {pool.name} both offer {key} GPUs as {resource} ({_kind(other)} and "
                    f"{_kind(pool)}), which the team quotas and Kueue count as one kind: give them the same sharing"
                    + (
                        ", use another GPU model, or gpu.migStrategy mixed"
                        if pool.mig_layout or other.mig_layout
                        else " or use another GPU model"
                    ),
                )
            elif set(other.teams) != set(pool.teams):
                yield Problem(
                    key_path(["gpuPools", j, "name"]),
                    pool.name,
                    f"pools {other.name} (teams: {', '.join(other.teams) or 'none'}) and {pool.name} (teams: "
                    f"{', '.join(pool.teams) or 'none'}) both offer {key}"
                    + (" GPUs" if resource == GPU_RESOURCE else "")
                    + ", which a team's quota and Kueue hold per GPU model and MIG resource, not per pool: let the "
                    "same teams use both (teams[].pools) or use another model",
                )


def _kind(pool: ResolvedGpuPool) -> str:
    sharing = pool.config.sharing
    if pool.mig_layout:
        return "MIG " + "+".join(f"{profile}x{n}" for profile, n in sorted(pool.mig_layout.items()))
    if sharing.mode == "time-slicing":
        return f"time-sliced x{sharing.replicas}"
    return "whole GPUs"


def _ray_cluster_rules(
    config: PlatformConfig, i: int, team: Team, pools: tuple[ResolvedGpuPool, ...]
) -> Iterator[Problem]:
    """A team's RayCluster runs where its pools and the KubeRay operator are, and its /dev/shm fits its memory."""
    ray = team.ray_cluster
    if ray is None:
        return
    where: list[int | str] = ["teams", i, "rayCluster"]
    if not config.kuberay.enabled:
        yield Problem(key_path(where), "set", "needs the KubeRay operator: set ml-platform:kuberay.enabled true")
    mine = [p.name for p in pools if team.name in p.teams]
    if ray.gpu_pool is not None and ray.gpu_pool not in mine:
        yield Problem(
            key_path([*where, "gpuPool"]), ray.gpu_pool, "one of the team's GPU pools: " + (", ".join(mine) or "none")
        )
    pool = ray_gpu_pool(team, pools)
    if pool is not None and ray.max_gpu_workers > 0 and ray.gpus_per_worker > pool.allocatable_per_node:
        yield Problem(
            key_path([*where, "gpusPerWorker"]),
            ray.gpus_per_worker,
            f"at most {pool.allocatable_per_node}: what one node of pool {pool.name} offers ({pool.gpu_resource})",
        )
    if pool is None and ray.max_gpu_workers > 0 and not mine:
        yield Problem(key_path([*where, "maxGpuWorkers"]), ray.max_gpu_workers, "0: the team has no GPU pools")
    for memory_key, memory in (("gpuWorkerMemory", ray.gpu_worker_memory), ("cpuWorkerMemory", ray.cpu_worker_memory)):
        if quantity_value(ray.shm_size) * 2 > quantity_value(memory):
            yield Problem(
                key_path([*where, "shmSize"]),
                ray.shm_size,
                f"at most half of {memory_key} ({memory}): /dev/shm is memory the worker is charged for, and Ray's "
                "tasks need the rest",
            )
            break


def _quota_keys(where: list[int | str], amount: int | dict[str, int], offered: dict[str, str]) -> Iterator[Problem]:
    shown = ", ".join(sorted(offered)) or "nothing (the team has no GPU pools)"
    if isinstance(amount, dict):
        for key in amount:
            if key not in offered:
                yield Problem(key_path([*where, key]), key, f"not offered by the team's pools; offered: {shown}")
    elif amount and len(offered) > 1:
        example = ", ".join(f"{k}: <n>" for k in sorted(offered))
        yield Problem(
            key_path(where), amount, f"a number is ambiguous: the team's pools offer {shown}; write {{{example}}}"
        )
    elif amount and not offered:
        yield Problem(key_path(where), amount, "the team has no GPU pools to hold GPUs on")


def _version_rules(config: PlatformConfig) -> Iterator[Problem]:
    """What the cluster's Kubernetes version allows: the cluster-autoscaler image, MutatingAdmissionPolicy."""
    version = config.cluster.kubernetes_version
    if version not in SUPPORTED_KUBERNETES_VERSIONS:
        return  # reported by the cluster rules
    ca_version = config.scaling.cluster_autoscaler_version or f"v{CLUSTER_AUTOSCALER_APP_MINOR}.0"
    uses_ca = config.cluster.cloud == "aws" and config.autoscaler == "cluster-autoscaler"
    if uses_ca and not ca_version.startswith(f"v{version}."):
        yield Problem(
            key_path(["scaling", "clusterAutoscalerVersion"]),
            config.scaling.cluster_autoscaler_version,
            f"cluster-autoscaler's minor must match Kubernetes {version}: set a v{version}.<patch> image tag "
            f"(the pinned chart defaults to v{CLUSTER_AUTOSCALER_APP_MINOR}.0)",
        )
    if config.policies.default_shm and version < MUTATING_ADMISSION_POLICY_GA:
        yield Problem(
            key_path(["policies", "defaultShm"]),
            True,
            f"MutatingAdmissionPolicy is GA from Kubernetes 1.36 (cluster is {version}; its beta API is off on "
            "EKS and GKE): use kubernetesVersion 1.36 or leave defaultShm off",
        )


# An AMI release with NVIDIA AL2023 images for Kubernetes 1.33 to 1.36 (awslabs/amazon-eks-ami CHANGELOG).
AMI_RELEASE_EXAMPLE = "v20260714"


def _ami_rules(parsed: _Parsed, sections: dict[str, Any]) -> Iterator[Problem]:
    """Karpenter resolves `@latest` on every AMI release and then replaces every node (drift): fine in dev, an
    unplanned fleet-wide GPU restart elsewhere (Karpenter's docs: latest is not for production)."""
    karpenter = parsed.cloud == "aws" and (parsed.autoscaler or "karpenter") == "karpenter"
    if not karpenter or parsed.environment == "dev" or parsed.scaling is None:
        return
    raw = sections.get("scaling")
    written = raw.get("amiVersion", "latest") if isinstance(raw, dict) else "latest"
    if parsed.scaling.ami_version == "latest" and written == "latest":  # not a default standing in for a typo
        yield Problem(
            key_path(["scaling", "amiVersion"]),
            "latest",
            f"pin an AMI release outside dev (this stack is {parsed.environment}), e.g. {AMI_RELEASE_EXAMPLE} "
            "(github.com/awslabs/amazon-eks-ami/releases; Bottlerocket: a v1.x.y release); latest replaces every "
            "node on each AMI release",
        )


def _autoscaler_rules(parsed: _Parsed) -> Iterator[Problem]:
    if parsed.cloud is None:
        return
    autoscaler = parsed.autoscaler or DEFAULT_AUTOSCALER[parsed.cloud]
    allowed = AUTOSCALERS_BY_CLOUD[parsed.cloud]
    # A value outside the enum was already reported by the schema; report only cloud mismatches here.
    if autoscaler in get_args(Autoscaler) and autoscaler not in allowed:
        why = " (Karpenter runs only on AWS)" if autoscaler == "karpenter" else ""
        yield Problem(key_path(["autoscaler"]), autoscaler, f"allowed on {parsed.cloud}: {', '.join(allowed)}{why}")


def check_rules(sections: dict[str, Any], config: PlatformConfig | None) -> list[Problem]:
    """Every cross-key problem; `config` is None when the schema already failed (rules then run on the parts)."""
    parsed = _gather(sections, config)
    problems: list[Problem] = []
    if parsed.cluster is not None:
        problems += cluster_rules(parsed.cluster)
        problems += access_rules(parsed.cluster, parsed.environment, sections.get("cluster"))
    region = parsed.cluster.region if parsed.cluster else None
    for i, pool in parsed.pools:
        problems += pool_rules(i, pool, parsed.cloud, region)
        problems += pool_gpu_rules(i, pool, parsed.cloud, parsed.autoscaler, parsed.gpu, parsed.scaling)
        problems += reservation_rules(
            i,
            pool,
            parsed.cloud,
            parsed.autoscaler or DEFAULT_AUTOSCALER.get(parsed.cloud or ""),
            region,
            _item(sections.get("gpuPools"), i),
        )
    problems += gpu_section_rules(parsed.gpu, parsed.cloud)
    if parsed.scaling is not None:
        problems += scaling_gpu_rules(parsed.scaling, parsed.cloud, parsed.autoscaler)
    problems += _duplicates("gpuPools", [(i, p.name) for i, p in parsed.pools])
    problems += _pool_name_and_group_rules(parsed)
    problems += _duplicates("teams", [(i, t.name) for i, t in parsed.teams])
    problems += _team_rules(parsed, sections.get("gpuPools"))
    if config is not None:
        problems += capacity_rules(
            ["scaling", "cpuPool", "capacity"], config.scaling.cpu_pool.capacity, ("spot", "on-demand")
        )
        problems += _version_rules(config)
        problems += _team_quota_rules(config)
        problems += storage_rules(config)
    problems += _autoscaler_rules(parsed)
    problems += _ami_rules(parsed, sections)
    return problems


def config_warnings(config: PlatformConfig) -> list[str]:
    """Risky but allowed: shown by `make plan` and, under the Pulumi CLI, as warnings."""
    pools = resolve_gpu_pools(config)
    return (
        access_warnings(config.cluster, config.environment)
        + gpu_warnings(config)
        + capacity_warnings(config, pools)
        + ray_quota_warnings(config, pools)
        + workload_warnings(config)
    )


# What Kueue adds to the head for the in-tree autoscaler sidecar (KubeRay's default container resources).
AUTOSCALER_SIDECAR = {"cpu": Decimal("0.5"), "memory": Decimal(512 * 2**20)}


def ray_quota_warnings(config: PlatformConfig, pools: tuple[ResolvedGpuPool, ...]) -> list[str]:
    """A shared RayCluster whose workers at their maxima do not fit the team's CPU or memory quota (not borrowed)
    scales only part of the way: say how far."""
    cpu_pool = platform_facts(config).cpu_worker_pool
    warnings = []
    for team in config.teams:
        ray = team.ray_cluster
        if ray is None:
            continue
        gpu_workers = ray.max_gpu_workers if ray_gpu_pool(team, pools) is not None else 0
        cpu_workers = ray.max_cpu_workers if cpu_pool else 0
        for resource, quota, head, gpu, cpu in (
            ("cpu", team.resources.cpu, ray.head_cpu, ray.gpu_worker_cpu, ray.cpu_worker_cpu),
            ("memory", team.resources.memory, ray.head_memory, ray.gpu_worker_memory, ray.cpu_worker_memory),
        ):
            base = quantity_value(head) + AUTOSCALER_SIDECAR[resource] + cpu_workers * quantity_value(cpu)
            per_gpu_worker = quantity_value(gpu)
            if base + gpu_workers * per_gpu_worker > quantity_value(quota):
                fit = max(0, int((quantity_value(quota) - base) // per_gpu_worker)) if per_gpu_worker else 0
                warnings.append(
                    f"ml-platform:teams: {team.name}'s RayCluster at its maxima ({gpu_workers} GPU and {cpu_workers} "
                    f"CPU workers) needs more {resource} than the team's quota ({quota}); with every CPU worker up, "
                    f"{fit} GPU workers fit: raise resources.{resource} or lower the maxima"
                )
    return warnings


def capacity_warnings(config: PlatformConfig, pools: tuple[ResolvedGpuPool, ...]) -> list[str]:
    if config.kueue.overcommit == "error":
        return []  # then a config error (_team_quota_rules)
    return [
        f"teams are promised {row.promised} {row.key} GPUs ({row.resource}) but the pools can ever provide "
        f"{row.available} (at maxNodes): quota beyond that only queues (kueue.overcommit: error refuses it)"
        for row in capacity_rows(config.teams, pools)
        if row.overcommitted
    ]


__all__ = ["check_rules", "config_warnings"]
