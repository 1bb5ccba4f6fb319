"""The EKS control plane: the secrets KMS key, the cluster role, the cluster itself and its API access entries.

`cluster_args`, `access_entry_name` and `access_scope` are pure; `control_plane` registers the resources.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster import aws_iam
from components.cluster.aws_network import DISCOVERY_TAG_KEY, AwsNetwork
from components.config.cluster import AccessEntry, AwsSettings, ClusterConfig


@dataclass(frozen=True)
class ControlPlane:
    eks: aws.eks.Cluster
    kubernetes_version: str
    # The principals' access: in-cluster objects wait for it.
    access: list[pulumi.Resource]
    discovery_tag: dict[str, str]


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
        # Managed add-ons replace the self-managed defaults EKS would otherwise install.
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


def secrets_key(name: str, cluster: ClusterConfig, opts: pulumi.ResourceOptions) -> aws.kms.Key:
    key = aws.kms.Key(
        f"{name}-secrets",
        description=f"Envelope encryption of Kubernetes secrets in EKS cluster {cluster.name}",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        # Losing the key loses every secret in etcd: protected with the cluster.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=bool(cluster.protect))),
    )
    aws.kms.Alias(f"{name}-secrets", name=f"alias/{cluster.name}-eks-secrets", target_key_id=key.key_id, opts=opts)
    return key


def access_entry(
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


def control_plane(
    name: str,
    cluster: ClusterConfig,
    settings: AwsSettings,
    partition: str,
    dns_suffix: str,
    network: AwsNetwork,
    opts: pulumi.ResourceOptions,
) -> ControlPlane:
    key = secrets_key(name, cluster, opts)
    role = aws_iam.iam_role(
        f"{name}-cluster",
        aws_iam.cluster_assume_role_policy(dns_suffix),
        aws_iam.CLUSTER_ROLE_POLICIES,
        partition,
        opts,
    )
    eks = aws.eks.Cluster(
        f"{name}-eks",
        **cluster_args(cluster, settings, role.arn, network.private_subnet_ids, key.arn),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=bool(cluster.protect))),
    )
    # Karpenter discovers the node security group by this tag.
    aws.ec2.Tag(
        f"{name}-sg-discovery",
        resource_id=eks.vpc_config.cluster_security_group_id.apply(lambda v: v or ""),
        key=DISCOVERY_TAG_KEY,
        value=cluster.name,
        opts=opts,
    )
    access: list[pulumi.Resource] = [
        access_entry(access_entry_name(name, entry), eks.name, entry, partition, opts)
        for entry in settings.access_entries
    ]
    return ControlPlane(eks, cluster.kubernetes_version, access, {DISCOVERY_TAG_KEY: cluster.name})
