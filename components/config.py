"""The one schema of a stack file: `ml-platform:*` keys in `Pulumi.<stack>.yaml`.

Pydantic checks shapes and types; `components/config_rules.py` checks what depends on other keys
(the cloud, the GPU catalogue). `load_platform_config` runs both and raises `ConfigError` with every
problem at once, each naming its stack key path, the value and what is allowed. Defaults live here,
including the ones that depend on `ml-platform:environment` (see `PlatformConfig._environment_defaults`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from vocabulary.priorities import PriorityClassName

NAMESPACE = "ml-platform"

Environment = Literal["dev", "staging", "prod"]
Cloud = Literal["aws", "gcp", "existing"]
CapacityType = Literal["spot", "on-demand"]
Workload = Literal["training", "inference", "dev"]
SharingMode = Literal["none", "time-slicing", "mig"]
Autoscaler = Literal["karpenter", "cluster-autoscaler", "none"]
EndpointAccess = Literal["public-and-private", "private"]
Enforcement = Literal["advisory", "mandatory"]
ControlPlaneLog = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]

ALL_CONTROL_PLANE_LOGS: tuple[ControlPlaneLog, ...] = (
    "api",
    "audit",
    "authenticator",
    "controllerManager",
    "scheduler",
)
SUPPORTED_KUBERNETES_VERSIONS: tuple[str, ...] = ("1.33", "1.34", "1.35", "1.36")
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_default=True,
    )


# ---------------------------------------------------------------- ml-platform:cluster


class ExistingVpc(_Model):
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


class VpcConfig(_Model):
    cidr: str = Field("10.0.0.0/16", description="Primary CIDR of a new VPC (aws) or subnet (gcp).")
    az_count: int = Field(3, ge=2, le=3, description="aws: availability zones to spread subnets over.")
    nat_gateways: Literal["single", "one-per-az"] | None = Field(
        None, description="aws: NAT gateways; default `single` in dev, `one-per-az` otherwise (no single AZ failure)."
    )
    pods_cidr: str = Field("10.64.0.0/14", description="gcp: secondary range for pod IPs (VPC-native).")
    services_cidr: str = Field("10.68.0.0/20", description="gcp: secondary range for service IPs.")
    existing: ExistingVpc | None = Field(None, description="Use an existing network instead of creating one.")


class SystemNodes(_Model):
    """The small on-demand node group for controllers (Karpenter, operators, CoreDNS)."""

    instance_type: str | None = Field(
        None, description="EC2 instance type (aws) or machine type (gcp); default m7i.xlarge / e2-standard-4."
    )
    min_nodes: int = Field(2, ge=1, description="Two or more so controllers survive a node loss.")
    max_nodes: int = Field(4, ge=1, description="Upper bound for the system group.")
    disk_gib: int = Field(50, ge=20, le=1000, alias="diskGiB", description="Root volume size of system nodes.")


class AccessEntry(_Model):
    principal_arn: str = Field(description="IAM role or user ARN that gets Kubernetes API access.")
    access: Literal["cluster-admin", "admin", "edit", "view"] = Field(
        "view", description="EKS access policy: AmazonEKS{ClusterAdmin,Admin,Edit,View}Policy."
    )
    namespaces: list[str] = Field(default_factory=list, description="Limit to these namespaces; empty = cluster.")


class AwsSettings(_Model):
    access_entries: list[AccessEntry] = Field(default_factory=list, description="Extra principals with API access.")
    log_types: list[ControlPlaneLog] = Field(
        default_factory=lambda: list(ALL_CONTROL_PLANE_LOGS),
        description="EKS control-plane log types sent to CloudWatch.",
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


class GcpSettings(_Model):
    project: str = Field(description="GCP project id.")
    release_channel: Literal["RAPID", "REGULAR", "STABLE", "EXTENDED"] = Field(
        "REGULAR", description="GKE release channel (STABLE does not offer 1.36 yet)."
    )
    zones: list[str] = Field(
        default_factory=list,
        description="Node zones for GPU pools (GPUs are not in every zone); empty = every zone of the region.",
    )
    master_ipv4_cidr: str = Field("172.16.0.32/28", description="Control plane range for the private cluster.")


class ExistingSettings(_Model):
    kubeconfig: str | None = Field(
        None, description="Kubeconfig content; set it with `pulumi config set --secret --path`."
    )
    kubeconfig_path: str | None = Field(None, description="Path of a kubeconfig file (default: ~/.kube/config).")
    context: str | None = Field(None, description="Context to use from the kubeconfig, e.g. kind-ml-platform.")


class ClusterConfig(_Model):
    cloud: Cloud = Field(description="aws (EKS), gcp (GKE) or existing (on-prem / kind, via kubeconfig).")
    name: str = Field(min_length=1, max_length=40, pattern=DNS_LABEL, description="Cluster name, a DNS label.")
    region: str | None = Field(None, description="Cloud region (required on aws and gcp).")
    kubernetes_version: str = Field("1.35", description="Kubernetes minor version, quoted: one of 1.33 to 1.36.")
    vpc: VpcConfig = Field(default_factory=VpcConfig, description="The network: new (cidr) or existing.")
    endpoint_access: EndpointAccess | None = Field(
        None, description="API endpoint; default public-and-private in dev, private in staging/prod."
    )
    public_access_cidrs: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="Who may reach a public API endpoint (EKS public access CIDRs, GKE authorized networks).",
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


# ---------------------------------------------------------------- ml-platform:gpuPools


class Sharing(_Model):
    mode: SharingMode = Field("none", description="none, time-slicing (dev only: no memory isolation) or mig.")
    replicas: int | None = Field(None, description="time-slicing: logical GPUs per physical GPU (>= 2).")
    profile: str | None = Field(None, description="mig: the MIG profile every GPU is split into, e.g. 1g.10gb.")


class GpuPool(_Model):
    name: str = Field(min_length=1, max_length=30, pattern=DNS_LABEL, description="Pool name, a DNS label.")
    gpu: str = Field(description="GPU model from the catalogue: a100-40gb, a100-80gb, h100-80gb, l4, a10g, t4.")
    gpus_per_node: int = Field(ge=1, description="GPUs per node; must exist for that GPU on that cloud.")
    capacity: tuple[CapacityType, ...] = Field(
        ("on-demand",),
        description="spot, on-demand, or [spot, on-demand] (spot first, on-demand fallback).",
    )
    min_nodes: int = Field(0, ge=0, description="Nodes kept when idle; 0 scales to zero.")
    max_nodes: int = Field(
        ge=0,
        description="Cap on nodes per capacity type: [spot, on-demand] may reach maxNodes of each (the cost ceiling).",
    )
    sharing: Sharing = Field(default_factory=Sharing, description="How pods share a GPU: none, time-slicing, mig.")
    workload: Workload = Field("training", description="training, inference or dev.")
    disk_gib: int = Field(
        200, ge=50, le=16384, alias="diskGiB", description="Root volume size (container images are large)."
    )
    zones: list[str] = Field(
        default_factory=list,
        description="gcp: zones for this pool's nodes (GPU models are zonal); default cluster.gcp.zones.",
    )

    @field_validator("capacity", mode="before")
    @classmethod
    def _capacity_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


# ---------------------------------------------------------------- ml-platform:teams / policies


class Team(_Model):
    name: str = Field(min_length=1, max_length=50, pattern=DNS_LABEL, description="Team (and namespace) name.")
    gpu_quota: int = Field(0, ge=0, description="GPUs (full or MIG slices) the team may hold at once.")
    pools: list[str] = Field(default_factory=list, description="GPU pools the team may use; empty = all.")
    priority: PriorityClassName = Field("development", description="Default PriorityClass of the team's pods.")


DURATION = r"^([0-9]+(s|m|h))+$"


EXPIRY = r"^(([0-9]+(s|m|h))+|Never)$"
AMI_VERSION = r"^(latest|v[0-9][0-9A-Za-z.\-]*)$"


class CpuPool(_Model):
    """General-purpose CPU capacity (Ray CPU workers, preprocessing): a Karpenter NodePool on EKS."""

    enabled: bool = Field(True, description="Create the CPU NodePool (karpenter only).")
    capacity: tuple[CapacityType, ...] = Field(("spot", "on-demand"), description="Spot first by default.")
    max_cpu: int = Field(256, ge=1, description="Hard cap on vCPUs across the pool.")
    max_memory_gib: int = Field(1024, ge=1, alias="maxMemoryGiB", description="Hard cap on memory across the pool.")

    @field_validator("capacity", mode="before")
    @classmethod
    def _capacity_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ScalingConfig(_Model):
    """How GPU capacity scales: Karpenter, cluster-autoscaler and GKE settings."""

    consolidate_after: str | None = Field(
        None,
        pattern=DURATION,
        description="Idle time before an empty node goes (Karpenter consolidateAfter, cluster-autoscaler "
        "scale-down-unneeded-time and scale-down-delay-after-add); default 2m in dev, 5m otherwise.",
    )
    expire_after: str = Field("720h", pattern=EXPIRY, description="Karpenter: replace nodes older than this.")
    termination_grace_period: str = Field(
        "24h",
        pattern=DURATION,
        description="Karpenter: how long a draining node waits for pods (also bounds karpenter.sh/do-not-disrupt).",
    )
    ami_family: Literal["al2023", "bottlerocket"] = Field("al2023", description="Karpenter GPU/CPU node AMI family.")
    ami_version: str = Field(
        "latest",
        pattern=AMI_VERSION,
        description="Karpenter AMI alias version; pin it (e.g. v20250920) in prod, latest drifts nodes on releases.",
    )
    expander: Literal["priority", "least-waste"] = Field(
        "priority", description="cluster-autoscaler expander: priority prefers spot groups, then on-demand."
    )
    cpu_pool: CpuPool = Field(default_factory=CpuPool, description="Karpenter CPU NodePool for Ray CPU workers.")
    cluster_autoscaler_version: str | None = Field(
        None,
        pattern=r"^v1\.[0-9]+\.[0-9]+$",
        description="cluster-autoscaler image tag; its minor must match the cluster's (the chart ships v1.35.0).",
    )
    gke_profile: Literal["OPTIMIZE_UTILIZATION", "BALANCED"] | None = Field(
        None, description="GKE cluster autoscaling profile; default OPTIMIZE_UTILIZATION in dev, BALANCED otherwise."
    )


class PoliciesConfig(_Model):
    enforcement: Enforcement | None = Field(None, description="Default advisory in dev, mandatory otherwise.")
    exempt_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces the admission policies skip besides kube-system, kube-public, kube-node-lease and "
        "ml-platform-system (e.g. where the GPU operator's validator pods run).",
    )
    default_shm: bool = Field(
        False,
        description="Opt-in MutatingAdmissionPolicy (GA from Kubernetes 1.36) that adds a 16Gi memory /dev/shm to "
        "GPU pods that mount nothing there.",
    )


# ---------------------------------------------------------------- the whole stack


class PlatformConfig(_Model):
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

    @model_validator(mode="after")
    def _environment_defaults(self) -> PlatformConfig:
        prod_like = self.environment != "dev"
        cluster = self.cluster
        if cluster.endpoint_access is None:
            cluster.endpoint_access = "private" if prod_like else "public-and-private"
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
        return self

    def pool(self, name: str) -> GpuPool:
        return next(p for p in self.gpu_pools if p.name == name)


DEFAULT_AUTOSCALER: dict[str, Autoscaler] = {"aws": "karpenter", "gcp": "cluster-autoscaler", "existing": "none"}

# Stack keys (without the namespace) -> the field of PlatformConfig they fill.
STACK_KEYS: dict[str, str] = {(f.alias or name): name for name, f in PlatformConfig.model_fields.items()}


# ---------------------------------------------------------------- errors


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Problem:
    """One config problem: where (stack key path), what was there, what is allowed."""

    path: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        if self.value is MISSING:
            got = "missing"
        elif "kubeconfig" in self.path.lower() and self.value is not None:
            got = "got [secret]"  # error output lands in CI logs: never echo credentials
        else:
            text = json.dumps(self.value, default=str)
            got = f"got {text if len(text) <= 120 else text[:117] + '...'}"
        return f"{self.path}: {got}; {self.allowed}"


class ConfigError(Exception):
    def __init__(self, problems: Iterable[Problem], stack_file: str = "the stack file") -> None:
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problem(s) in {stack_file}; nothing was deployed:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


# What each pattern means, for error messages.
PATTERN_HELP: dict[str, str] = {
    DNS_LABEL: "expected a DNS label: lowercase letters, digits and '-', starting with a letter",
    DURATION: "expected a duration in s, m or h, such as 90s, 5m or 1h30m",
    EXPIRY: "expected a duration in s, m or h (720h for 30 days) or Never",
    AMI_VERSION: "expected latest or an AMI release version such as v20250920",
}


def key_path(loc: Iterable[int | str]) -> str:
    """('gpuPools', 1, 'maxNodes') -> 'ml-platform:gpuPools[1].maxNodes'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return f"{NAMESPACE}:{text}"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model class that sits at a location of the stack tree (for listing allowed keys)."""
    current: Any = PlatformConfig
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            current = field.annotation
        while get_origin(current) is not None or isinstance(current, type(int | None)):
            args = [a for a in get_args(current) if a is not type(None)]
            if get_origin(current) is Annotated or not args:
                break
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            current = models[0] if models else args[-1]
            if isinstance(part, int) or models:
                break
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _allowed_keys(model: type[BaseModel] | None) -> str:
    if model is None:
        return "this key is not part of the schema"
    return "allowed keys: " + ", ".join(f.alias or n for n, f in model.model_fields.items())


def _problems_from(error: ValidationError, prefix: tuple[int | str, ...]) -> list[Problem]:
    problems = []
    for err in error.errors(include_url=False):
        loc = prefix + tuple(err["loc"])
        kind, msg = err["type"], err["msg"]
        if kind == "extra_forbidden":
            problems.append(Problem(key_path(loc), err["input"], "unknown key; " + _allowed_keys(_model_at(loc[:-1]))))
            continue
        value = MISSING if kind == "missing" else err["input"]
        if kind == "missing":
            model = _model_at(loc[:-1])
            field = next(
                (f for n, f in (model.model_fields.items() if model else []) if (f.alias or n) == loc[-1]), None
            )
            msg = "required: " + (field.description or "a value") if field else "required"
        elif msg.startswith("Input should be "):
            msg = "expected " + msg.removeprefix("Input should be ")
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        elif msg.startswith("String should match pattern"):
            msg = PATTERN_HELP.get(str(err.get("ctx", {}).get("pattern")), msg.replace("String should", "expected to"))
        problems.append(Problem(key_path(loc), value, msg))
    return problems


# ---------------------------------------------------------------- loading


def _decode(key: str, value: Any) -> Any:
    """Pulumi hands every config value over as a string; objects and arrays arrive JSON-encoded."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError([Problem(key_path([key]), value, f"not valid JSON/YAML structure: {exc}")]) from None
    return value


