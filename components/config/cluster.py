"""`ml-platform:cluster`: the cluster to create (aws, gcp) or use (existing), its network and access."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from components.config.base import DNS_LABEL, Cloud, ConfigModel, EndpointAccess

ControlPlaneLog = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
ALL_CONTROL_PLANE_LOGS: tuple[ControlPlaneLog, ...] = (
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
)
# audit (who did what), api and authenticator (who got in) are what investigations need; the controller manager
# and scheduler logs are verbose and rarely read.
DEFAULT_CONTROL_PLANE_LOGS: tuple[ControlPlaneLog, ...] = ("api", "audit", "authenticator")
# The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545),
    *(731, 1096, 1827, 2192, 2557, 2922, 3288, 3653),
)
SUPPORTED_KUBERNETES_VERSIONS: tuple[str, ...] = ("1.33", "1.34", "1.35", "1.36")
# MutatingAdmissionPolicy (admissionregistration.k8s.io/v1) is GA, so on, from this version; its beta API is off on
# EKS and GKE before it.
MUTATING_ADMISSION_POLICY_GA = "1.36"


def default_endpoint_access(environment: str) -> EndpointAccess:
    """Public and private in dev, private only in staging and prod."""
    return "public-and-private" if environment == "dev" else "private"


class ExistingVpc(ConfigModel):
    """A network created outside this stack."""

    vpc_id: str | None = Field(None, description="aws: id of the VPC (vpc-...).")
    private_subnet_ids: list[str] = Field(
        default_factory=list, description="aws: private subnets for nodes, in at least 2 AZs."
    )
    public_subnet_ids: list[str] = Field(default_factory=list, description="aws: public subnets for load balancers.")
    network: str | None = Field(None, description="gcp: name of the VPC network.")
    subnetwork: str | None = Field(None, description="gcp: name of the subnetwork in the cluster region.")
    pods_range_name: str | None = Field(None, description="gcp: secondary range name for pods.")
    services_range_name: str | None = Field(None, description="gcp: secondary range name for services.")


class VpcEndpoints(ConfigModel):
    """aws: VPC endpoints of a new VPC, so image pulls, datasets and checkpoints skip the NAT gateway."""

    s3: bool = Field(
        True,
        strict=True,
        description="The S3 gateway endpoint on the private route tables (free; ECR image layers live in S3).",
    )
    ecr: bool = Field(
        False,
        strict=True,
        description="ECR interface endpoints (ecr.api, ecr.dkr) in the private subnets: pulls from ECR skip the NAT; "
        "each costs about $7.30 a month per AZ plus $0.01 per GB.",
    )


class VpcConfig(ConfigModel):
    cidr: str = Field("10.0.0.0/16", description="Primary CIDR of a new VPC (aws) or subnet (gcp).")
    az_count: int = Field(3, ge=2, le=3, description="aws: availability zones to spread subnets over.")
    nat_gateways: Literal["single", "one-per-az"] | None = Field(
        None, description="aws: NAT gateways; default `single` in dev, `one-per-az` otherwise (no single AZ failure)."
    )
    pods_cidr: str = Field("10.64.0.0/14", description="gcp: secondary range for pod IPs (VPC-native).")
    services_cidr: str = Field("10.68.0.0/20", description="gcp: secondary range for service IPs.")
    existing: ExistingVpc | None = Field(None, description="Use an existing network instead of creating one.")
    endpoints: VpcEndpoints = Field(
        default_factory=VpcEndpoints, description="aws: VPC endpoints of a new VPC (S3 gateway on by default)."
    )


class ApiAccess(ConfigModel):
    """The private path to the Kubernetes API: where `pulumi up`, CI runners and people reach it from."""

    cidrs: list[str] = Field(
        default_factory=list,
        description="Private networks (peered VPC, VPN, Direct Connect) allowed to the API: aws: port 443 on the "
        "cluster security group; gcp: master authorized networks.",
    )
    security_group_ids: list[str] = Field(
        default_factory=list,
        description="aws: security groups (sg-...) of runners, bastions or VPN endpoints allowed to port 443.",
    )
    route_via: str | None = Field(
        None,
        description="aws, a new VPC: a VPC peering connection (pcx-...) or transit gateway (tgw-...) the private "
        "route tables send `cidrs` to (the return path; set it once the peering exists).",
    )


class SystemNodes(ConfigModel):
    """The small on-demand node group for controllers (Karpenter, operators, CoreDNS)."""

    instance_type: str | None = Field(
        None, description="EC2 instance type (aws) or machine type (gcp); default m7i.xlarge / e2-standard-4."
    )
    min_nodes: int = Field(2, ge=1, le=100, description="Two or more so controllers survive a node loss.")
    max_nodes: int = Field(4, ge=1, le=100, description="Upper bound for the system group.")
    disk_gib: int = Field(50, ge=20, le=1000, alias="diskGiB", description="Root volume size of system nodes.")


class AccessEntry(ConfigModel):
    principal_arn: str = Field(description="IAM role or user ARN that gets Kubernetes API access.")
    access: Literal["cluster-admin", "admin", "edit", "view"] = Field(
        "view", description="EKS access policy: AmazonEKS{ClusterAdmin,Admin,Edit,View}Policy."
    )
    namespaces: list[str] = Field(default_factory=list, description="Limit to these namespaces; empty = cluster.")


class AwsSettings(ConfigModel):
    access_entries: list[AccessEntry] = Field(default_factory=list, description="Extra principals with API access.")
    log_types: list[ControlPlaneLog] = Field(
        default_factory=lambda: list(DEFAULT_CONTROL_PLANE_LOGS),
        description="EKS control-plane log types sent to CloudWatch: any of " + ", ".join(ALL_CONTROL_PLANE_LOGS) + ".",
    )
    log_retention_days: int = Field(
        90,
        strict=True,  # true would read as 1 day
        description="Days CloudWatch keeps control-plane logs (the log group is created with it before the "
        "cluster; EKS's own would never expire). One of CloudWatch's values: "
        + ", ".join(map(str, LOG_RETENTION_DAYS))
        + ".",
    )
    support_type: Literal["STANDARD", "EXTENDED"] = Field(
        "STANDARD", description="EKS upgrade policy; EXTENDED support costs extra per cluster hour."
    )
    addon_versions: dict[str, str] = Field(
        default_factory=dict,
        description="Pin managed add-on versions ({vpc-cni: <version>}); unpinned ones take EKS's default.",
    )
    bootstrap_creator_admin: bool = Field(
        True, description="Give the identity that runs `pulumi up` cluster-admin (needed to install charts)."
    )


class GcpSettings(ConfigModel):
    project: str = Field(description="GCP project id.")
    release_channel: Literal["RAPID", "REGULAR", "STABLE", "EXTENDED"] = Field(
        "REGULAR", description="GKE release channel (STABLE does not offer 1.36 yet)."
    )
    zones: list[str] = Field(
        default_factory=list,
        description="Node zones for GPU pools (GPUs are not in every zone); empty = every zone of the region.",
    )
    master_ipv4_cidr: str = Field("172.16.0.32/28", description="Control plane range for the private cluster.")


class ExistingSettings(ConfigModel):
    kubeconfig: str | None = Field(
        None, description="Kubeconfig content; set it with `pulumi config set --secret --path`."
    )
    kubeconfig_path: str | None = Field(None, description="Path of a kubeconfig file (default: ~/.kube/config).")
    context: str | None = Field(None, description="Context to use from the kubeconfig, e.g. kind-ml-platform.")


class ClusterConfig(ConfigModel):
    cloud: Cloud = Field(description="aws (EKS), gcp (GKE) or existing (on-prem / kind, via kubeconfig).")
    name: str = Field(min_length=1, max_length=40, pattern=DNS_LABEL, description="Cluster name, a DNS label.")
    region: str | None = Field(None, description="Cloud region (required on aws and gcp).")
    kubernetes_version: str = Field("1.35", description="Kubernetes minor version, quoted: one of 1.33 to 1.36.")
    vpc: VpcConfig = Field(default_factory=VpcConfig, description="The network: new (cidr) or existing.")
    endpoint_access: EndpointAccess | None = Field(
        None, description="API endpoint; default public-and-private in dev, private in staging/prod."
    )
    public_access_cidrs: list[str] | None = Field(
        None,
        description="Who may reach a public API endpoint (EKS public access CIDRs, GKE authorized networks); "
        "required with a public endpoint, no default; 0.0.0.0/0 only in dev.",
    )
    api_access: ApiAccess = Field(
        default_factory=ApiAccess,
        description="The private path to the API; required with a private endpoint in a new network.",
    )
    system_nodes: SystemNodes = Field(default_factory=SystemNodes, description="On-demand nodes for controllers.")
    protect: bool | None = Field(None, description="Pulumi `protect` on the cluster; default true in prod.")
    tags: dict[str, str] = Field(default_factory=dict, description="Cost-allocation tags (aws) / labels (gcp).")
    aws: AwsSettings | None = Field(None, description="EKS-only settings (cloud: aws).")
    gcp: GcpSettings | None = Field(None, description="GKE-only settings (cloud: gcp); project is required.")
    existing: ExistingSettings | None = Field(None, description="How to reach an existing cluster (cloud: existing).")

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version_is_text(cls, value: Any) -> Any:
        if isinstance(value, float | int):
            # YAML reads 1.30 as the number 1.3: insist on a string.
            raise ValueError(f'write the version as a quoted string, e.g. "1.35" (got the number {value})')
        return value
