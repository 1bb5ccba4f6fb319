"""`ClusterAutoscaler` on EKS: the pinned chart with Pod Identity, ASG auto-discovery, and the ASG node-template
tags that let it scale a GPU managed node group up from zero.

Why the tags: with zero nodes, cluster-autoscaler builds a template node from the ASG. EKS's DescribeNodegroup
gives it labels and taints, but not extended resources: without `.../node-template/resources/nvidia.com/gpu`
it believes the group has no GPUs and never scales it up for a GPU pod. Managed node group tags do not reach
the ASG, so they are set on the ASG itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster import aws_iam
from components.cluster.eks_nodes import node_group_labels
from components.cluster.handle import AwsClusterInfo, ClusterHandle, aws_info
from components.config.base import CapacityType
from components.config.scaling import ScalingConfig
from components.gpu_pools import ResolvedGpuPool
from components.kube import helm_release
from components.layer import Layer
from components.versions import CLUSTER_AUTOSCALER
from vocabulary.labels import SYSTEM_NODE_SELECTOR
from vocabulary.resources import GPU_RESOURCE

SERVICE_ACCOUNT = "cluster-autoscaler"
TEMPLATE = "k8s.io/cluster-autoscaler/node-template"


def node_template_tags(pool: ResolvedGpuPool, capacity: CapacityType) -> dict[str, str]:
    """ASG tags describing a node of this group before one exists (cluster-autoscaler AWS docs)."""
    labels = node_group_labels(pool, capacity)
    tags = {f"{TEMPLATE}/label/{k}": v for k, v in labels.items()}
    tags[f"{TEMPLATE}/taint/{pool.taint.key}"] = f"{pool.taint.value}:{pool.taint.effect}"
    tags |= {f"{TEMPLATE}/resources/{resource}": str(count) for resource, count in pool.advertised.items()}
    # cluster-autoscaler takes nvidia.com/gpu from the instance type unless a tag says otherwise: a MIG node under
    # the mixed strategy advertises none, so no whole-GPU pod may be placed on the template.
    tags.setdefault(f"{TEMPLATE}/resources/{GPU_RESOURCE}", "0")
    return tags


def controller_policy(cluster_name: str) -> str:
    """Describe calls everywhere (read-only, unscopable); resizing only ASGs this cluster owns (EKS tags a
    managed node group's ASG k8s.io/cluster-autoscaler/<cluster>=owned)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DescribeScalingState",
                    "Effect": "Allow",
                    "Action": [
                        "autoscaling:DescribeAutoScalingGroups",
                        "autoscaling:DescribeAutoScalingInstances",
                        "autoscaling:DescribeLaunchConfigurations",
                        "autoscaling:DescribeScalingActivities",
                        "autoscaling:DescribeTags",
                        "ec2:DescribeImages",
                        "ec2:DescribeInstanceTypes",
                        "ec2:DescribeLaunchTemplateVersions",
                        "ec2:GetInstanceTypesFromInstanceRequirements",
                        "eks:DescribeNodegroup",
                    ],
                    "Resource": "*",
                },
                {
                    "Sid": "ResizeOwnedGroups",
                    "Effect": "Allow",
                    "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}
                    },
                },
            ],
        },
        indent=2,
    )


def expander_priorities(handle: ClusterHandle) -> dict[str, list[str]]:
    """Reserved groups (capacity already paid for) first, spot next, on-demand fallbacks after, anything else last.
    Patterns match ASG names, which EKS derives from the node group name (eks-<group>-<suffix>-<uuid>)."""
    reserved: list[str] = []
    spot: list[str] = []
    on_demand: list[str] = []
    for pool in handle.gpu_pools:
        for group in pool.node_groups:
            # EKS names the ASG eks-<node group>-<uuid>; Pulumi names the group <name>-<7 hex>: anchoring the suffix
            # keeps train-spot from matching train-spot-on-demand.
            pattern = f"^eks-{re.escape(group.name)}-[0-9a-f]{{7}}-.*"
            {"reserved": reserved, "spot": spot, "on-demand": on_demand}[group.capacity].append(pattern)
    return {**({"200": reserved} if reserved else {}), "100": spot, "50": on_demand, "1": [".*"]}


