"""`EksCluster`: an EKS cluster with encrypted secrets, API access entries, managed add-ons, a system node
group, and the GPU pools' managed node groups (`ResolvedGpuPool.node_groups`).

With Karpenter most GPU nodes come from Karpenter NodePools (components/autoscaling), not from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster import aws_iam
from components.cluster.aws_network import AwsNetwork, subnets_by_az
from components.cluster.eks_addons import (
    ADDON_CONFIGURATION,
    ADDONS_AFTER_NODES,
    ADDONS_BEFORE_NODES,
    STORAGE_ADDONS,
)
from components.cluster.eks_control_plane import (
    ControlPlane,
    control_plane,
    creator_conflict_message,
    entries_naming_the_creator,
)
from components.cluster.eks_nodes import NodeGroupPlacement, gpu_node_groups, node_group, system_node_group_args
from components.cluster.handle import AwsClusterInfo, ClusterHandle
from components.cluster.kubeconfig import eks_kubeconfig
from components.config.cluster import AwsSettings, ClusterConfig
from components.config.errors import key_path
from components.config.platform import PlatformConfig
from components.gpu_pools import CapacityGroup, ResolvedGpuPool, platform_facts, resolve_gpu_pools

EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# AZs where EKS cannot place control-plane ENIs (EKS user guide, "Subnet requirements and considerations").
EKS_UNSUPPORTED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")


@dataclass(frozen=True)
class AwsAccount:
    """Facts of the account and region the stack deploys to, looked up once."""

    partition: str
    dns_suffix: str
    account_id: str
    azs: list[str]
    caller_arn: str
    # The cluster exists already: bootstrapCreatorAdmin acted once, at its creation.
    cluster_exists: bool


def reservation_zones(
    cluster: ClusterConfig, pools: tuple[ResolvedGpuPool, ...], azs: list[str], provider: aws.Provider
) -> dict[str, pulumi.Input[str]]:
    """Before anything is created: every capacity reservation a node group launches into is in an AZ the cluster
    has a private subnet in. Returns an existing VPC's subnets by AZ (looked up only when a group needs them)."""
    targets = [
        (i, target)
        for i, pool in enumerate(pools)
        for group in pool.node_groups
        if (target := pool.reservation_target(group.capacity)) is not None
    ]
    existing = cluster.vpc.existing
    by_zone = subnets_by_az(existing.private_subnet_ids, provider) if targets and existing else {}
    zones = sorted(by_zone) if existing else azs
    for i, (_, zone) in targets:
        if zone not in zones:
            where = key_path(["gpuPools", i, "reservations", "availabilityZone"])
            raise pulumi.RunError(f"{where}: got {zone!r}; the cluster's private subnets are in " + ", ".join(zones))
    return by_zone


def look_up_account(cluster: ClusterConfig, provider: aws.Provider) -> AwsAccount:
    invoke = pulumi.InvokeOptions(provider=provider)
    partition = aws.get_partition(opts=invoke)
    azs = aws.get_availability_zones(
        state="available",
        # Regular AZs only: opted-in Local/Wavelength Zones sort first and cannot host EKS subnets.
        filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
        exclude_zone_ids=list(EKS_UNSUPPORTED_ZONE_IDS),
        opts=invoke,
    ).names
    caller = aws.get_caller_identity(opts=invoke)
    exists = cluster.name in aws.eks.get_clusters(opts=invoke).names
    return AwsAccount(
        partition.partition,
        partition.dns_suffix,
        caller.account_id,
        list(azs)[: cluster.vpc.az_count],
        caller.arn,
        exists,
    )


def addon(
    name: str,
    plane: ControlPlane,
    addon_name: str,
    settings: AwsSettings,
    opts: pulumi.ResourceOptions,
    pod_identity: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
) -> aws.eks.Addon:
    # A pinned version from the stack file, else the default EKS recommends for this Kubernetes version
    # at deploy time (AWS moves that default now and then: pin to control add-on upgrades).
    version: pulumi.Input[str] = (
        settings.addon_versions.get(addon_name)
        or aws.eks.get_addon_version(
            addon_name=addon_name,
            kubernetes_version=plane.kubernetes_version,
            most_recent=False,
            opts=pulumi.InvokeOptions(provider=opts.provider),
        ).version
    )
    return aws.eks.Addon(
        f"{name}-{addon_name}",
        cluster_name=plane.eks.name,
        addon_name=addon_name,
        addon_version=version,
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        pod_identity_associations=pod_identity,
        configuration_values=json.dumps(ADDON_CONFIGURATION[addon_name]) if addon_name in ADDON_CONFIGURATION else None,
        opts=opts,
    )