def load_platform_config(raw: Mapping[str, Any], stack_file: str = "the stack file") -> PlatformConfig:
    """Validate the `ml-platform:*` config of one stack; raise ConfigError listing every problem."""
    from components.config_rules import check_rules

    problems: list[Problem] = []
    sections: dict[str, Any] = {}
    for full_key, value in raw.items():
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if key not in STACK_KEYS:
            problems.append(
                Problem(key_path([key]), _decode(key, value), "unknown key; allowed keys: " + ", ".join(STACK_KEYS))
            )
            continue
        sections[key] = _decode(key, value)
    if "cluster" not in sections:
        problems.append(Problem(key_path(["cluster"]), MISSING, "required: the cluster to create or use"))

    try:
        config = PlatformConfig.model_validate(sections)
    except ValidationError as exc:
        problems += _problems_from(exc, ())
        # Semantic rules still run on whatever parsed, so one run shows every problem.
        problems += check_rules(sections, None)
        raise ConfigError(problems, stack_file) from None
    problems += check_rules(sections, config)
    if problems:
        raise ConfigError(problems, stack_file)
    return config


def read_pulumi_config() -> dict[str, Any]:
    """Every config value of the running stack (what the CLI's language host or the mocks provide)."""
    from pulumi.runtime import config as runtime_config

    values: dict[str, Any] = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    return values
