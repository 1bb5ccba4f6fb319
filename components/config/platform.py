"""`PlatformConfig`: the whole stack file, and the defaults that follow from `ml-platform:environment`."""

from __future__ import annotations

from pydantic import Field, model_validator

from components.config.base import Autoscaler, ConfigModel, Environment
from components.config.cluster import AwsSettings, ClusterConfig, default_endpoint_access
from components.config.gpu import GpuStackConfig
from components.config.gpu_pools import GpuPool
from components.config.kserve import KServeConfig
from components.config.kuberay import KubeRayConfig
from components.config.kueue import KueueConfig
from components.config.monitoring import MonitoringConfig
from components.config.policies import PoliciesConfig
from components.config.scaling import ScalingConfig
from components.config.storage import FilesystemType, StorageConfig
from components.config.teams import Team
from components.config.trainer import TrainerConfig


class PlatformConfig(ConfigModel):
    environment: Environment = Field("dev", description="dev, staging or prod: drives safe defaults.")
    cluster: ClusterConfig = Field(description="The cluster to create (aws, gcp) or use (existing).")
    gpu_pools: list[GpuPool] = Field(default_factory=list, description="GPU node pools; each scales min..max.")
    autoscaler: Autoscaler | None = Field(
        None,
        description="aws: karpenter (default) or cluster-autoscaler; gcp: cluster-autoscaler (GKE's); existing: none.",
    )
    teams: list[Team] = Field(default_factory=list, description="Per-team namespaces with GPU quotas.")
    policies: PoliciesConfig = Field(default_factory=PoliciesConfig, description="Policy pack and admission.")
    scaling: ScalingConfig = Field(default_factory=ScalingConfig, description="Autoscaling behaviour.")
    gpu: GpuStackConfig = Field(default_factory=GpuStackConfig, description="The NVIDIA GPU stack.")
    monitoring: MonitoringConfig = Field(
        default_factory=MonitoringConfig, description="Prometheus, Grafana and the GPU alerts."
    )
    kueue: KueueConfig = Field(default_factory=KueueConfig, description="Job queueing and GPU fair sharing (Kueue).")
    kuberay: KubeRayConfig = Field(default_factory=KubeRayConfig, description="The KubeRay operator.")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig, description="Kubeflow Trainer and its runtimes.")
    storage: StorageConfig = Field(
        default_factory=StorageConfig, description="Shared filesystem per team and the checkpoint bucket."
    )
    kserve: KServeConfig = Field(
        default_factory=KServeConfig, description="KServe (Standard mode) with cert-manager and serving runtimes."
    )

    @model_validator(mode="after")
    def _environment_defaults(self) -> PlatformConfig:
        prod_like = self.environment != "dev"
        cluster = self.cluster
        if cluster.endpoint_access is None and cluster.cloud != "existing":
            cluster.endpoint_access = default_endpoint_access(self.environment)
        if cluster.protect is None:
            cluster.protect = self.environment == "prod"
        if cluster.vpc.nat_gateways is None:
            cluster.vpc.nat_gateways = "one-per-az" if prod_like else "single"
        if cluster.cloud == "aws" and cluster.aws is None:
            cluster.aws = AwsSettings()
        if cluster.system_nodes.instance_type is None:
            cluster.system_nodes.instance_type = "e2-standard-4" if cluster.cloud == "gcp" else "m7i.xlarge"
        if self.autoscaler is None:
            self.autoscaler = DEFAULT_AUTOSCALER[cluster.cloud]
        if self.policies.enforcement is None:
            self.policies.enforcement = "mandatory" if prod_like else "advisory"
        # The field guide's scale-down delays: 2 minutes in dev, 5 in production (the default is 10).
        if self.scaling.consolidate_after is None:
            self.scaling.consolidate_after = "5m" if prod_like else "2m"
        if self.scaling.gke_profile is None:
            self.scaling.gke_profile = "BALANCED" if prod_like else "OPTIMIZE_UTILIZATION"
        storage = self.storage
        if storage.shared_filesystem.type is None:
            storage.shared_filesystem.type = DEFAULT_FILESYSTEM[cluster.cloud]
        if storage.shared_filesystem.size is None and storage.shared_filesystem.type != "none":
            storage.shared_filesystem.size = DEFAULT_VOLUME_SIZE[storage.shared_filesystem.type]
        if storage.checkpoints.enabled is None:
            storage.checkpoints.enabled = cluster.cloud != "existing"
        return self


DEFAULT_FILESYSTEM: dict[str, FilesystemType] = {"aws": "efs", "gcp": "filestore", "existing": "none"}
# EFS bills by use (the request only counts against the team's storage quota); FSx for Lustre's smallest SSD file
# system is 1.2 TiB; Filestore's standard tier starts at 1 TiB.
DEFAULT_VOLUME_SIZE: dict[str, str] = {
    "efs": "100Gi",
    "fsx-lustre": "1200Gi",
    "filestore": "1Ti",
    "existing": "100Gi",
}
# Which shared filesystems each cloud can provide.
FILESYSTEMS_BY_CLOUD: dict[str, tuple[FilesystemType, ...]] = {
    "aws": ("efs", "fsx-lustre", "none"),
    "gcp": ("filestore", "none"),
    "existing": ("existing", "none"),
}

DEFAULT_AUTOSCALER: dict[str, Autoscaler] = {"aws": "karpenter", "gcp": "cluster-autoscaler", "existing": "none"}

# Stack keys (without the namespace) -> the field of PlatformConfig they fill.
STACK_KEYS: dict[str, str] = {(f.alias or name): name for name, f in PlatformConfig.model_fields.items()}
# Which autoscalers each cloud can run: Karpenter only on AWS, GKE's own autoscaler on GCP.
AUTOSCALERS_BY_CLOUD: dict[str, tuple[Autoscaler, ...]] = {
    "aws": ("karpenter", "cluster-autoscaler"),
    "gcp": ("cluster-autoscaler",),
    "existing": ("none",),
}