def late_addons(
    name: str,
    plane: ControlPlane,
    settings: AwsSettings,
    account: AwsAccount,
    filesystem: str | None,
    opts: pulumi.ResourceOptions,
) -> list[pulumi.Resource]:
    """The add-ons that need nodes to schedule on: the EBS CSI driver, and the shared filesystem's CSI driver, each
    with its controller's role through Pod Identity."""
    drivers = [("aws-ebs-csi-driver", EBS_CSI_SERVICE_ACCOUNT, aws_iam.EBS_CSI_POLICY, "ebs-csi")]
    if filesystem in STORAGE_ADDONS:
        driver, service_account, policy = STORAGE_ADDONS[filesystem]
        drivers.append((driver, service_account, policy, driver.removeprefix("aws-").removesuffix("-driver")))
    identity = {}
    for driver, service_account, policy, short in drivers:
        role = aws_iam.iam_role(
            f"{name}-{short}",
            aws_iam.pod_identity_assume_role_policy(),
            (policy,),
            account.partition,
            pulumi.ResourceOptions(parent=opts.parent, provider=opts.provider),
        )
        identity[driver] = [aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.arn, service_account=service_account)]
    addons = [*ADDONS_AFTER_NODES, *(d for d, *_ in drivers[1:])]
    return [addon(name, plane, a, settings, opts, identity.get(a)) for a in addons]


def kubernetes_provider(name: str, plane: ControlPlane, region: str, opts: pulumi.ResourceOptions) -> k8s.Provider:
    kubeconfig = pulumi.Output.all(plane.eks.name, plane.eks.endpoint, plane.eks.certificate_authority.data).apply(
        lambda v: eks_kubeconfig(v[0], v[1], v[2], region)
    )
    return k8s.Provider(
        f"{name}-k8s",
        kubeconfig=pulumi.Output.secret(kubeconfig),  # type: ignore[arg-type]
        enable_server_side_apply=True,
        opts=opts,
    )


def cluster_info(
    plane: ControlPlane,
    account: AwsAccount,
    provider: aws.Provider,
    network: AwsNetwork,
    gpu_groups: tuple[tuple[ResolvedGpuPool, CapacityGroup, pulumi.CustomResource], ...],
) -> AwsClusterInfo:
    return AwsClusterInfo(
        cluster_name=plane.eks.name,
        cluster_endpoint=plane.eks.endpoint,
        partition=account.partition,
        dns_suffix=account.dns_suffix,
        account_id=account.account_id,
        aws_provider=provider,
        discovery_tag=plane.discovery_tag,
        gpu_node_groups=gpu_groups,
        vpc_id=network.vpc_id,
        private_subnet_ids=tuple(network.private_subnet_ids),
        node_security_group_id=plane.eks.vpc_config.cluster_security_group_id,
    )


class EksCluster(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-platform:cluster:EksCluster", name, None, opts)
        cluster, settings = config.cluster, config.cluster.aws or AwsSettings()
        facts, pools = platform_facts(config), resolve_gpu_pools(config)
        region = cluster.region or ""
        provider = aws.Provider(
            f"{name}-aws",
            region=region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=facts.cost_tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        account = look_up_account(cluster, provider)
        conflicts = [] if account.cluster_exists else entries_naming_the_creator(settings, account.caller_arn)
        if conflicts:
            # Before any cloud resource: a clear message instead of a half-created cluster. Only on the first
            # `up`: later, the deployer listed in accessEntries is the normal hand-over.
            raise pulumi.RunError(creator_conflict_message(settings, account.caller_arn, conflicts))
        existing_by_zone = reservation_zones(cluster, pools, account.azs, provider)
        network = AwsNetwork(f"{name}-network", cluster, account.azs, child)
        plane = control_plane(name, cluster, settings, account.partition, account.dns_suffix, network, child)

        node_role = aws_iam.iam_role(
            f"{name}-node",
            aws_iam.node_assume_role_policy(account.dns_suffix),
            aws_iam.NODE_ROLE_POLICIES,
            account.partition,
            child,
        )
        early = [addon(name, plane, a, settings, child) for a in ADDONS_BEFORE_NODES]
        nodes_opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=early))
        by_zone = network.private_subnets_by_az if network.private_subnets_by_az is not None else existing_by_zone
        placement = NodeGroupPlacement(cluster.name, plane.eks.name, node_role.arn, network.private_subnet_ids, by_zone)
        system_args = system_node_group_args(cluster.system_nodes)
        system = node_group(
            "system", placement, system_args, cluster.system_nodes.disk_gib, facts.cost_tags, nodes_opts
        )
        gpu_groups = gpu_node_groups(pools, placement, nodes_opts)
        late_opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[system, *early]))
        late = late_addons(name, plane, settings, account, config.storage.shared_filesystem.type, late_opts)

        self.handle = ClusterHandle(
            name=cluster.name,
            region=region,
            provider=kubernetes_provider(name, plane, region, pulumi.ResourceOptions(parent=self)),
            platform=facts,
            gpu_pools=pools,
            # In-cluster objects wait for nodes, add-ons and the API access of the principals configured here.
            ready=[system, *early, *plane.access, *late],
            aws=cluster_info(plane, account, provider, network, gpu_groups),
        )
        self.register_outputs({"clusterName": plane.eks.name, "endpoint": plane.eks.endpoint, "vpcId": network.vpc_id})
