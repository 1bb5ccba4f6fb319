"""GPU catalogue: the one table of GPU facts used by config validation, the cluster layer and the docs.

A GPU pool names a GPU model and a GPU count per node; the catalogue turns (cloud, gpu, gpusPerNode)
into the instance type (AWS) or machine type + accelerator type (GCP) that actually provides it, and
knows which MIG profiles exist for that exact GPU model.

Sources: AWS EC2 accelerated-computing instance pages (p4d, p4de, p5, g5, g6, g4dn), GCP GPU machine
types (a2-highgpu, a2-ultragpu, a3-highgpu, g2-standard, n1 + T4), NVIDIA MIG user guide profile tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vocabulary.resources import mig_resource_name

Cloud = Literal["aws", "gcp", "existing"]
CLOUDS: tuple[Cloud, ...] = ("aws", "gcp", "existing")


@dataclass(frozen=True)
class MigProfile:
    """One MIG profile of one GPU model, e.g. 1g.10gb on an A100-80GB (7 per GPU)."""

    name: str
    per_gpu: int
    memory_gb: int

    @property
    def resource_name(self) -> str:
        """Under the MIG "mixed" strategy each profile is its own extended resource."""
        return mig_resource_name(self.name)

    @property
    def builtin_config(self) -> str:
        """The MIG manager's config that splits every GPU into this profile (`all-1g.10gb`, `all-1g.10gb.me`)."""
        return f"all-{self.name.replace('+', '.')}"

    @property
    def compute_slices(self) -> int:
        """Of the 7 compute slices of a GPU ("1g" = 1)."""
        return int(self.name.split("g.", 1)[0])


@dataclass(frozen=True)
class GpuModel:
    key: str
    display_name: str
    memory_gib: int
    # GPU Feature Discovery's nvidia.com/gpu.product value (the SXM variant where clouds sell SXM).
    product: str
    mig_profiles: tuple[MigProfile, ...] = ()
    # PCI device ids as the MIG manager's `device-filter` spells them (device + vendor 10DE), SXM and PCIe boards.
    pci_device_ids: tuple[str, ...] = ()

    @property
    def supports_mig(self) -> bool:
        return bool(self.mig_profiles)

    def memory_slices(self, profile: MigProfile) -> int:
        """Of the 8 memory slices of a GPU."""
        return profile.memory_gb * 8 // self.memory_gib

    def mig_profile(self, name: str) -> MigProfile | None:
        return next((p for p in self.mig_profiles if p.name == name), None)


@dataclass(frozen=True)
class NodeShape:
    """A node that carries `gpus_per_node` GPUs of one model on one cloud."""

    cloud: Cloud
    gpu: str
    gpus_per_node: int
    # AWS instance types (first is preferred; all carry the same GPUs) or the GCP machine type.
    instance_types: tuple[str, ...]
    # GCP accelerator type for guest_accelerator; None on AWS and existing clusters.
    accelerator_type: str | None = None
    vcpus: int = 0
    memory_gib: int = 0
    # Local NVMe instance store (AWS p4d/p5, ...): RAID0 for image pulls and scratch.
    local_nvme: bool = False
    # Sold only as Spot (or Flex-start) capacity: GCP's a3-highgpu-1g/2g/4g.
    spot_only: bool = False

    def largest(self) -> tuple[int, int]:
        """(vCPUs, memory GiB) of the largest instance type this shape may launch as (AWS)."""
        sizes = [AWS_INSTANCE_RESOURCES[t] for t in self.instance_types if t in AWS_INSTANCE_RESOURCES]
        return max(sizes) if sizes else (self.vcpus, self.memory_gib)

    @property
    def instance_type(self) -> str:
        # Existing clusters bring their own nodes: there is no type to pick.
        return self.instance_types[0] if self.instance_types else "existing nodes"


# EC2 vCPU quotas per region that GPU instances count against (Service Quotas console names; EC2 user guide,
# "On-Demand Instance quotas" and "Spot Instance quotas"). New accounts start at 0 for every one of them.
def ec2_quota(instance_type: str, capacity: str) -> str | None:
    """The quota `capacity` instances of this type count against: `reserved` is an On-Demand Capacity Reservation,
    which needs On-Demand quota to be created (CreateCapacityReservation); None for a Capacity Block (bought per
    block, `capacity-block`) and families without a GPU quota."""
    family = instance_type.split(".", 1)[0]
    kind = "P" if family.startswith("p") else "G and VT" if family.startswith(("g", "vt")) else None
    if kind is None or capacity == "capacity-block":
        return None
    if capacity == "spot":
        if kind == "P":
            return (
                "All P5 Spot Instance Requests"
                if family.startswith("p5")
                else "All P4, P3 and P2 Spot Instance Requests"
            )
        return "All G and VT Spot Instance Requests"
    return f"Running On-Demand {kind} instances"


