"""GPU pools resolved once: every fact about a pool that more than one layer needs, derived here and read
everywhere else (EKS node groups, GKE node pools, Karpenter, cluster-autoscaler, the plan summary, exports).

Standard library and config models only (no Pulumi): the config rules and the offline plan summary use it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from components.catalog import CATALOG, GPU_MODELS, GpuModel, NodeShape, ec2_quota
from components.config.base import Autoscaler, CapacityType, Cloud, Environment
from components.config.cluster import MUTATING_ADMISSION_POLICY_GA
from components.config.gpu import MigStrategy
from components.config.gpu_pools import GpuPool
from components.config.platform import PlatformConfig
from vocabulary.labels import (
    GKE_GPU_TAINT_VALUE,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    LABEL_CAPACITY,
    LABEL_GPU,
    LABEL_POOL,
    LABEL_SHARING,
    LABEL_WORKLOAD,
    NVIDIA_DEPLOY_LABEL,
    NVIDIA_DEVICE_PLUGIN_CONFIG_LABEL,
    NVIDIA_MIG_CONFIG_LABEL,
)
from vocabulary.resources import GPU_RESOURCE, mig_resource_name
from vocabulary.storage import SHARED_STORAGE_CLASS

# What makes a node's GPUs schedulable: the GPU Operator's device plugin (EKS AL2023 and existing clusters),
# Bottlerocket's own device plugin (its NVIDIA variants run one on the host), or GKE's.
GpuStack = Literal["operator", "bottlerocket", "gke"]
# GPU Operator operands kept off Bottlerocket nodes, all of them: the host brings its driver, toolkit and device
# plugin (two plugins must not register nvidia.com/gpu), the operator's validator cannot find Bottlerocket's driver
# (and everything else waits for it), and sharing is rejected there. The standalone dcgm-exporter measures them.
BOTTLEROCKET_OPERANDS_OFF = ("operands",)

# Cost-allocation tags (AWS) and labels (GCP): one set of keys, valid on both clouds (GCP label keys allow only
# lowercase letters, digits, '_' and '-'), so one billing query works everywhere.
COST_MANAGED_BY = "managed-by"
COST_CLUSTER = "ml-platform-cluster"
COST_ENVIRONMENT = "ml-platform-environment"
COST_POOL = "ml-platform-pool"
COST_CAPACITY = "ml-platform-capacity"
COST_TEAM = "ml-platform-team"
# The team tag of a pool several teams (or none in particular) use; no team may take this name.
SHARED_TEAM = "shared"
# A stack's own tags may not set these: the platform does (what starts with the prefix, and managed-by).
COST_KEY_PREFIX = "ml-platform-"


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    def as_k8s(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class CapacityGroup:
    """Nodes of one capacity type of one pool: an EKS managed node group, a GKE node pool or a Karpenter NodePool."""

    name: str
    capacity: CapacityType
    min_nodes: int
    max_nodes: int


@dataclass(frozen=True)
class PlatformFacts:
    """Facts of the whole stack that layers need besides their own config section."""

    cluster: str
    environment: Environment
    cloud: Cloud
    autoscaler: Autoscaler
    # The stack's own cost tags (cluster.tags), before the platform's keys are added.
    stack_tags: tuple[tuple[str, str], ...] = ()
    mig_strategy: MigStrategy = "mixed"
    # Karpenter: NodeOverlays declare MIG slices, so MIG pools scale like any other (scaling.nodeOverlay).
    node_overlay: bool = False
    # The AMI family of the nodes Karpenter launches (managed node groups always run the AL2023 NVIDIA AMI).
    ami_family: str = "al2023"
    # Custom MIG layouts (gpu.migConfigs): name -> ((profile, instances per GPU), ...).
    mig_configs: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    kubernetes_version: str = "1.35"
    # cluster.protect (default: prod): stateful resources refuse deletion.
    protect: bool = False
    # Karpenter's CPU NodePool (nodes labelled ml-platform.io/role=cpu-workers) exists.
    cpu_worker_pool: bool = False
    # The teams (storage.*: each gets a volume and a checkpoint identity).
    teams: tuple[str, ...] = ()
    # Each team's shared volume: (StorageClass, size), or None without a shared filesystem.
    shared_volume: tuple[str, str] | None = None
    # The stack has a checkpoint bucket: each team namespace gets its ServiceAccount and ConfigMap.
    checkpoints: bool = False

    @property
    def mutating_admission_policies(self) -> bool:
        """The cluster serves MutatingAdmissionPolicy (GA)."""
        return self.kubernetes_version >= MUTATING_ADMISSION_POLICY_GA

    def mig_layout(self, name: str) -> dict[str, int]:
        return dict(next((layout for n, layout in self.mig_configs if n == name), ()))

    @property
    def cost_tags(self) -> dict[str, str]:
        """What every cloud resource of the stack carries."""
        return {
            **dict(self.stack_tags),
            COST_MANAGED_BY: "ml-platform",
            COST_CLUSTER: self.cluster,
            COST_ENVIRONMENT: self.environment,
        }

    def pool_cost_tags(self, pool: str, teams: tuple[str, ...], capacity: CapacityType | None = None) -> dict[str, str]:
        """What a pool's nodes (instances, volumes, network interfaces) carry: the pool and the team it serves."""
        tags = {**self.cost_tags, COST_POOL: pool, COST_TEAM: teams[0] if len(teams) == 1 else SHARED_TEAM}
        if capacity is not None:
            tags[COST_CAPACITY] = capacity
        return tags