def autoscaler_values(scaling: ScalingConfig, handle: ClusterHandle) -> dict[str, Any]:
    delay = str(scaling.consolidate_after)
    expander = "priority,least-waste" if scaling.expander == "priority" else "least-waste"
    values: dict[str, Any] = {
        "autoDiscovery": {"clusterName": handle.name},
        "awsRegion": handle.region,
        "rbac": {"serviceAccount": {"name": SERVICE_ACCOUNT}},
        "extraArgs": {
            # The field guide's scale-down delays (2m dev, 5m prod) instead of the 10m default.
            "scale-down-unneeded-time": delay,
            "scale-down-delay-after-add": delay,
            "expander": expander,
            "balance-similar-node-groups": True,
            # GPU pods mount /dev/shm as emptyDir: that must not pin an idle GPU node.
            "skip-nodes-with-local-storage": False,
        },
        "nodeSelector": dict(SYSTEM_NODE_SELECTOR),
        "replicaCount": 1,
    }
    if scaling.expander == "priority":
        values["expanderPriorities"] = expander_priorities(handle)
    if scaling.cluster_autoscaler_version:
        values["image"] = {"tag": scaling.cluster_autoscaler_version}
    return values


def controller_role(
    name: str, cluster: str, info: AwsClusterInfo, opts: pulumi.ResourceOptions
) -> list[pulumi.Resource]:
    """The controller's role through EKS Pod Identity; returns what the release must wait for."""
    role = aws.iam.Role(f"{name}-controller", assume_role_policy=aws_iam.pod_identity_assume_role_policy(), opts=opts)
    policy = aws.iam.Policy(
        f"{name}-controller",
        policy=controller_policy(cluster),
        description=f"cluster-autoscaler for EKS cluster {cluster}",
        opts=opts,
    )
    attachment = aws.iam.RolePolicyAttachment(f"{name}-controller", role=role.name, policy_arn=policy.arn, opts=opts)
    association = aws.eks.PodIdentityAssociation(
        f"{name}-controller",
        cluster_name=info.cluster_name,
        namespace=CLUSTER_AUTOSCALER.namespace,
        service_account=SERVICE_ACCOUNT,
        role_arn=role.arn,
        opts=opts,
    )
    return [association, attachment]


def scale_from_zero_tags(info: AwsClusterInfo, opts: pulumi.ResourceOptions) -> None:
    """The node-template tags on the ASG of every GPU node group (managed node group tags do not reach it)."""
    for pool, group, node_group in info.gpu_node_groups:
        asg_name = node_group.resources.apply(  # type: ignore[attr-defined]
            lambda resources: resources[0].autoscaling_groups[0].name
        )
        for key, value in node_template_tags(pool, group.capacity).items():
            slug = re.sub(r"[^a-z0-9]+", "-", key.removeprefix(TEMPLATE + "/").lower()).strip("-")
            aws.autoscaling.Tag(
                f"{group.name}-{slug}",
                autoscaling_group_name=asg_name,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=opts,
            )


class ClusterAutoscaler(Layer[ScalingConfig]):
    """cluster-autoscaler on EKS (`ml-platform:scaling`)."""

    TYPE = "ml-platform:autoscaling:ClusterAutoscaler"

    def build(self) -> dict[str, Any]:
        info = aws_info(self.handle)
        on_aws = pulumi.ResourceOptions(parent=self, provider=info.aws_provider)
        identity = controller_role(self.name, self.handle.name, info, on_aws)
        scale_from_zero_tags(info, on_aws)
        helm_release(
            self.name, CLUSTER_AUTOSCALER, autoscaler_values(self.section, self.handle), self.in_cluster(*identity)
        )
        return {"version": CLUSTER_AUTOSCALER.version}
