"""Rules on the GPU stack (`ml-platform:gpu`) and how pools share GPUs with it: custom MIG layouts, what each
cloud and AMI family can do, and the warnings a stack gets for risky choices."""

from __future__ import annotations

import re
from collections.abc import Iterator

from components.catalog import GPU_MODELS
from components.config.errors import Problem, key_path
from components.config.gpu import GpuStackConfig
from components.config.gpu_pools import GpuPool
from components.config.platform import PlatformConfig
from components.config.scaling import ScalingConfig

COMPUTE_SLICES, MEMORY_SLICES = 7, 8
# A layout's name is the value of the nvidia.com/mig.config node label.
LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


def gpu_section_rules(gpu: GpuStackConfig, cloud: str | None) -> Iterator[Problem]:
    for name in ("driver", "toolkit"):
        if getattr(gpu, name) and cloud in ("aws", "gcp"):
            why = "the EKS GPU AMIs ship it" if cloud == "aws" else "GKE installs it"
            yield Problem(key_path(["gpu", name]), True, f"only used on existing clusters ({why})")
    if "gke_metrics" in gpu.model_fields_set and cloud not in (None, "gcp"):
        yield Problem(key_path(["gpu", "gkeMetrics"]), gpu.gke_metrics, "only used on gcp")
    known = {p.name for m in GPU_MODELS.values() for p in m.mig_profiles}
    for name, layout in gpu.mig_configs.items():
        where: list[int | str] = ["gpu", "migConfigs", name]
        if not LABEL_VALUE.fullmatch(name):
            yield Problem(
                key_path(where),
                name,
                "a layout's name is a node label value: at most 63 letters, digits, '-', '_' or '.', starting and "
                "ending with a letter or digit",
            )
        elif name.startswith("all-"):
            yield Problem(key_path(where), name, "the all-* names are the MIG manager's built-in layouts: pick another")
        if not layout:
            yield Problem(key_path(where), {}, "a layout needs at least one profile: {profile: instances per GPU}")
        for profile, count in layout.items():
            if profile not in known:
                yield Problem(key_path([*where, profile]), profile, "not a MIG profile: " + ", ".join(sorted(known)))
            elif count < 1:
                yield Problem(key_path([*where, profile]), count, "instances per GPU must be >= 1")


def _layout_problems(pool: GpuPool, layout: dict[str, int], strategy: str) -> Iterator[str]:
    model = GPU_MODELS.get(pool.gpu)
    if model is None or not model.supports_mig:
        return
    compute = memory = 0
    known = {p.name for m in GPU_MODELS.values() for p in m.mig_profiles}
    for name, count in layout.items():
        profile = model.mig_profile(name)
        if profile is None:
            if name in known:  # an unknown profile is reported once, at its own key
                yield f"{name} is not a MIG profile of {pool.gpu}"
            continue
        if count > profile.per_gpu:
            yield f"at most {profile.per_gpu} x {name} fit on one {pool.gpu}"
        compute += profile.compute_slices * count
        memory += model.memory_slices(profile) * count
    if compute > COMPUTE_SLICES or memory > MEMORY_SLICES:
        yield f"needs {compute} compute and {memory} memory slices; one {pool.gpu} has 7 and 8"
    if strategy == "single" and len(layout) > 1:
        yield "gpu.migStrategy single advertises every slice as nvidia.com/gpu: one profile per layout"


def pool_gpu_rules(
    i: int,
    pool: GpuPool,
    cloud: str | None,
    autoscaler: str | None,
    gpu: GpuStackConfig,
    scaling: ScalingConfig | None,
) -> Iterator[Problem]:
    where: list[int | str] = ["gpuPools", i, "sharing"]
    sharing = pool.sharing
    if sharing.mode == "mig" and sharing.config is not None:
        if not sharing.config:
            yield Problem(key_path([*where, "config"]), "", "the name of a layout in ml-platform:gpu.migConfigs")
        elif cloud == "gcp":
            yield Problem(key_path([*where, "config"]), sharing.config, "GKE partitions every GPU one way: use profile")
        elif sharing.config not in gpu.mig_configs:
            allowed = ", ".join(sorted(gpu.mig_configs)) or "none defined in ml-platform:gpu.migConfigs"
            yield Problem(key_path([*where, "config"]), sharing.config, f"allowed: {allowed}")
        else:
            for message in _layout_problems(pool, gpu.mig_configs[sharing.config], gpu.mig_strategy):
                yield Problem(key_path(["gpu", "migConfigs", sharing.config]), gpu.mig_configs[sharing.config], message)
    karpenter = cloud == "aws" and autoscaler in (None, "karpenter")
    if karpenter and scaling is not None and scaling.ami_family == "bottlerocket" and sharing.mode != "none":
        yield Problem(
            key_path([*where, "mode"]),
            sharing.mode,
            "Bottlerocket GPU nodes run their own device plugin, which the platform does not configure for sharing "
            "(its MIG is single-strategy, set at boot): use amiFamily al2023 for shared GPUs, or mode none",
        )


def scaling_gpu_rules(scaling: ScalingConfig, cloud: str | None, autoscaler: str | None) -> Iterator[Problem]:
    if scaling.node_overlay and not (cloud == "aws" and autoscaler in (None, "karpenter")):
        yield Problem(key_path(["scaling", "nodeOverlay"]), True, "only used with Karpenter (aws)")


def gpu_warnings(config: PlatformConfig) -> list[str]:
    """Risky but allowed GPU sharing."""
    warnings = []
    for i, pool in enumerate(config.gpu_pools):
        if pool.sharing.mode != "time-slicing":
            continue
        if config.environment == "prod":
            reason = "in a production stack"
        elif pool.workload == "inference":
            reason = "on an inference pool"
        else:
            continue
        warnings.append(
            f"{key_path(['gpuPools', i, 'sharing', 'mode'])}: time-slicing {reason}: pods share GPU memory with no "
            "isolation (one can take another's memory or crash it); prefer MIG or whole GPUs"
        )
    return warnings