def is_fixed_group(pool: GpuPool, autoscaler: str | None, cloud: str | None, node_overlay: bool = False) -> bool:
    """A MIG pool under Karpenter without NodeOverlays: Karpenter cannot plan for MIG slices it does not know of, so
    the pool is a fixed managed node group of minNodes (= maxNodes) and has no NodePool."""
    return cloud == "aws" and autoscaler in (None, "karpenter") and pool.sharing.mode == "mig" and not node_overlay


@dataclass(frozen=True)
class ResolvedGpuPool:
    """A GPU pool from the stack file, resolved against the catalogue for one cloud and autoscaler."""

    config: GpuPool
    model: GpuModel
    shape: NodeShape
    taint: Taint
    platform: PlatformFacts
    # The teams that may use the pool (a team with no `pools` may use every pool).
    teams: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def cloud(self) -> Cloud:
        return self.platform.cloud

    @property
    def capacity_types(self) -> tuple[CapacityType, ...]:
        return self.config.capacity

    def labels(self, capacity: CapacityType) -> dict[str, str]:
        """Portable labels of a node of this pool with the given capacity type."""
        return {
            LABEL_GPU: self.model.key,
            LABEL_POOL: self.name,
            LABEL_CAPACITY: capacity,
            LABEL_WORKLOAD: self.config.workload,
            LABEL_SHARING: self.config.sharing.mode,
        }

    def gpu_stack(self, karpenter: bool = False) -> GpuStack:
        """What serves this pool's GPUs on a node from a managed group (or existing node), or from Karpenter."""
        if self.cloud == "gcp":
            return "gke"
        if karpenter and self.platform.ami_family == "bottlerocket":
            return "bottlerocket"
        return "operator"

    def node_labels(self, capacity: CapacityType, stack: GpuStack) -> dict[str, str]:
        """Everything a node of this pool is labelled with: the portable labels, and what the GPU stack reads (the
        device-plugin config a time-sliced node selects, the MIG layout the MIG manager applies, the operands
        kept off Bottlerocket)."""
        labels = self.labels(capacity)
        if stack == "operator":
            if self.device_plugin_config is not None:
                labels[NVIDIA_DEVICE_PLUGIN_CONFIG_LABEL] = self.device_plugin_config
            if self.mig_config is not None:
                labels[NVIDIA_MIG_CONFIG_LABEL] = self.mig_config
        elif stack == "bottlerocket":
            labels |= {f"{NVIDIA_DEPLOY_LABEL}.{operand}": "false" for operand in BOTTLEROCKET_OPERANDS_OFF}
        return labels

    @property
    def device_plugin_config(self) -> str | None:
        """The device plugin's named config a time-sliced node selects (one per pool, named after it)."""
        sharing = self.config.sharing
        return self.name if sharing.mode == "time-slicing" and self.cloud != "gcp" else None

    @property
    def mig_layout(self) -> dict[str, int]:
        """MIG profile -> instances per GPU ({} unless the pool uses MIG)."""
        sharing = self.config.sharing
        if sharing.mode != "mig":
            return {}
        if sharing.config:
            return self.platform.mig_layout(sharing.config)
        profile = self.model.mig_profile(sharing.profile or "")
        return {profile.name: profile.per_gpu} if profile else {}

    @property
    def mig_config(self) -> str | None:
        """The MIG manager config the pool's nodes select: the built-in `all-<profile>` or a custom layout's name.
        None on GKE, which partitions GPUs from the node pool's settings."""
        sharing = self.config.sharing
        if sharing.mode != "mig" or self.cloud == "gcp":
            return None
        if sharing.config:
            return sharing.config
        profile = self.model.mig_profile(sharing.profile or "")
        return profile.builtin_config if profile else None

    @property
    def advertised(self) -> dict[str, int]:
        """The extended resources one node advertises, and how many of each."""
        sharing, gpus = self.config.sharing, self.shape.gpus_per_node
        if layout := self.mig_layout:
            # GKE and the "single" strategy advertise every slice as nvidia.com/gpu; "mixed" one resource per profile.
            if self.cloud == "gcp" or self.platform.mig_strategy == "single":
                return {GPU_RESOURCE: gpus * sum(layout.values())}
            return {mig_resource_name(profile): gpus * count for profile, count in layout.items()}
        if sharing.mode == "time-slicing" and sharing.replicas:
            return {GPU_RESOURCE: gpus * sharing.replicas}
        return {GPU_RESOURCE: gpus}

    def cost_tags(self, capacity: CapacityType | None = None) -> dict[str, str]:
        return self.platform.pool_cost_tags(self.name, self.teams, capacity)

    def baseline_nodes(self, capacity: CapacityType) -> int:
        """Nodes kept when idle: minNodes on the first-listed (preferred) capacity type; a fallback starts at 0."""
        return self.config.min_nodes if capacity == self.capacity_types[0] else 0

    def ec2_quotas(self) -> dict[str, int]:
        """vCPUs of each EC2 quota the pool needs at maxNodes (aws): what a new account must ask for first."""
        if self.cloud != "aws":
            return {}
        vcpus = self.shape.largest()[0] * self.config.max_nodes
        needs: dict[str, int] = {}
        block = self.config.reservations is not None and self.config.reservations.capacity_block
        for capacity in self.capacity_types:
            kind = "capacity-block" if capacity == "reserved" and block else capacity
            if (quota := ec2_quota(self.shape.instance_type, kind)) is not None:
                needs[quota] = needs.get(quota, 0) + vcpus
        return needs

    def reservation_target(self, capacity: CapacityType) -> tuple[str, str] | None:
        """(reservation id, its AZ) a managed node group of this capacity type launches into (its launch template
        targets one reservation by id, its subnets are that AZ's); None for spot and on-demand."""
        r = self.config.reservations
        if capacity != "reserved" or r is None or not r.ids or r.availability_zone is None:
            return None
        return r.ids[0], r.availability_zone

    @property
    def fixed_group(self) -> bool:
        return is_fixed_group(self.config, self.platform.autoscaler, self.cloud, self.platform.node_overlay)

    @property
    def node_groups(self) -> tuple[CapacityGroup, ...]:
        """The groups the cloud manages: with cluster-autoscaler (EKS) and on GKE one per capacity type spanning
        baseline..maxNodes; under Karpenter only a fixed baseline group of minNodes, because Karpenter has no
        minimum (see docs/autoscaling.md). None on existing clusters."""
        if self.cloud == "existing":
            return ()
        if self.cloud == "gcp" or self.platform.autoscaler == "cluster-autoscaler":
            return tuple(
                CapacityGroup(f"{self.name}-{c}", c, self.baseline_nodes(c), self.config.max_nodes)
                for c in self.capacity_types
            )
        first, size = self.capacity_types[0], self.config.min_nodes
        return (CapacityGroup(f"{self.name}-baseline", first, size, size),) if size > 0 else ()

    @property
    def karpenter_node_pools(self) -> tuple[CapacityGroup, ...]:
        """Karpenter NodePools, one per capacity type, each capped at the nodes a baseline group does not hold."""
        if self.platform.autoscaler != "karpenter" or self.fixed_group:
            return ()
        groups = (
            CapacityGroup(f"{self.name}-{c}", c, 0, self.config.max_nodes - self.baseline_nodes(c))
            for c in self.capacity_types
        )
        return tuple(g for g in groups if g.max_nodes > 0)

    @property
    def quota_keys(self) -> dict[str, str]:
        """Team quota key -> the resource it counts: whole GPUs by model (`h100-80gb` -> nvidia.com/gpu), MIG
        slices by their resource name."""
        return {(self.model.key if resource == GPU_RESOURCE else resource): resource for resource in self.advertised}

    @property
    def kueue_flavors(self) -> dict[str, str]:
        """Resource -> the Kueue ResourceFlavor its quota is held in: whole GPUs per model (`h100-80gb`, which
        selects the model's nodes), MIG slices per resource (`mig-1g.10gb`: the resource alone finds its nodes, and
        one profile can come from pools of two models)."""
        return {
            resource: self.model.key if resource == GPU_RESOURCE else resource.removeprefix("nvidia.com/")
            for resource in self.advertised
        }

    @property
    def gpu_resource(self) -> str:
        """The (first) extended resource pods request on this pool: nvidia.com/gpu or nvidia.com/mig-<profile>."""
        return next(iter(self.advertised))

    @property
    def allocatable_per_node(self) -> int:
        """How many units of `gpu_resource` one node advertises."""
        return next(iter(self.advertised.values()))

    @property
    def ceiling_nodes(self) -> int:
        """Nodes the pool can ever have: maxNodes of every capacity type (each has its own group or NodePool)."""
        return self.config.max_nodes * len(self.capacity_types)

    @property
    def max_gpus(self) -> int:
        """Physical GPUs at maxNodes: the pool's cost ceiling (per capacity type)."""
        return self.config.max_nodes * self.shape.gpus_per_node

    def summary(self) -> dict[str, Any]:
        """What the stack exports and the offline plan prints about the pool."""
        return {
            "name": self.name,
            "gpu": self.model.key,
            "instanceType": self.shape.instance_type,
            "acceleratorType": self.shape.accelerator_type,
            "gpusPerNode": self.shape.gpus_per_node,
            "capacity": list(self.capacity_types),
            "minNodes": self.config.min_nodes,
            "maxNodes": self.config.max_nodes,
            "maxGpus": self.max_gpus,
            "gpuResource": self.gpu_resource,
            "allocatablePerNode": self.allocatable_per_node,
            "advertisedPerNode": dict(self.advertised),
            "sharing": self.config.sharing.mode,
            "scalesToZero": self.config.min_nodes == 0,
            **(
                {"reservations": self.config.reservations.model_dump(by_alias=True)} if self.config.reservations else {}
            ),
        }


