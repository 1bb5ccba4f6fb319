"""Deploy-time invariants of the cluster layer: the first `pulumi up` can reach the API it creates, and a stack
can be destroyed and created again."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from tools.invariants.base import Invariant, Violation
from tools.invariants.plan import PlannedResource, PlanView

EKS = "aws:eks/cluster:Cluster"
GKE = "gcp:container/cluster:Cluster"
API_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
HELM = "kubernetes:helm.sh/v3:Release"
# Cloud resources whose names outlive them: GCP never deletes key rings or crypto keys (a destroy only destroys
# key versions), so a fixed name collides on the next create. Keys live inside a ring, so a fresh ring suffices.
NAMES_OUTLIVE_THE_RESOURCE = ("gcp:kms/keyRing:KeyRing",)
RANDOM_TYPE_PREFIX = "random:index/"


def _eks_paths(plan: PlanView, cluster: PlannedResource) -> Iterator[Violation]:
    vpc = cluster.inputs.get("vpcConfig", {})
    name = f"EKS cluster {cluster.inputs.get('name')}"
    if vpc.get("endpointPublicAccess"):
        if not vpc.get("publicAccessCidrs"):
            yield Violation("api-endpoint-reachable", name, "public endpoint with no publicAccessCidrs")
        return
    # Rules of a security group the control plane's network interfaces carry.
    groups = set(vpc.get("securityGroupIds") or [])
    rules = [
        r
        for r in plan.of_type(API_INGRESS)
        if r.inputs.get("fromPort", 0) <= 443 <= r.inputs.get("toPort", 0) and r.inputs.get("securityGroupId") in groups
    ]
    new_vpc = bool(plan.of_type("aws:ec2/vpc:Vpc"))
    if new_vpc and not rules:
        yield Violation(
            "api-endpoint-reachable",
            name,
            "private endpoint in a new VPC and no ingress rule for port 443 on the cluster security group "
            "(cluster.apiAccess)",
        )
    yield from _in_cluster_waits_for(plan, rules, name)


def _in_cluster_waits_for(plan: PlanView, paths: list[PlannedResource], name: str) -> Iterator[Violation]:
    """A path declared in the same `pulumi up` must be open before the first chart installs."""
    urns = {r.urn for r in paths}
    for release in plan.of_type(HELM):
        if missing := urns - set(release.dependencies):
            yield Violation(
                "api-endpoint-reachable",
                name,
                f"Helm release {release.name} does not wait for the API path ({len(missing)} ingress rule(s))",
            )


def _gke_paths(plan: PlanView, cluster: PlannedResource) -> Iterator[Violation]:
    name = f"GKE cluster {cluster.inputs.get('name')}"
    private = cluster.inputs.get("privateClusterConfig", {}).get("enablePrivateEndpoint", False)
    blocks = [
        b.get("cidrBlock") for b in cluster.inputs.get("masterAuthorizedNetworksConfig", {}).get("cidrBlocks", [])
    ]
    if not private:
        if "masterAuthorizedNetworksConfig" in cluster.inputs and not blocks:
            yield Violation("api-endpoint-reachable", name, "public endpoint with no authorized network")
        return
    own = _networks(
        cidr
        for s in plan.of_type("gcp:compute/subnetwork:Subnetwork")
        for cidr in [
            s.inputs.get("ipCidrRange"),
            *(r.get("ipCidrRange") for r in s.inputs.get("secondaryIpRanges", [])),
        ]
    )
    # A block inside the cluster's own new network (nodes, pods, services) holds no runner before the first `up`.
    outside = [b for b in _networks(blocks) if not any(b.overlaps(o) for o in own)]
    if own and not outside:
        yield Violation(
            "api-endpoint-reachable",
            name,
            "private endpoint in a new network authorizes only the cluster's own range (cluster.apiAccess.cidrs)",
        )


def _networks(cidrs: Iterable[object]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    found = []
    for cidr in cidrs:
        try:
            found.append(ipaddress.ip_network(str(cidr), strict=False))
        except ValueError:
            continue  # a placeholder or no range
    return found


def check_api_reachable(plan: PlanView) -> Iterator[Violation]:
    for cluster in plan.of_type(EKS):
        yield from _eks_paths(plan, cluster)
    for cluster in plan.of_type(GKE):
        yield from _gke_paths(plan, cluster)


def check_names_survive_destroy(plan: PlanView) -> Iterator[Violation]:
    randoms = {r.urn for r in plan.resources if r.type.startswith(RANDOM_TYPE_PREFIX)}
    for resource in plan.resources:
        if resource.type in NAMES_OUTLIVE_THE_RESOURCE and not randoms & set(resource.dependencies):
            yield Violation(
                "names-survive-destroy",
                f"{resource.type.rsplit(':', 1)[-1]} {resource.inputs.get('name')}",
                "GCP never deletes it, so this fixed name fails with 409 on the create after a destroy: derive the "
                "name from a random suffix kept in state",
            )


INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "api-endpoint-reachable",
        "The API endpoint is reachable by a declared path, open before anything is installed through it.",
        check_api_reachable,
    ),
    Invariant(
        "names-survive-destroy",
        "No cloud resource that outlives its deletion has a name a re-create would collide with.",
        check_names_survive_destroy,
    ),
)
