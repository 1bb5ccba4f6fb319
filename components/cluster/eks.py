"""`EksCluster`: an EKS cluster with encrypted secrets, API access entries, managed add-ons, a system node
group, and (with cluster-autoscaler) one managed GPU node group per pool and capacity type.

With Karpenter the GPU nodes come from Karpenter NodePools (components/autoscaling), not from here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster import aws_iam
from components.cluster.aws_network import AwsNetwork
from components.cluster.eks_nodes import (
    baseline_node_group_args,
    gpu_group_name,
    gpu_node_group_args,
    node_group,
    system_node_group_args,
)
from components.cluster.handle import AwsClusterInfo, ClusterHandle, ResolvedGpuPool, resolve_gpu_pools
from components.cluster.kubeconfig import eks_kubeconfig
from components.config import AccessEntry, AwsSettings, CapacityType, ClusterConfig, PlatformConfig

# Add-ons that must run before nodes can become Ready, and those that need nodes to schedule on.
ADDONS_BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
ADDONS_AFTER_NODES = ("coredns", "aws-ebs-csi-driver")
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
# AZs where EKS cannot place control-plane ENIs (EKS user guide, "Subnet requirements and considerations").
EKS_UNSUPPORTED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")


def default_tags(config: PlatformConfig) -> dict[str, str]:
    """Cost allocation: every AWS resource of the stack carries these (provider default_tags)."""
    return {
        **config.cluster.tags,
        "ml-platform.io/cluster": config.cluster.name,
        "ml-platform.io/environment": config.environment,
        "managed-by": "pulumi",
    }


def cluster_args(
    cluster: ClusterConfig,
    settings: AwsSettings,
    role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    kms_key_arn: pulumi.Input[str],
) -> dict[str, Any]:
    public = cluster.endpoint_access == "public-and-private"
    return {
        "name": cluster.name,
        "version": cluster.kubernetes_version,
        "role_arn": role_arn,
        "vpc_config": aws.eks.ClusterVpcConfigArgs(
            subnet_ids=subnet_ids,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=cluster.public_access_cidrs if public else None,
        ),
        # Access entries only (no aws-auth ConfigMap): access is IAM API calls, auditable in CloudTrail.
        "access_config": aws.eks.ClusterAccessConfigArgs(
            authentication_mode="API",
            bootstrap_cluster_creator_admin_permissions=settings.bootstrap_creator_admin,
        ),
        "encryption_config": aws.eks.ClusterEncryptionConfigArgs(
            provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=kms_key_arn), resources=["secrets"]
        ),
        "enabled_cluster_log_types": list(settings.log_types),
        "upgrade_policy": aws.eks.ClusterUpgradePolicyArgs(support_type=settings.support_type),
        # Managed add-ons below replace the self-managed defaults EKS would otherwise install.
        "bootstrap_self_managed_addons": False,
        "deletion_protection": bool(cluster.protect),
    }


def access_entry_name(prefix: str, entry: AccessEntry) -> str:
    """Named by the principal, not its list position (reordering replaces nothing); the hash of the full ARN
    keeps role/admin in two accounts apart."""
    short = entry.principal_arn.rsplit("/", 1)[-1].lower()[:32]
    digest = hashlib.sha256(entry.principal_arn.encode()).hexdigest()[:6]
    return f"{prefix}-access-{short}-{digest}"


def access_scope(entry: AccessEntry) -> aws.eks.AccessPolicyAssociationAccessScopeArgs:
    if entry.namespaces:
        return aws.eks.AccessPolicyAssociationAccessScopeArgs(type="namespace", namespaces=list(entry.namespaces))
    return aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster")


class EksCluster(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-platform:cluster:EksCluster", name, None, opts)
        cluster = config.cluster
        settings = cluster.aws or AwsSettings()
        region = cluster.region or ""
        provider = aws.Provider(
            f"{name}-aws",
            region=region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(config)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        invoke = pulumi.InvokeOptions(provider=provider)
        partition = aws.get_partition(opts=invoke)
        account_id = aws.get_caller_identity(opts=invoke).account_id
        azs = list(
            aws.get_availability_zones(
                state="available",
                # Regular AZs only: opted-in Local/Wavelength Zones sort first and cannot host EKS subnets.
                filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
                exclude_zone_ids=list(EKS_UNSUPPORTED_ZONE_IDS),
                opts=invoke,
            ).names
        )[: cluster.vpc.az_count]

        network = AwsNetwork(f"{name}-network", cluster, azs, child)

        kms_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {cluster.name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # Losing the key loses every secret in etcd: protected with the cluster.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=bool(cluster.protect))),
        )
        aws.kms.Alias(
            f"{name}-secrets", name=f"alias/{cluster.name}-eks-secrets", target_key_id=kms_key.key_id, opts=child
        )

        cluster_role = self._role(
            f"{name}-cluster",
            aws_iam.cluster_assume_role_policy(partition.dns_suffix),
            aws_iam.CLUSTER_ROLE_POLICIES,
            partition.partition,
            child,
        )
        eks = aws.eks.Cluster(
            f"{name}-eks",
            **cluster_args(cluster, settings, cluster_role.arn, network.private_subnet_ids, kms_key.arn),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=bool(cluster.protect))),
        )
        security_group_id = eks.vpc_config.cluster_security_group_id.apply(lambda v: v or "")
        # Karpenter (next layer) discovers the node security group by this tag.
        aws.ec2.Tag(
            f"{name}-sg-discovery",
            resource_id=security_group_id,
            key="karpenter.sh/discovery",
            value=cluster.name,
            opts=child,
        )

        access: list[pulumi.Resource] = [
            self._access_entry(access_entry_name(name, entry), eks.name, entry, partition.partition, child)
            for entry in settings.access_entries
        ]

        node_role = self._role(
            f"{name}-node",
            aws_iam.node_assume_role_policy(partition.dns_suffix),
            aws_iam.NODE_ROLE_POLICIES,
            partition.partition,
            child,
        )
        early_addons = [
            self._addon(name, eks, addon, cluster.kubernetes_version, child, settings.addon_versions.get(addon))
            for addon in ADDONS_BEFORE_NODES
        ]

        nodes_opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=early_addons))
        node_tags = default_tags(config)
        system = node_group(
            "system",
            eks.name,
            node_role.arn,
            network.private_subnet_ids,
            system_node_group_args(cluster.system_nodes),
            cluster.system_nodes.disk_gib,
            node_tags,
            nodes_opts,
        )
        # In-cluster objects wait for nodes, add-ons and the API access of the principals configured here.
        ready: list[pulumi.Resource] = [system, *early_addons, *access]

        gpu_pools = resolve_gpu_pools(config)
        gpu_groups: list[tuple[ResolvedGpuPool, CapacityType, pulumi.CustomResource]] = []
        for pool in gpu_pools:
            if config.autoscaler == "cluster-autoscaler":
                # One group per capacity type, all scaling from zero (cluster-autoscaler sizes them).
                groups = [(c, gpu_group_name(pool, c), gpu_node_group_args(pool, c)) for c in pool.capacity_types]
            elif pool.config.min_nodes > 0:
                # Karpenter has no minimum: a fixed managed group keeps minNodes warm (see docs/autoscaling.md).
                first = pool.capacity_types[0]
                groups = [(first, f"{pool.name}-baseline", baseline_node_group_args(pool))]
            else:
                groups = []
            for capacity, group_name, args in groups:
                group = node_group(
                    group_name,
                    eks.name,
                    node_role.arn,
                    network.private_subnet_ids,
                    args,
                    pool.config.disk_gib,
                    node_tags,
                    nodes_opts,
                )
                gpu_groups.append((pool, capacity, group))

        late = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[system, *early_addons]))
        ebs_role = self._role(
            f"{name}-ebs-csi",
            aws_iam.pod_identity_assume_role_policy(),
            (aws_iam.EBS_CSI_POLICY,),
            partition.partition,
            child,
        )
        ready.append(
            self._addon(name, eks, "coredns", cluster.kubernetes_version, late, settings.addon_versions.get("coredns"))
        )
        ready.append(
            self._addon(
                name,
                eks,
                "aws-ebs-csi-driver",
                cluster.kubernetes_version,
                late,
                settings.addon_versions.get("aws-ebs-csi-driver"),
                pod_identity=[
                    aws.eks.AddonPodIdentityAssociationArgs(
                        role_arn=ebs_role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT
                    )
                ],
            )
        )

        kubeconfig = pulumi.Output.all(eks.name, eks.endpoint, eks.certificate_authority.data).apply(
            lambda v: eks_kubeconfig(v[0], v[1], v[2], region)
        )
        k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(kubeconfig),  # type: ignore[arg-type]
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.handle = ClusterHandle(
            name=cluster.name,
            cloud="aws",
            region=region,
            kubernetes_version=cluster.kubernetes_version,
            provider=k8s_provider,
            gpu_pools=gpu_pools,
            ready=ready,
            aws=AwsClusterInfo(
                cluster_name=eks.name,
                cluster_arn=eks.arn,
                cluster_endpoint=eks.endpoint,
                cluster_security_group_id=security_group_id,
                vpc_id=network.vpc_id,
                private_subnet_ids=network.private_subnet_ids,
                partition=partition.partition,
                dns_suffix=partition.dns_suffix,
                account_id=account_id,
                aws_provider=provider,
                node_role_arn=node_role.arn,
                node_role_name=node_role.name,
                discovery_tag={"karpenter.sh/discovery": cluster.name},
                gpu_node_groups=tuple(gpu_groups),
            ),
        )
        self.register_outputs({"clusterName": eks.name, "endpoint": eks.endpoint, "vpcId": network.vpc_id})

    @staticmethod
    def _role(
        name: str, assume_role_policy: str, policies: tuple[str, ...], partition: str, opts: pulumi.ResourceOptions
    ) -> aws.iam.Role:
        role = aws.iam.Role(name, assume_role_policy=assume_role_policy, opts=opts)
        for policy in policies:
            short = policy.rsplit("/", 1)[-1]
            aws.iam.RolePolicyAttachment(
                f"{name}-{short}", role=role.name, policy_arn=aws_iam.managed_policy_arn(partition, policy), opts=opts
            )
        return role

    @staticmethod
    def _addon(
        name: str,
        eks: aws.eks.Cluster,
        addon: str,
        kubernetes_version: str,
        opts: pulumi.ResourceOptions,
        pinned: str | None,
        pod_identity: list[aws.eks.AddonPodIdentityAssociationArgs] | None = None,
    ) -> aws.eks.Addon:
        # A pinned version from the stack file, else the default EKS recommends for this Kubernetes version
        # at deploy time (AWS moves that default now and then: pin to control add-on upgrades).
        version: pulumi.Input[str] = (
            pinned
            or aws.eks.get_addon_version(
                addon_name=addon,
                kubernetes_version=kubernetes_version,
                most_recent=False,
                opts=pulumi.InvokeOptions(provider=opts.provider),
            ).version
        )
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=eks.name,
            addon_name=addon,
            addon_version=version,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            pod_identity_associations=pod_identity,
            opts=opts,
        )

    @staticmethod
    def _access_entry(
        name: str, cluster_name: pulumi.Input[str], entry: AccessEntry, partition: str, opts: pulumi.ResourceOptions
    ) -> aws.eks.AccessPolicyAssociation:
        access = aws.eks.AccessEntry(
            name, cluster_name=cluster_name, principal_arn=entry.principal_arn, type="STANDARD", opts=opts
        )
        return aws.eks.AccessPolicyAssociation(
            name,
            cluster_name=cluster_name,
            principal_arn=access.principal_arn,
            policy_arn=aws_iam.eks_access_policy_arn(partition, entry.access),
            access_scope=access_scope(entry),
            opts=opts,
        )