_A100_40_MIG = (
    MigProfile("1g.5gb", 7, 5),
    MigProfile("1g.5gb+me", 1, 5),
    MigProfile("1g.10gb", 4, 10),
    MigProfile("2g.10gb", 3, 10),
    MigProfile("3g.20gb", 2, 20),
    MigProfile("4g.20gb", 1, 20),
    MigProfile("7g.40gb", 1, 40),
)
_80GB_MIG = (
    MigProfile("1g.10gb", 7, 10),
    MigProfile("1g.10gb+me", 1, 10),
    MigProfile("1g.20gb", 4, 20),
    MigProfile("2g.20gb", 3, 20),
    MigProfile("3g.40gb", 2, 40),
    MigProfile("4g.40gb", 1, 40),
    MigProfile("7g.80gb", 1, 80),
)

GPU_MODELS: dict[str, GpuModel] = {
    m.key: m
    for m in (
        # Device ids: NVIDIA's default mig-parted config (gpu-operator assets/state-mig-manager).
        GpuModel(
            "a100-40gb",
            "NVIDIA A100 40GB",
            40,
            "NVIDIA-A100-SXM4-40GB",
            _A100_40_MIG,
            ("0x20B010DE", "0x20B110DE", "0x20F110DE", "0x20F610DE"),
        ),
        GpuModel(
            "a100-80gb",
            "NVIDIA A100 80GB",
            80,
            "NVIDIA-A100-SXM4-80GB",
            _80GB_MIG,
            ("0x20B210DE", "0x20B510DE", "0x20F310DE", "0x20F510DE"),
        ),
        GpuModel(
            "h100-80gb",
            "NVIDIA H100 80GB",
            80,
            "NVIDIA-H100-80GB-HBM3",
            _80GB_MIG,
            ("0x233010DE", "0x233110DE", "0x232210DE", "0x232410DE"),
        ),
        GpuModel("l4", "NVIDIA L4", 24, "NVIDIA-L4"),
        GpuModel("a10g", "NVIDIA A10G", 24, "NVIDIA-A10G"),
        GpuModel("t4", "NVIDIA T4", 16, "Tesla-T4"),
    )
}


# vCPUs and memory (GiB) of every AWS instance type above: Karpenter CPU/memory limits use the largest.
AWS_INSTANCE_RESOURCES: dict[str, tuple[int, int]] = {
    "p4d.24xlarge": (96, 1152),
    "p4de.24xlarge": (96, 1152),
    "p5.4xlarge": (16, 256),
    "p5.48xlarge": (192, 2048),
    **{
        f"{family}.{size}": r
        for family in ("g5", "g6")
        for size, r in {
            "xlarge": (4, 16),
            "2xlarge": (8, 32),
            "4xlarge": (16, 64),
            "12xlarge": (48, 192),
            "24xlarge": (96, 384),
            "48xlarge": (192, 768),
        }.items()
    },
    "g4dn.xlarge": (4, 16),
    "g4dn.2xlarge": (8, 32),
    "g4dn.12xlarge": (48, 192),
    "g4dn.metal": (96, 384),
}


def _aws(gpu: str, n: int, types: tuple[str, ...]) -> NodeShape:
    vcpus, memory = AWS_INSTANCE_RESOURCES[types[0]]
    # Every GPU instance type in the catalogue has local NVMe instance storage.
    return NodeShape("aws", gpu, n, types, None, vcpus, memory, local_nvme=True)


def _gcp(gpu: str, n: int, machine: str, accel: str, vcpus: int, mem: int, spot_only: bool = False) -> NodeShape:
    return NodeShape("gcp", gpu, n, (machine,), accel, vcpus, mem, False, spot_only)


