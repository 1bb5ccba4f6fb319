"""GPU extended resources: what pods request, quotas count and policies check."""

from __future__ import annotations

GPU_RESOURCE = "nvidia.com/gpu"
# Under the MIG "mixed" strategy each profile is its own resource: nvidia.com/mig-1g.10gb, ...
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"


def mig_resource_name(profile: str) -> str:
    """The resource of a MIG profile. The device plugin spells the media-extension profiles "1g.10gb+me" as
    "mig-1g.10gb.me" ('+' is not valid in a resource name)."""
    return f"{MIG_RESOURCE_PREFIX}{profile.replace('+', '.')}"


def is_gpu_resource(name: str) -> bool:
    """A full GPU or a MIG slice: quotas, Kueue flavors and policies treat both as GPUs."""
    return name == GPU_RESOURCE or name.startswith(MIG_RESOURCE_PREFIX)
