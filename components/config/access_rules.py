"""Rules on how the Kubernetes API is reached: a public endpoint's CIDRs, the private path, the AWS log group.

The first `pulumi up` installs charts through the API endpoint it has just created; an endpoint nobody can reach
leaves a half-built, protected stack. So a private endpoint in a new network needs a declared path, and a public
one names who may use it (no 0.0.0.0/0 default, and none at all outside dev).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence

from components.config.base import EndpointAccess
from components.config.cluster import LOG_RETENTION_DAYS, ClusterConfig, default_endpoint_access
from components.config.errors import Problem, key_path
from components.ip_ranges import is_private_cidr

SECURITY_GROUP_ID = re.compile(r"sg-[0-9a-f]{8}([0-9a-f]{9})?")
ROUTE_TARGET = re.compile(r"(pcx|tgw)-[0-9a-f]{8}([0-9a-f]{9})?")
# Cloud limits: EKS takes at most 40 public access CIDRs, GKE 50 authorized networks, a security group 60 inbound
# rules by default (the path's CIDRs and groups share one group).
MAX_PUBLIC_CIDRS = {"aws": 40, "gcp": 50}
MAX_API_PATH_RULES = {"aws": 60, "gcp": 50}
# A public endpoint open to more addresses than a /8 outside dev is open to the internet, however it is split.
MAX_PUBLIC_ADDRESSES_OUTSIDE_DEV = 2**24
# Blocks wider than a /8 open the API to a large part of the internet (0.0.0.0/0, or 0.0.0.0/1 + 128.0.0.0/1).
WIDEST_OUTSIDE_DEV = 8
ACCESS_DOC = "docs/networking.md"


def endpoint_access(c: ClusterConfig, environment: str) -> EndpointAccess:
    """The endpoint mode with the environment default applied (rules may run before the whole config parses)."""
    return c.endpoint_access if c.endpoint_access is not None else default_endpoint_access(environment)


def _networks(path: Sequence[str | int], cidrs: list[str]) -> Iterator[tuple[str, str, ipaddress.IPv4Network]]:
    for i, cidr in enumerate(cidrs):
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError:
            continue  # reported as a bad CIDR
        if isinstance(network, ipaddress.IPv4Network):
            yield key_path([*path, i]), cidr, network


def _dropped(c: ClusterConfig, raw: Mapping[str, object] | None) -> set[str]:
    """Fields the stack file sets but that did not parse (reported already): rules must not judge their defaults."""
    if not isinstance(raw, Mapping):
        return set()
    by_alias = {f.alias or name: name for name, f in ClusterConfig.model_fields.items()}
    return {by_alias[k] for k in raw if k in by_alias and by_alias[k] not in c.model_fields_set}


def access_rules(c: ClusterConfig, environment: str, raw: Mapping[str, object] | None = None) -> Iterator[Problem]:
    if c.cloud == "existing":
        return  # reached through its kubeconfig; the cloud-only keys are refused elsewhere
    mode = endpoint_access(c, environment)
    dropped = _dropped(c, raw)
    if "public_access_cidrs" not in dropped:
        yield from _public_rules(c, mode, environment)
    if "api_access" not in dropped:
        yield from _private_path_rules(c, mode)
    yield from _list_rules(c)
    if c.aws is not None and c.aws.log_retention_days not in LOG_RETENTION_DAYS:
        yield Problem(
            key_path(["cluster", "aws", "logRetentionDays"]),
            c.aws.log_retention_days,
            "one of CloudWatch's retention periods: " + ", ".join(map(str, LOG_RETENTION_DAYS)),
        )


def _list_rules(c: ClusterConfig) -> Iterator[Problem]:
    """Each block and group once, and no more than the cloud takes."""
    cloud = c.cloud
    lists: list[tuple[list[str | int], list[str]]] = [
        (["cluster", "publicAccessCidrs"], list(c.public_access_cidrs or [])),
        (["cluster", "apiAccess", "cidrs"], list(c.api_access.cidrs)),
        (["cluster", "apiAccess", "securityGroupIds"], list(c.api_access.security_group_ids)),
    ]
    for where, values in lists:
        seen: set[str] = set()
        for i, value in enumerate(values):
            try:
                key = str(ipaddress.ip_network(value, strict=False)) if where[-1] != "securityGroupIds" else value
            except ValueError:
                key = value
            if key in seen:
                yield Problem(key_path([*where, i]), value, "listed twice: each block or group once")
            seen.add(key)
    if len(c.public_access_cidrs or []) > MAX_PUBLIC_CIDRS.get(cloud, 40):
        yield Problem(
            key_path(["cluster", "publicAccessCidrs"]),
            f"{len(c.public_access_cidrs or [])} blocks",
            f"at most {MAX_PUBLIC_CIDRS[cloud]} on {cloud}",
        )
    rules = len(c.api_access.cidrs) + len(c.api_access.security_group_ids)
    if rules > MAX_API_PATH_RULES.get(cloud, 50):
        yield Problem(
            key_path(["cluster", "apiAccess"]),
            f"{rules} CIDRs and groups",
            f"at most {MAX_API_PATH_RULES[cloud]} on {cloud} (one security group's rules, or GKE's authorized "
            "networks): use larger blocks or one security group for the runners",
        )


def _public_rules(c: ClusterConfig, mode: EndpointAccess, environment: str) -> Iterator[Problem]:
    where = ["cluster", "publicAccessCidrs"]
    if mode == "private":
        if c.public_access_cidrs:
            yield Problem(
                key_path(where),
                c.public_access_cidrs,
                "only used with a public endpoint (endpointAccess is private): list private networks under "
                "cluster.apiAccess.cidrs",
            )
        return
    if not c.public_access_cidrs:
        yield Problem(
            key_path(where),
            c.public_access_cidrs,
            "required with a public endpoint (endpointAccess: public-and-private): the networks that may reach the "
            'API, e.g. ["203.0.113.0/24"] for an office or VPN egress; 0.0.0.0/0 only in dev',
        )
        return
    if c.cloud == "aws":
        for path, cidr, network in _networks(where, c.public_access_cidrs):
            if network.prefixlen > 0 and is_private_cidr(str(network)):
                yield Problem(
                    path,
                    cidr,
                    "EKS public access CIDRs are public addresses (private ranges reach the private endpoint: list "
                    "them under cluster.apiAccess.cidrs)",
                )
    if environment == "dev":
        return
    networks = list(_networks(where, c.public_access_cidrs))
    for path, cidr, network in networks:
        if network.prefixlen < WIDEST_OUTSIDE_DEV:
            yield Problem(
                path,
                cidr,
                f"opens the API to the internet, allowed only in dev (this stack is {environment}): list the "
                "networks that need it, or use a private endpoint",
            )
    if all(n.prefixlen >= WIDEST_OUTSIDE_DEV for _, _, n in networks):
        covered = sum(n.num_addresses for n in ipaddress.collapse_addresses(n for _, _, n in networks))
        if covered > MAX_PUBLIC_ADDRESSES_OUTSIDE_DEV:
            yield Problem(
                key_path(where),
                f"{len(networks)} blocks",
                f"together open the API to {covered} addresses, more than a /8: allowed only in dev (this stack "
                f"is {environment})",
            )


def _private_path_rules(c: ClusterConfig, mode: EndpointAccess) -> Iterator[Problem]:
    access, where = c.api_access, ["cluster", "apiAccess"]
    own = _own_ranges(c)
    for path, cidr, network in _networks([*where, "cidrs"], access.cidrs):
        if not is_private_cidr(str(network)):
            yield Problem(
                path, cidr, "a private endpoint is reached from private ranges (10/8, 172.16/12, 192.168/16, 100.64/10)"
            )
        elif inside := next((name for name, r in own if network.overlaps(r)), None):
            yield Problem(
                path,
                cidr,
                f"overlaps the cluster's own new network ({inside}): nothing there exists before the first `pulumi "
                "up`; list the network the runner lives in",
            )
    for i, group in enumerate(access.security_group_ids):
        if c.cloud != "aws":
            yield Problem(key_path([*where, "securityGroupIds", i]), group, "aws only (gcp: use apiAccess.cidrs)")
        elif not SECURITY_GROUP_ID.fullmatch(group):
            yield Problem(key_path([*where, "securityGroupIds", i]), group, "a security group id such as sg-0123abcd")
    if access.route_via is not None:
        path = key_path([*where, "routeVia"])
        if c.cloud != "aws" or c.vpc.existing is not None:
            yield Problem(
                path, access.route_via, "only for a VPC this stack creates on aws (an existing VPC's routes are yours)"
            )
        elif not ROUTE_TARGET.fullmatch(access.route_via):
            yield Problem(path, access.route_via, "a VPC peering connection (pcx-...) or transit gateway (tgw-...) id")
        elif not access.cidrs:
            yield Problem(path, access.route_via, "routes apiAccess.cidrs: list them")
    has_path = bool(access.cidrs or access.security_group_ids)
    if mode == "private" and c.vpc.existing is None and not has_path:
        yield Problem(
            key_path(where),
            None,
            "a private API endpoint in a new network is unreachable from where `pulumi up` runs, so nothing "
            "in-cluster could be installed. Either bootstrap in two phases (first endpointAccess: "
            'public-and-private with publicAccessCidrs: ["<runner IP>/32"], then private), or declare the path: '
            + (
                "apiAccess.cidrs of a network peered (or attached through a transit gateway or VPN) that holds the "
                "runner, or apiAccess.securityGroupIds. "
                if c.cloud == "aws"
                else "apiAccess.cidrs of a network connected by Cloud VPN or Interconnect that exports routes to the "
                "control plane (VPC peering is not transitive: a peered network cannot reach it). "
            )
            + f"See {ACCESS_DOC}",
        )


def _own_ranges(c: ClusterConfig) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """The ranges of a network this stack creates (none for an existing one)."""
    if c.vpc.existing is not None:
        return []
    named = {"vpc.cidr": c.vpc.cidr}
    if c.cloud == "gcp":
        named |= {"vpc.podsCidr": c.vpc.pods_cidr, "vpc.servicesCidr": c.vpc.services_cidr}
    ranges = []
    for name, cidr in named.items():
        try:
            ranges.append((name, ipaddress.ip_network(cidr, strict=False)))
        except ValueError:
            continue  # reported as a bad CIDR
    return ranges


def access_warnings(c: ClusterConfig, environment: str) -> list[str]:
    if c.cloud == "existing":
        return []
    mode = endpoint_access(c, environment)
    warnings = []
    if mode != "private" and any(n.prefixlen == 0 for _, _, n in _networks([], c.public_access_cidrs or [])):
        warnings.append(
            f"{key_path(['cluster', 'publicAccessCidrs'])}: the API endpoint is open to the whole internet (dev "
            "only); narrow it to your office, VPN or runner egress"
        )
    if mode == "private" and c.vpc.existing is not None and not (c.api_access.cidrs or c.api_access.security_group_ids):
        warnings.append(
            f"{key_path(['cluster', 'apiAccess'])}: private endpoint and no declared path: `pulumi up` must run "
            f"where the cluster security group already admits it (see {ACCESS_DOC})"
        )
    return warnings