_SHAPES: tuple[NodeShape, ...] = (
    # AWS sells A100 only as 8-GPU p4d (40GB) / p4de (80GB); H100 as p5.48xlarge (8) or p5.4xlarge (1).
    _aws("a100-40gb", 8, ("p4d.24xlarge",)),
    _aws("a100-80gb", 8, ("p4de.24xlarge",)),
    _aws("h100-80gb", 1, ("p5.4xlarge",)),
    _aws("h100-80gb", 8, ("p5.48xlarge",)),
    _aws("a10g", 1, ("g5.2xlarge", "g5.4xlarge", "g5.xlarge")),
    _aws("a10g", 4, ("g5.12xlarge", "g5.24xlarge")),
    _aws("a10g", 8, ("g5.48xlarge",)),
    _aws("l4", 1, ("g6.2xlarge", "g6.4xlarge", "g6.xlarge")),
    _aws("l4", 4, ("g6.12xlarge", "g6.24xlarge")),
    _aws("l4", 8, ("g6.48xlarge",)),
    _aws("t4", 1, ("g4dn.xlarge", "g4dn.2xlarge")),
    _aws("t4", 4, ("g4dn.12xlarge",)),
    _aws("t4", 8, ("g4dn.metal",)),
    # GCP: A100 40GB = a2-highgpu, A100 80GB = a2-ultragpu, H100 = a3-highgpu, L4 = g2-standard,
    # T4 = n1-standard with an attached accelerator.
    _gcp("a100-40gb", 1, "a2-highgpu-1g", "nvidia-tesla-a100", 12, 85),
    _gcp("a100-40gb", 2, "a2-highgpu-2g", "nvidia-tesla-a100", 24, 170),
    _gcp("a100-40gb", 4, "a2-highgpu-4g", "nvidia-tesla-a100", 48, 340),
    _gcp("a100-40gb", 8, "a2-highgpu-8g", "nvidia-tesla-a100", 96, 680),
    _gcp("a100-80gb", 1, "a2-ultragpu-1g", "nvidia-a100-80gb", 12, 170),
    _gcp("a100-80gb", 2, "a2-ultragpu-2g", "nvidia-a100-80gb", 24, 340),
    _gcp("a100-80gb", 4, "a2-ultragpu-4g", "nvidia-a100-80gb", 48, 680),
    _gcp("a100-80gb", 8, "a2-ultragpu-8g", "nvidia-a100-80gb", 96, 1360),
    _gcp("h100-80gb", 1, "a3-highgpu-1g", "nvidia-h100-80gb", 26, 234, spot_only=True),
    _gcp("h100-80gb", 2, "a3-highgpu-2g", "nvidia-h100-80gb", 52, 468, spot_only=True),
    _gcp("h100-80gb", 4, "a3-highgpu-4g", "nvidia-h100-80gb", 104, 936, spot_only=True),
    _gcp("h100-80gb", 8, "a3-highgpu-8g", "nvidia-h100-80gb", 208, 1872),
    _gcp("l4", 1, "g2-standard-8", "nvidia-l4", 8, 32),
    _gcp("l4", 2, "g2-standard-24", "nvidia-l4", 24, 96),
    _gcp("l4", 4, "g2-standard-48", "nvidia-l4", 48, 192),
    _gcp("l4", 8, "g2-standard-96", "nvidia-l4", 96, 384),
    _gcp("t4", 1, "n1-standard-8", "nvidia-tesla-t4", 8, 30),
    _gcp("t4", 2, "n1-standard-16", "nvidia-tesla-t4", 16, 60),
    _gcp("t4", 4, "n1-standard-32", "nvidia-tesla-t4", 32, 120),
)

# MIG partition sizes GKE accepts (gpu_partition_size); NVIDIA's list above is wider (4g.*, +me, and
# 1g.10gb on A100-40GB). Source: GKE docs, "Running multi-instance GPUs".
GKE_MIG_PARTITIONS: dict[str, tuple[str, ...]] = {
    "a100-40gb": ("1g.5gb", "2g.10gb", "3g.20gb", "7g.40gb"),
    "a100-80gb": ("1g.10gb", "2g.20gb", "3g.40gb", "7g.80gb"),
    "h100-80gb": ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "7g.80gb"),
}

# On existing (on-prem / kind) clusters the nodes already exist: any power-of-two GPU count is plausible.
EXISTING_GPU_COUNTS: tuple[int, ...] = (1, 2, 4, 8, 16)


@dataclass(frozen=True)
class Catalog:
    shapes: tuple[NodeShape, ...] = field(default=_SHAPES)

    def gpus_on(self, cloud: Cloud) -> list[str]:
        if cloud == "existing":
            return sorted(GPU_MODELS)
        return sorted({s.gpu for s in self.shapes if s.cloud == cloud})

    def gpu_counts(self, cloud: Cloud, gpu: str) -> list[int]:
        if cloud == "existing":
            return list(EXISTING_GPU_COUNTS) if gpu in GPU_MODELS else []
        return sorted(s.gpus_per_node for s in self.shapes if s.cloud == cloud and s.gpu == gpu)

    def mig_profiles_on(self, cloud: Cloud, gpu: str) -> list[str]:
        """MIG profiles a pool may use: GKE creates only some of them itself."""
        model = GPU_MODELS.get(gpu)
        names = [p.name for p in model.mig_profiles] if model else []
        return [n for n in names if n in GKE_MIG_PARTITIONS.get(gpu, ())] if cloud == "gcp" else names

    def shape(self, cloud: Cloud, gpu: str, gpus_per_node: int) -> NodeShape | None:
        if cloud == "existing":
            if gpu in GPU_MODELS and gpus_per_node in EXISTING_GPU_COUNTS:
                return NodeShape("existing", gpu, gpus_per_node, ())
            return None
        return next(
            (s for s in self.shapes if (s.cloud, s.gpu, s.gpus_per_node) == (cloud, gpu, gpus_per_node)),
            None,
        )


CATALOG = Catalog()
