"""The EKS control plane: the secrets KMS key, the cluster role, its log group, the cluster itself, the network
path to its API and its API access entries.

`cluster_args`, `api_ingress_rules`, `log_group_name`, `access_entry_name` and `access_scope` are pure;
`control_plane` registers the resources.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster import aws_iam
from components.cluster.aws_network import DISCOVERY_TAG_KEY, AwsNetwork
from components.config.cluster import AccessEntry, AwsSettings, ClusterConfig
from components.config.errors import key_path


@dataclass(frozen=True)
class ControlPlane:
    eks: aws.eks.Cluster
    kubernetes_version: str
    # The path to the API and the principals' access: in-cluster objects wait for them.
    access: list[pulumi.Resource]
    discovery_tag: dict[str, str]


def cluster_args(
    cluster: ClusterConfig,
    settings: AwsSettings,
    role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    kms_key_arn: pulumi.Input[str],
    api_group_id: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    public = cluster.endpoint_access == "public-and-private"
    return {
        "name": cluster.name,
        "version": cluster.kubernetes_version,
        "role_arn": role_arn,
        "vpc_config": aws.eks.ClusterVpcConfigArgs(
            subnet_ids=subnet_ids,
            security_group_ids=[api_group_id] if api_group_id is not None else None,
            endpoint_private_access=True,
            endpoint_public_access=public,
            public_access_cidrs=list(cluster.public_access_cidrs or []) if public else None,
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


def log_group_name(cluster_name: str) -> str:
    """The name EKS writes control-plane logs to: creating it first is how it gets a retention."""
    return f"/aws/eks/{cluster_name}/cluster"


def api_ingress_rules(cluster: ClusterConfig) -> list[tuple[str, dict[str, str]]]:
    """(suffix, source) of each port-443 ingress rule of the API access security group: the declared private path
    to the API (the cluster security group admits only itself, so a runner in a peered network could not connect)."""
    rules = [(f"cidr-{cidr.replace('/', '-')}", {"cidr_ipv4": cidr}) for cidr in cluster.api_access.cidrs]
    rules += [(group, {"referenced_security_group_id": group}) for group in cluster.api_access.security_group_ids]
    return rules


def access_entry_name(prefix: str, entry: AccessEntry) -> str:
    """Named by the principal, not its list position (reordering replaces nothing); the hash of the full ARN
    keeps role/admin in two accounts apart."""
    short = entry.principal_arn.rsplit("/", 1)[-1].lower()[:32]
    digest = hashlib.sha256(entry.principal_arn.encode()).hexdigest()[:6]
    return f"{prefix}-access-{short}-{digest}"


_PRINCIPAL = re.compile(r"^arn:[^:]+:(?:iam|sts)::(\d{12}):(role|user|assumed-role)/(.+)$")


def principal_key(arn: str) -> tuple[str, str, str] | None:
    """(account, role | user, name) of an IAM principal or of an assumed-role session; names are unique per
    account whatever the path, so paths are dropped."""
    match = _PRINCIPAL.match(arn)
    if match is None:
        return None
    account, kind, rest = match.groups()
    # IAM names are unique per account case-insensitively (SSO roles carry a path, e.g. /aws-reserved/...).
    if kind == "assumed-role":
        return account, "role", rest.split("/", 1)[0].lower()
    return account, kind, rest.rsplit("/", 1)[-1].lower()


def entries_naming_the_creator(settings: AwsSettings, caller_arn: str) -> list[int]:
    """Access entries for the identity running `pulumi up` while bootstrapCreatorAdmin already gives it one: EKS
    rejects the second with ResourceInUseException, after the cluster exists."""
    caller = principal_key(caller_arn)
    if not settings.bootstrap_creator_admin or caller is None:
        return []
    return [i for i, entry in enumerate(settings.access_entries) if principal_key(entry.principal_arn) == caller]


def creator_conflict_message(settings: AwsSettings, caller_arn: str, indexes: list[int]) -> str:
    lines = [
        f"{key_path(['cluster', 'aws', 'accessEntries', i, 'principalArn'])}: got "
        f'"{settings.access_entries[i].principal_arn}"; this is the identity creating the cluster ({caller_arn}), '
        "which bootstrapCreatorAdmin already makes cluster-admin, so EKS would reject this entry "
        "(ResourceInUseException): create the cluster without the entry and add it in a later `pulumi up`, or "
        "create it with cluster.aws.bootstrapCreatorAdmin: false"
        for i in indexes
    ]
    return "\n".join(lines)


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
    # The API path gets its own security group on the control plane's network interfaces: rules on the cluster
    # security group would also open every node that carries it. Created even without rules, so a path added
    # later never touches the cluster's vpc_config.
    api_group = aws.ec2.SecurityGroup(
        f"{name}-api-access",
        vpc_id=network.vpc_id,
        description=f"Kubernetes API of {cluster.name} from declared paths (cluster.apiAccess)",
        tags={"Name": f"{cluster.name}-api-access"},
        opts=opts,
    )
    logs = aws.cloudwatch.LogGroup(
        f"{name}-control-plane-logs",
        name=log_group_name(cluster.name),
        retention_in_days=settings.log_retention_days,
        opts=opts,
    )
    eks = aws.eks.Cluster(
        f"{name}-eks",
        **cluster_args(cluster, settings, role.arn, network.private_subnet_ids, key.arn, api_group.id),
        # The log group first, or EKS creates its own that never expires; on destroy the cluster goes first.
        # bootstrapCreatorAdmin acts once, at creation (and changing it would replace the cluster).
        opts=pulumi.ResourceOptions.merge(
            opts,
            pulumi.ResourceOptions(
                protect=bool(cluster.protect),
                depends_on=[logs],
                ignore_changes=["accessConfig.bootstrapClusterCreatorAdminPermissions"],
            ),
        ),
    )
    api_path = [
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-api-{suffix}",
            security_group_id=api_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="Kubernetes API from a declared path (cluster.apiAccess)",
            cidr_ipv4=source.get("cidr_ipv4"),
            referenced_security_group_id=source.get("referenced_security_group_id"),
            opts=opts,
        )
        for suffix, source in api_ingress_rules(cluster)
    ]
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
    # In-cluster objects wait for the path to the API as well as for the principals' access.
    return ControlPlane(eks, cluster.kubernetes_version, [*api_path, *access], {DISCOVERY_TAG_KEY: cluster.name})
