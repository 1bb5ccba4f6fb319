"""`AwsNetwork`: the VPC an EKS cluster lives in (new: 3 AZs, private + public subnets, NAT), or an existing one.

Subnet tags let load balancers (`kubernetes.io/role/elb`, `.../internal-elb`) and Karpenter
(`karpenter.sh/discovery`) find the right subnets without ids in their config.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config.cluster import ClusterConfig

# Karpenter discovers subnets and the node security group by this tag (value: the cluster name).
DISCOVERY_TAG_KEY = "karpenter.sh/discovery"


@dataclass(frozen=True)
class SubnetPlan:
    name: str
    az: str
    cidr: str
    public: bool


def plan_subnets(cluster_name: str, vpc_cidr: str, azs: list[str]) -> list[SubnetPlan]:
    """Private subnets get the big blocks (pods take VPC IPs with the VPC CNI), public ones small blocks.

    A /16 splits into 4 x /18: three private /18s (16k IPs each, one per AZ); the fourth /18 is cut into
    /20s for the public subnets.
    """
    network = ipaddress.IPv4Network(vpc_cidr)
    quarters = list(network.subnets(prefixlen_diff=2))
    public_blocks = list(quarters[3].subnets(prefixlen_diff=2))
    plans = []
    for i, az in enumerate(azs):
        plans.append(SubnetPlan(f"{cluster_name}-private-{az}", az, str(quarters[i]), public=False))
        plans.append(SubnetPlan(f"{cluster_name}-public-{az}", az, str(public_blocks[i]), public=True))
    return plans


def subnet_tags(cluster_name: str, public: bool) -> dict[str, str]:
    tags = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
    if public:
        tags["kubernetes.io/role/elb"] = "1"
    else:
        tags["kubernetes.io/role/internal-elb"] = "1"
        tags[DISCOVERY_TAG_KEY] = cluster_name
    return tags


def subnets(
    cluster_name: str,
    vpc: aws.ec2.Vpc,
    plans: list[SubnetPlan],
    public_rt: aws.ec2.RouteTable,
    opts: pulumi.ResourceOptions,
) -> tuple[dict[str, aws.ec2.Subnet], dict[str, aws.ec2.Subnet]]:
    """(public, private) subnets by AZ; the public ones route through the internet gateway."""
    public: dict[str, aws.ec2.Subnet] = {}
    private: dict[str, aws.ec2.Subnet] = {}
    for plan in plans:
        subnet = aws.ec2.Subnet(
            plan.name,
            vpc_id=vpc.id,
            cidr_block=plan.cidr,
            availability_zone=plan.az,
            map_public_ip_on_launch=False,  # nothing gets a public IP by accident
            tags={"Name": plan.name, **subnet_tags(cluster_name, plan.public)},
            opts=opts,
        )
        (public if plan.public else private)[plan.az] = subnet
        if plan.public:
            aws.ec2.RouteTableAssociation(
                f"{plan.name}-rt", subnet_id=subnet.id, route_table_id=public_rt.id, opts=opts
            )
    return public, private


def nat_routes(
    cluster: ClusterConfig,
    vpc: aws.ec2.Vpc,
    igw: aws.ec2.InternetGateway,
    public: dict[str, aws.ec2.Subnet],
    private: dict[str, aws.ec2.Subnet],
    opts: pulumi.ResourceOptions,
) -> list[aws.ec2.RouteTable]:
    """One NAT per AZ survives an AZ outage; a single NAT is the cheap dev default. Returns the private route
    tables."""
    cluster_name, azs = cluster.name, list(private)
    nat_azs = azs if cluster.vpc.nat_gateways == "one-per-az" else azs[:1]
    nats: dict[str, aws.ec2.NatGateway] = {}
    tables = []
    for az in nat_azs:
        eip = aws.ec2.Eip(f"{cluster_name}-nat-{az}", domain="vpc", tags={"Name": cluster_name}, opts=opts)
        nats[az] = aws.ec2.NatGateway(
            f"{cluster_name}-nat-{az}",
            allocation_id=eip.id,
            subnet_id=public[az].id,
            tags={"Name": f"{cluster_name}-nat-{az}"},
            opts=pulumi.ResourceOptions(parent=opts.parent, depends_on=[igw]),
        )
    for az, subnet in private.items():
        nat = nats.get(az, nats[nat_azs[0]])
        # Routes as their own resources, not inline: inline routes would remove every route added beside them
        # (a peering's return route, a transit gateway's) on the next `up`.
        rt = aws.ec2.RouteTable(
            f"{cluster_name}-private-{az}", vpc_id=vpc.id, tags={"Name": f"{cluster_name}-private-{az}"}, opts=opts
        )
        aws.ec2.Route(
            f"{cluster_name}-private-{az}-nat",
            route_table_id=rt.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.id,
            opts=opts,
        )
        for cidr in cluster.api_access.cidrs if cluster.api_access.route_via else ():
            via = cluster.api_access.route_via or ""
            # The return path to a peered runner network: without it replies to the runner leave through the NAT.
            aws.ec2.Route(
                f"{cluster_name}-private-{az}-api-{cidr.replace('/', '-')}",
                route_table_id=rt.id,
                destination_cidr_block=cidr,
                vpc_peering_connection_id=via if via.startswith("pcx-") else None,
                transit_gateway_id=via if via.startswith("tgw-") else None,
                opts=opts,
            )
        aws.ec2.RouteTableAssociation(
            f"{cluster_name}-private-{az}-rt", subnet_id=subnet.id, route_table_id=rt.id, opts=opts
        )
        tables.append(rt)
    return tables


# Interface endpoints for image pulls from ECR: the API (auth, manifests) and the registry (layer URLs, which
# point at S3 and so also need the gateway endpoint).
ECR_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr")


def endpoint_service(service: str, kind: str, opts: pulumi.ResourceOptions) -> str:
    """The endpoint service's name as EC2 reports it (com.amazonaws.<region>.<service>; other partitions differ,
    e.g. cn.com.amazonaws. in China)."""
    found = aws.ec2.get_vpc_endpoint_service(
        service=service, service_type=kind, opts=pulumi.InvokeOptions(provider=opts.provider)
    )
    return found.service_name


def subnets_by_az(subnet_ids: list[str], provider: pulumi.ProviderResource | None) -> dict[str, pulumi.Input[str]]:
    """AZ -> the first of these existing subnets in it, as EC2 reports it."""
    found: dict[str, pulumi.Input[str]] = {}
    for subnet_id in subnet_ids:
        zone = aws.ec2.get_subnet(id=subnet_id, opts=pulumi.InvokeOptions(provider=provider)).availability_zone
        found.setdefault(zone, subnet_id)
    return found


def vpc_endpoints(
    cluster: ClusterConfig,
    vpc: aws.ec2.Vpc,
    route_tables: list[aws.ec2.RouteTable],
    private: dict[str, aws.ec2.Subnet],
    opts: pulumi.ResourceOptions,
) -> None:
    """Images (10-20 GB per GPU node scale-up), datasets and checkpoints would otherwise pay NAT data charges."""
    endpoints, name = cluster.vpc.endpoints, cluster.name
    if endpoints.s3:
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=vpc.id,
            service_name=endpoint_service("s3", "Gateway", opts),
            vpc_endpoint_type="Gateway",  # free, a route in each private route table
            route_table_ids=[t.id for t in route_tables],
            tags={"Name": f"{name}-s3"},
            opts=opts,
        )
    if not endpoints.ecr:
        return
    group = aws.ec2.SecurityGroup(
        f"{name}-endpoints",
        vpc_id=vpc.id,
        description=f"HTTPS from the {name} VPC to its interface endpoints",
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=443, to_port=443, cidr_blocks=[cluster.vpc.cidr])
        ],
        tags={"Name": f"{name}-endpoints"},
        opts=opts,
    )
    for service in ECR_ENDPOINT_SERVICES:
        aws.ec2.VpcEndpoint(
            f"{name}-{service.replace('.', '-')}",
            vpc_id=vpc.id,
            service_name=endpoint_service(service, "Interface", opts),
            vpc_endpoint_type="Interface",
            subnet_ids=[s.id for s in private.values()],
            security_group_ids=[group.id],
            private_dns_enabled=True,  # the registry's public name resolves to the endpoint inside the VPC
            tags={"Name": f"{name}-{service}"},
            opts=opts,
        )


class AwsNetwork(pulumi.ComponentResource):
    vpc_id: pulumi.Input[str]
    private_subnet_ids: list[pulumi.Input[str]]
    public_subnet_ids: list[pulumi.Input[str]]
    # AZ -> private subnet; None for an existing VPC (its subnets' AZs are looked up only when needed).
    private_subnets_by_az: dict[str, pulumi.Input[str]] | None = None

    def __init__(
        self, name: str, cluster: ClusterConfig, azs: list[str], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ml-platform:cluster:AwsNetwork", name, None, opts)
        existing = cluster.vpc.existing
        if existing is not None:
            # Existing subnets must already carry the tags above; the README says which.
            self.vpc_id = existing.vpc_id or ""
            self.private_subnet_ids = list(existing.private_subnet_ids)
            self.public_subnet_ids = list(existing.public_subnet_ids)
            self.register_outputs({"vpcId": self.vpc_id})
            return

        child = pulumi.ResourceOptions(parent=self)
        cluster_name = cluster.name
        vpc = aws.ec2.Vpc(
            f"{cluster_name}-vpc",
            cidr_block=cluster.vpc.cidr,
            enable_dns_hostnames=True,  # EKS nodes need DNS hostnames to join
            enable_dns_support=True,
            tags={"Name": f"{cluster_name}-vpc"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{cluster_name}-igw", vpc_id=vpc.id, tags={"Name": cluster_name}, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{cluster_name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={"Name": f"{cluster_name}-public"},
            opts=child,
        )
        public, private = subnets(
            cluster_name, vpc, plan_subnets(cluster_name, cluster.vpc.cidr, azs), public_rt, child
        )
        route_tables = nat_routes(cluster, vpc, igw, public, private, child)
        vpc_endpoints(cluster, vpc, route_tables, private, child)
        self.vpc_id = vpc.id
        self.private_subnet_ids = [s.id for s in private.values()]
        self.private_subnets_by_az = {az: s.id for az, s in private.items()}
        self.public_subnet_ids = [s.id for s in public.values()]
        self.register_outputs({"vpcId": vpc.id})
