"""IAM as data: pure functions that return policy documents and managed-policy ARNs, and `iam_role`, the one
builder of a role with AWS-managed policies attached.

ARNs take the partition from the environment (aws, aws-cn, aws-us-gov), never a literal `arn:aws:`.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


def eks_access_policy_arn(partition: str, access: str) -> str:
    names = {
        "cluster-admin": "AmazonEKSClusterAdminPolicy",
        "admin": "AmazonEKSAdminPolicy",
        "edit": "AmazonEKSEditPolicy",
        "view": "AmazonEKSViewPolicy",
    }
    return f"arn:{partition}:eks::aws:cluster-access-policy/{names[access]}"


def service_assume_role_policy(service: str, sid: str, actions: tuple[str, ...] = ("sts:AssumeRole",)) -> str:
    document: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": sid, "Effect": "Allow", "Principal": {"Service": service}, "Action": list(actions)}],
    }
    return json.dumps(document)


def cluster_assume_role_policy(dns_suffix: str) -> str:
    # TagSession lets EKS pass session tags (used by EKS Auto Mode and Pod Identity features).
    return service_assume_role_policy(f"eks.{dns_suffix}", "EksControlPlane", ("sts:AssumeRole", "sts:TagSession"))


def node_assume_role_policy(dns_suffix: str) -> str:
    return service_assume_role_policy(f"ec2.{dns_suffix}", "EksNodes")


def pod_identity_assume_role_policy() -> str:
    # EKS Pod Identity needs both actions; the service principal is the same in every partition.
    return service_assume_role_policy("pods.eks.amazonaws.com", "EksPodIdentity", ("sts:AssumeRole", "sts:TagSession"))


CLUSTER_ROLE_POLICIES = ("AmazonEKSClusterPolicy",)
# The VPC CNI runs with the node role here: its pods start before Pod Identity is available on a node.
NODE_ROLE_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEC2ContainerRegistryPullOnly",
    "AmazonEKS_CNI_Policy",
    "AmazonSSMManagedInstanceCore",
)
EBS_CSI_POLICY = "service-role/AmazonEBSCSIDriverPolicy"


def iam_role(
    name: str, assume_role_policy: str, policies: tuple[str, ...], partition: str, opts: pulumi.ResourceOptions
) -> aws.iam.Role:
    """A role with AWS-managed policies attached, one attachment per policy named after it."""
    role = aws.iam.Role(name, assume_role_policy=assume_role_policy, opts=opts)
    for policy in policies:
        short = policy.rsplit("/", 1)[-1]
        aws.iam.RolePolicyAttachment(
            f"{name}-{short}", role=role.name, policy_arn=managed_policy_arn(partition, policy), opts=opts
        )
    return role
