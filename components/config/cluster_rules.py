"""Rules on `ml-platform:cluster` that span keys: the cloud, regions and zones, networks, access."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterator

from components.cluster.eks_addons import EKS_MANAGED_ADDONS
from components.config.cluster import SUPPORTED_KUBERNETES_VERSIONS, ClusterConfig
from components.config.errors import Problem, key_path
from components.gpu_pools import COST_KEY_PREFIX, COST_MANAGED_BY

AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
GCP_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")


def _cidr_problem(path: str, value: str) -> Problem | None:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        return Problem(path, value, f"expected a CIDR block such as 10.0.0.0/16 ({exc})")
    if network.version != 4:
        # The VPCs, subnets and GKE ranges the platform creates are IPv4 (IPv6 clusters are not supported).
        return Problem(path, value, "expected an IPv4 CIDR block such as 10.0.0.0/16")
    if value != network.with_prefixlen:
        # Python reads 10.20.0.1, 10.0.0.0/255.0.0.0 and /016 too; the clouds take the canonical form only, and
        # two spellings of one block would make two rules AWS refuses as duplicates.
        return Problem(path, value, f"write the block as {network.with_prefixlen}")
    return None


def cluster_rules(c: ClusterConfig) -> Iterator[Problem]:
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
        elif not pattern.fullmatch(c.region):
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
    yield from tag_rules(c)
    yield from gcp_network_rules(c)
    yield from existing_cluster_rules(c)
    for key in c.tags:
        if key == COST_MANAGED_BY or key.startswith(COST_KEY_PREFIX):
            yield Problem(
                key_path([p, "tags", key]),
                key,
                f"reserved for the platform's cost tags ({COST_MANAGED_BY}, {COST_KEY_PREFIX}*): pick another key",
            )
    for field, cidrs in (("publicAccessCidrs", c.public_access_cidrs or []), ("apiAccess", c.api_access.cidrs)):
        path: list[str | int] = [p, field] if field == "publicAccessCidrs" else [p, field, "cidrs"]
        for i, cidr in enumerate(cidrs):
            if (problem := _cidr_problem(key_path([*path, i]), cidr)) is not None:
                yield problem
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
    if "endpoints" in vpc.model_fields_set and (c.cloud != "aws" or vpc.existing is not None):
        yield Problem(
            key_path([*base, "endpoints"]),
            "{...}",
            "only for a VPC this stack creates on aws (an existing VPC keeps its own endpoints)",
        )
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


AWS_TAG_KEY, AWS_TAG_VALUE, AWS_STACK_TAGS = 128, 256, 40
# Tag keys AWS reserves, and those Karpenter sets itself (its EC2NodeClass CRD rejects them in spec.tags).
AWS_RESERVED_TAG_PREFIXES = ("aws:", "kubernetes.io/cluster", "karpenter.sh/", "karpenter.k8s.aws/", "eks:")
GCP_LABEL, GCP_STACK_LABELS = 63, 57
GCP_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")


def _gcp_label_ok(text: str, key: bool) -> bool:
    """GCP labels: lowercase letters (international ones too), digits, '_' and '-'; a key starts with a letter."""
    if len(text) > GCP_LABEL or (key and not (text[:1].isalpha() and text[:1].islower())):
        return False
    return all((ch.isalpha() and ch.islower()) or ch.isdigit() or ch in "_-" for ch in text)


def tag_rules(c: ClusterConfig) -> Iterator[Problem]:
    """The stack's cost tags as each cloud accepts them (AWS tags, GCP labels)."""
    where = ["cluster", "tags"]
    if c.cloud == "aws":
        if len(c.tags) > AWS_STACK_TAGS:
            yield Problem(
                key_path(where), f"{len(c.tags)} tags", f"at most {AWS_STACK_TAGS} (AWS allows 50 a resource)"
            )
        for key, value in c.tags.items():
            if key.lower().startswith(AWS_RESERVED_TAG_PREFIXES):
                yield Problem(key_path([*where, key]), key, "reserved by AWS, EKS or Karpenter: pick another key")
            elif not key or len(key) > AWS_TAG_KEY:
                yield Problem(key_path([*where, key]), key, f"a tag key has 1 to {AWS_TAG_KEY} characters")
            if len(value) > AWS_TAG_VALUE:
                yield Problem(key_path([*where, key]), value, f"a tag value has at most {AWS_TAG_VALUE} characters")
    elif c.cloud == "gcp":
        if len(c.tags) > GCP_STACK_LABELS:
            yield Problem(key_path(where), f"{len(c.tags)} labels", f"at most {GCP_STACK_LABELS} (GCP allows 64)")
        for key, value in c.tags.items():
            if not key or not _gcp_label_ok(key, key=True):
                yield Problem(
                    key_path([*where, key]),
                    key,
                    "a GCP label key: lowercase letters, digits, '_' and '-', starting with a letter, at most 63",
                )
            if not _gcp_label_ok(value, key=False):
                yield Problem(
                    key_path([*where, key]),
                    value,
                    "a GCP label value: lowercase letters, digits, '_' and '-', at most 63",
                )


def gcp_network_rules(c: ClusterConfig) -> Iterator[Problem]:
    """GKE's project id, the private control plane's /28, and ranges that must not overlap."""
    if c.cloud != "gcp" or c.gcp is None:
        return
    if not GCP_PROJECT.fullmatch(c.gcp.project):
        yield Problem(
            key_path(["cluster", "gcp", "project"]),
            c.gcp.project,
            "a GCP project id: 6 to 30 lowercase letters, digits and '-', starting with a letter",
        )
    ranges: dict[str, str] = {"gcp.masterIpv4Cidr": c.gcp.master_ipv4_cidr}
    if c.vpc.existing is None:
        ranges |= {"vpc.cidr": c.vpc.cidr, "vpc.podsCidr": c.vpc.pods_cidr, "vpc.servicesCidr": c.vpc.services_cidr}
    networks = {}
    for name, cidr in ranges.items():
        try:
            networks[name] = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            continue  # reported as a bad CIDR
    master = networks.get("gcp.masterIpv4Cidr")
    if master is not None and master.prefixlen != 28:
        yield Problem(
            key_path(["cluster", "gcp", "masterIpv4Cidr"]),
            c.gcp.master_ipv4_cidr,
            "GKE needs a /28 for the control plane",
        )
    names = list(networks)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            if networks[first].version == networks[second].version and networks[first].overlaps(networks[second]):
                path = key_path(["cluster", *second.split(".")])
                yield Problem(path, ranges[second], f"overlaps cluster.{first} ({ranges[first]})")


# Keys of `cluster` that describe cloud infrastructure: an existing cluster has none of it.
CLOUD_ONLY_KEYS = {
    "region": "region",
    "vpc": "vpc",
    "endpoint_access": "endpointAccess",
    "public_access_cidrs": "publicAccessCidrs",
    "api_access": "apiAccess",
    "system_nodes": "systemNodes",
    "tags": "tags",
}


def existing_cluster_rules(c: ClusterConfig) -> Iterator[Problem]:
    if c.cloud != "existing":
        return
    for field, key in CLOUD_ONLY_KEYS.items():
        if field in c.model_fields_set:
            yield Problem(
                key_path(["cluster", key]),
                "{...}" if field in ("vpc", "system_nodes", "api_access") else getattr(c, field),
                "only used on aws and gcp (an existing cluster brings its own network and nodes)",
            )