def platform_facts(config: PlatformConfig) -> PlatformFacts:
    return PlatformFacts(
        cluster=config.cluster.name,
        environment=config.environment,
        cloud=config.cluster.cloud,
        autoscaler=config.autoscaler or "none",
        stack_tags=tuple(config.cluster.tags.items()),
        mig_strategy=config.gpu.mig_strategy,
        node_overlay=config.scaling.node_overlay,
        ami_family=config.scaling.ami_family,
        mig_configs=tuple((name, tuple(layout.items())) for name, layout in config.gpu.mig_configs.items()),
        kubernetes_version=config.cluster.kubernetes_version,
        protect=bool(config.cluster.protect),
        cpu_worker_pool=config.cluster.cloud == "aws"
        and config.autoscaler == "karpenter"
        and config.scaling.cpu_pool.enabled,
        teams=tuple(t.name for t in config.teams),
        shared_volume=shared_volume(config),
        checkpoints=bool(config.storage.checkpoints.enabled),
    )


def shared_volume(config: PlatformConfig) -> tuple[str, str] | None:
    shared = config.storage.shared_filesystem
    if shared.type in (None, "none") or shared.size is None:
        return None
    storage_class = shared.storage_class_name if shared.type == "existing" else SHARED_STORAGE_CLASS
    return (storage_class or SHARED_STORAGE_CLASS, shared.size)


def resolve_gpu_pools(config: PlatformConfig) -> tuple[ResolvedGpuPool, ...]:
    """Pools are validated before this runs, so every lookup succeeds."""
    facts = platform_facts(config)
    taint = Taint(GPU_TAINT_KEY, GKE_GPU_TAINT_VALUE if facts.cloud == "gcp" else GPU_TAINT_VALUE)
    resolved = []
    for pool in config.gpu_pools:
        shape = CATALOG.shape(facts.cloud, pool.gpu, pool.gpus_per_node)
        if shape is None:  # pragma: no cover - the config rules reject this first
            raise ValueError(f"no {pool.gpu} x{pool.gpus_per_node} on {facts.cloud}")
        teams = tuple(t.name for t in config.teams if not t.pools or pool.name in t.pools)
        resolved.append(ResolvedGpuPool(pool, GPU_MODELS[pool.gpu], shape, taint, facts, teams))
    return tuple(resolved)
