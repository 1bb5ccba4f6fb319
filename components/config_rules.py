"""Config rules that span keys: the cloud, the GPU catalogue, and cross-field limits.

Each rule yields `Problem`s; `check_rules` runs all of them on whatever parts of the stack file parsed,
so a user sees every problem in one run, not one per `pulumi up`.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from components.catalog import CATALOG, CLOUDS, GPU_MODELS
from components.config import (
    DEFAULT_AUTOSCALER,
    SUPPORTED_KUBERNETES_VERSIONS,
    Autoscaler,
    ClusterConfig,
    GpuPool,
    PlatformConfig,
    Problem,
    Team,
    key_path,
)
from vocabulary.namespaces import PLATFORM_OWNED_NAMESPACES

AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
GCP_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")
M = TypeVar("M", bound=BaseModel)
RESERVED_POOL_NAMES = {"cpu"}
RESERVED_NAMESPACES = {"default", *PLATFORM_OWNED_NAMESPACES}
# The managed add-ons components/cluster/eks.py installs (kept here so config checks need no pulumi_aws).
EKS_MANAGED_ADDONS = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent", "coredns", "aws-ebs-csi-driver")
# The cluster-autoscaler minor the pinned chart (components/versions.py) ships.
CLUSTER_AUTOSCALER_APP_MINOR = "1.35"
AUTOSCALERS_BY_CLOUD = {
    "aws": ("karpenter", "cluster-autoscaler"),
    "gcp": ("cluster-autoscaler",),
    "existing": ("none",),
}


@dataclass
class _Parsed:
    """The parts of a stack file that parsed on their own (None where they did not)."""

    cloud: str | None
    environment: str
    cluster: ClusterConfig | None
    pools: list[tuple[int, GpuPool]]
    teams: list[tuple[int, Team]]
    autoscaler: str | None


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
        )
    raw_cluster = sections.get("cluster")
    cluster = _parse(ClusterConfig, raw_cluster)
    cloud = cluster.cloud if cluster else (raw_cluster or {}).get("cloud") if isinstance(raw_cluster, dict) else None
    autoscaler = sections.get("autoscaler")
    return _Parsed(
        cloud if cloud in CLOUDS else None,
        str(sections.get("environment", "dev")),
        cluster,
        _parse_list(GpuPool, sections.get("gpuPools")),
        _parse_list(Team, sections.get("teams")),
        autoscaler if isinstance(autoscaler, str) else None,
    )


PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


def is_private_cidr(cidr: str) -> bool:
    """RFC 1918 (and shared 100.64/10) space: what a private control-plane endpoint can be reached from."""
    network = ipaddress.ip_network(cidr)
    return isinstance(network, ipaddress.IPv4Network) and any(network.subnet_of(r) for r in PRIVATE_RANGES)


def _cidr_problem(path: str, value: str) -> Problem | None:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return Problem(path, value, f"expected a CIDR block such as 10.0.0.0/16 ({exc})")
    return None


def _cluster_rules(c: ClusterConfig) -> Iterator[Problem]:
    p = "cluster"
    if c.kubernetes_version not in SUPPORTED_KUBERNETES_VERSIONS:
        yield Problem(
            key_path([p, "kubernetesVersion"]),
            c.kubernetes_version,
            "allowed: " + ", ".join(SUPPORTED_KUBERNETES_VERSIONS) + " (versions both EKS and GKE support)",
        )
    if c.cloud in ("aws", "gcp"):
        pattern = AWS_REGION if c.cloud == "aws" else GCP_REGION
        example = "us-east-1" if c.cloud == "aws" else "us-central1"
        if c.region is None:
            yield Problem(key_path([p, "region"]), None, f"required on {c.cloud}: a region such as {example}")
        elif not pattern.match(c.region):
            yield Problem(key_path([p, "region"]), c.region, f"expected a {c.cloud} region such as {example}")
    for block in ("aws", "gcp", "existing"):
        if getattr(c, block) is not None and block != c.cloud:
            yield Problem(key_path([p, block]), "{...}", f"only used when cloud is {block} (cloud is {c.cloud})")
    if c.cloud == "gcp" and c.gcp is None:
        yield Problem(key_path([p, "gcp"]), None, "required on gcp: {project: <project id>}")
    if c.cloud == "existing":
        ex = c.existing
        if ex is None or not (ex.kubeconfig or ex.kubeconfig_path or ex.context):
            yield Problem(
                key_path([p, "existing"]), None, "required on existing: kubeconfig (secret), kubeconfigPath or context"
            )
        elif ex.kubeconfig and ex.kubeconfig_path:
            yield Problem(
                key_path([p, "existing", "kubeconfigPath"]),
                ex.kubeconfig_path,
                "set kubeconfig or kubeconfigPath, not both",
            )
    if c.aws is not None:
        for addon in c.aws.addon_versions:
            if addon not in EKS_MANAGED_ADDONS:
                where = key_path([p, "aws", "addonVersions", addon])
                yield Problem(where, addon, "allowed add-ons: " + ", ".join(EKS_MANAGED_ADDONS))
        principals = Counter(e.principal_arn for e in c.aws.access_entries)
        for i, entry in enumerate(c.aws.access_entries):
            if principals[entry.principal_arn] > 1:
                where = key_path([p, "aws", "accessEntries", i, "principalArn"])
                yield Problem(where, entry.principal_arn, "each principal once (one access entry per principal)")
    if c.system_nodes.min_nodes > c.system_nodes.max_nodes:
        yield Problem(
            key_path([p, "systemNodes", "maxNodes"]),
            c.system_nodes.max_nodes,
            f"must be >= systemNodes.minNodes ({c.system_nodes.min_nodes})",
        )
    yield from _vpc_rules(c)
    for i, cidr in enumerate(c.public_access_cidrs):
        if (problem := _cidr_problem(key_path([p, "publicAccessCidrs", i]), cidr)) is not None:
            yield problem
    if c.cloud == "gcp" and c.endpoint_access == "private" and "public_access_cidrs" in c.model_fields_set:
        for i, cidr in enumerate(c.public_access_cidrs):
            try:
                public = not is_private_cidr(cidr)
            except ValueError:
                continue  # reported as a bad CIDR
            if public:
                where = key_path([p, "publicAccessCidrs", i])
                yield Problem(where, cidr, "a private GKE endpoint is reachable only from private ranges (10/8, ...)")
    if c.gcp is not None:
        for i, zone in enumerate(c.gcp.zones):
            if c.region and not zone.startswith(c.region + "-"):
                yield Problem(
                    key_path([p, "gcp", "zones", i]), zone, f"expected a zone of region {c.region}, e.g. {c.region}-a"
                )


def _vpc_rules(c: ClusterConfig) -> Iterator[Problem]:
    vpc, base = c.vpc, ["cluster", "vpc"]
    for field in ("cidr", "podsCidr", "servicesCidr"):
        value = getattr(vpc, {"cidr": "cidr", "podsCidr": "pods_cidr", "servicesCidr": "services_cidr"}[field])
        if (problem := _cidr_problem(key_path([*base, field]), value)) is not None:
            yield problem
    if c.cloud == "aws" and vpc.existing is None:
        try:
            size = ipaddress.ip_network(vpc.cidr).prefixlen
        except ValueError:
            size = 0
        if size and not 16 <= size <= 20:
            yield Problem(key_path([*base, "cidr"]), vpc.cidr, "expected a /16 to /20 block (room for 2x3 subnets)")
    ex = vpc.existing
    if ex is None:
        return
    where = [*base, "existing"]
    aws_fields = {
        "vpcId": ex.vpc_id,
        "privateSubnetIds": ex.private_subnet_ids,
        "publicSubnetIds": ex.public_subnet_ids,
    }
    gcp_fields: dict[str, str | list[str] | None] = {
        "network": ex.network,
        "subnetwork": ex.subnetwork,
        "podsRangeName": ex.pods_range_name,
        "servicesRangeName": ex.services_range_name,
    }
    if c.cloud == "aws":
        if not ex.vpc_id:
            yield Problem(key_path([*where, "vpcId"]), None, "required for an existing aws VPC: vpc-...")
        if len(ex.private_subnet_ids) < 2:
            yield Problem(
                key_path([*where, "privateSubnetIds"]), ex.private_subnet_ids, "at least 2 subnets in different AZs"
            )
        wrong = {k: v for k, v in gcp_fields.items() if v}
    elif c.cloud == "gcp":
        for name, value in gcp_fields.items():
            if not value:
                yield Problem(key_path([*where, name]), None, "required for an existing gcp network")
        wrong = {k: v for k, v in aws_fields.items() if v}
    else:
        wrong = {k: v for k, v in {**aws_fields, **gcp_fields}.items() if v}
    for name, value in wrong.items():
        yield Problem(key_path([*where, name]), value, f"not used on {c.cloud}")


def _pool_rules(i: int, pool: GpuPool, cloud: str | None, region: str | None) -> Iterator[Problem]:
    base: list[int | str] = ["gpuPools", i]
    model = GPU_MODELS.get(pool.gpu)
    if model is None:
        yield Problem(key_path([*base, "gpu"]), pool.gpu, "unknown GPU; allowed: " + ", ".join(sorted(GPU_MODELS)))
    elif cloud is not None:
        available = CATALOG.gpus_on(cloud)  # type: ignore[arg-type]
        counts = CATALOG.gpu_counts(cloud, pool.gpu)  # type: ignore[arg-type]
        if pool.gpu not in available:
            yield Problem(key_path([*base, "gpu"]), pool.gpu, f"not sold on {cloud}; allowed: " + ", ".join(available))
        elif pool.gpus_per_node not in counts:
            shapes = [CATALOG.shape(cloud, pool.gpu, n) for n in counts]  # type: ignore[arg-type]
            allowed = ", ".join(f"{s.gpus_per_node} ({s.instance_type})" for s in shapes if s)
            yield Problem(
                key_path([*base, "gpusPerNode"]), pool.gpus_per_node, f"allowed for {pool.gpu} on {cloud}: {allowed}"
            )
        else:
            shape = CATALOG.shape(cloud, pool.gpu, pool.gpus_per_node)  # type: ignore[arg-type]
            if shape is not None and shape.spot_only and "on-demand" in pool.capacity:
                yield Problem(
                    key_path([*base, "capacity"]),
                    list(pool.capacity),
                    f"{shape.instance_type} is sold only as spot capacity: use capacity: spot, or 8 GPUs per node",
                )
    for j, zone in enumerate(pool.zones):
        if cloud != "gcp":
            yield Problem(
                key_path([*base, "zones", j]), zone, "only used on gcp (EKS spreads nodes over the VPC's AZs)"
            )
        elif region and not zone.startswith(region + "-"):
            yield Problem(key_path([*base, "zones", j]), zone, f"expected a zone of region {region}, e.g. {region}-a")
    if pool.min_nodes > pool.max_nodes:
        yield Problem(key_path([*base, "maxNodes"]), pool.max_nodes, f"must be >= minNodes ({pool.min_nodes})")
    yield from _capacity_rules([*base, "capacity"], pool.capacity)
    yield from _sharing_rules(base, pool, cloud)


def _capacity_rules(where: list[int | str], capacity: tuple[str, ...]) -> Iterator[Problem]:
    if not capacity:
        yield Problem(key_path(where), [], "at least one of spot, on-demand")
    elif len(set(capacity)) != len(capacity):
        yield Problem(key_path(where), list(capacity), "list each capacity type once")
    elif capacity == ("on-demand", "spot"):
        yield Problem(
            key_path(where), list(capacity), "list spot first: [spot, on-demand] means spot with on-demand fallback"
        )


def _sharing_rules(base: list[int | str], pool: GpuPool, cloud: str | None) -> Iterator[Problem]:
    s, where = pool.sharing, [*base, "sharing"]
    if s.mode == "time-slicing":
        if s.replicas is None or s.replicas < 2:
            yield Problem(key_path([*where, "replicas"]), s.replicas, "time-slicing needs replicas >= 2")
        elif s.replicas > 48:
            yield Problem(key_path([*where, "replicas"]), s.replicas, "at most 48 logical GPUs per GPU")
    elif s.replicas is not None:
        yield Problem(key_path([*where, "replicas"]), s.replicas, "only used with mode: time-slicing")
    if s.mode == "mig":
        model = GPU_MODELS.get(pool.gpu)
        if model is not None and not model.supports_mig:
            allowed = ", ".join(k for k, m in GPU_MODELS.items() if m.supports_mig)
            yield Problem(
                key_path([*where, "mode"]), "mig", f"MIG needs a GPU that supports it: {allowed} (not {pool.gpu})"
            )
        elif model is not None:
            # GKE creates only some of NVIDIA's profiles itself; elsewhere every profile of the exact model.
            allowed = ", ".join(CATALOG.mig_profiles_on(cloud or "existing", pool.gpu))  # type: ignore[arg-type]
            of = f"{pool.gpu} on gcp" if cloud == "gcp" else pool.gpu
            if s.profile is None:
                yield Problem(key_path([*where, "profile"]), None, f"mig needs a profile; allowed for {of}: {allowed}")
            elif s.profile not in allowed.split(", "):
                yield Problem(
                    key_path([*where, "profile"]), s.profile, f"not a MIG profile of {of}; allowed: {allowed}"
                )
    elif s.profile is not None:
        yield Problem(key_path([*where, "profile"]), s.profile, "only used with mode: mig")


def _duplicates(section: str, names: list[tuple[int, str]]) -> Iterator[Problem]:
    counts = Counter(n for _, n in names)
    for i, name in names:
        if counts[name] > 1:
            yield Problem(key_path([section, i, "name"]), name, f"names must be unique within {section}")


def check_rules(sections: dict[str, Any], config: PlatformConfig | None) -> list[Problem]:
    parsed = _gather(sections, config)
    problems: list[Problem] = []
    if parsed.cluster is not None:
        problems += _cluster_rules(parsed.cluster)
    for i, pool in parsed.pools:
        region = parsed.cluster.region if parsed.cluster else None
        problems += _pool_rules(i, pool, parsed.cloud, region)
    problems += _duplicates("gpuPools", [(i, p.name) for i, p in parsed.pools])
    for i, pool in parsed.pools:
        if pool.name in RESERVED_POOL_NAMES:
            problems.append(
                Problem(key_path(["gpuPools", i, "name"]), pool.name, "reserved for the CPU NodePool; pick another")
            )
        karpenter = parsed.autoscaler in (None, "karpenter") and parsed.cloud == "aws"
        if karpenter and pool.sharing.mode == "mig" and not 1 <= pool.min_nodes == pool.max_nodes:
            problems.append(
                Problem(
                    key_path(["gpuPools", i, "minNodes"]),
                    pool.min_nodes,
                    "Karpenter cannot plan for MIG slices, so a MIG pool is a fixed group: set minNodes = "
                    f"maxNodes (>= 1; maxNodes is {pool.max_nodes}), or use autoscaler: cluster-autoscaler",
                )
            )
    problems += _duplicates("teams", [(i, t.name) for i, t in parsed.teams])
    raw_pools = sections.get("gpuPools")
    pool_names = (
        {str(p.get("name")) for p in raw_pools if isinstance(p, dict)} if isinstance(raw_pools, list) else set()
    )
    for i, team in parsed.teams:
        if team.name in RESERVED_NAMESPACES:
            problems.append(Problem(key_path(["teams", i, "name"]), team.name, "reserved namespace; pick another name"))
        for j, pool_name in enumerate(team.pools):
            if pool_name not in pool_names:
                problems.append(
                    Problem(
                        key_path(["teams", i, "pools", j]),
                        pool_name,
                        "allowed: " + (", ".join(sorted(pool_names)) or "no pools defined"),
                    )
                )
    if config is not None:
        problems += _capacity_rules(["scaling", "cpuPool", "capacity"], config.scaling.cpu_pool.capacity)
        version = config.cluster.kubernetes_version
        ca_version = config.scaling.cluster_autoscaler_version or f"v{CLUSTER_AUTOSCALER_APP_MINOR}.0"
        uses_ca = config.cluster.cloud == "aws" and config.autoscaler == "cluster-autoscaler"
        if uses_ca and version in SUPPORTED_KUBERNETES_VERSIONS and not ca_version.startswith(f"v{version}."):
            problems.append(
                Problem(
                    key_path(["scaling", "clusterAutoscalerVersion"]),
                    config.scaling.cluster_autoscaler_version,
                    f"cluster-autoscaler's minor must match Kubernetes {version}: set a v{version}.<patch> image tag "
                    f"(the pinned chart defaults to v{CLUSTER_AUTOSCALER_APP_MINOR}.0)",
                )
            )
        if config.policies.default_shm and version in SUPPORTED_KUBERNETES_VERSIONS and version < "1.36":
            problems.append(
                Problem(
                    key_path(["policies", "defaultShm"]),
                    True,
                    f"MutatingAdmissionPolicy is GA from Kubernetes 1.36 (cluster is {version}; its beta API is off on "
                    "EKS and GKE): use kubernetesVersion 1.36 or leave defaultShm off",
                )
            )
    if parsed.cloud is not None:
        autoscaler = parsed.autoscaler or DEFAULT_AUTOSCALER[parsed.cloud]
        allowed = AUTOSCALERS_BY_CLOUD[parsed.cloud]
        # A value outside the enum was already reported by the schema; report only cloud mismatches here.
        if autoscaler in get_args(Autoscaler) and autoscaler not in allowed:
            why = " (Karpenter runs only on AWS)" if autoscaler == "karpenter" else ""
            problems.append(
                Problem(key_path(["autoscaler"]), autoscaler, f"allowed on {parsed.cloud}: {', '.join(allowed)}{why}")
            )
    return problems
