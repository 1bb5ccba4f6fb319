"""`KarpenterIam`: the AWS side of Karpenter (as terraform-aws-eks's karpenter submodule scopes it).

- the controller role, assumed through EKS Pod Identity, with least-privilege policies scoped to this cluster
  by ARN and tag conditions: upstream's reference policies for the pinned Karpenter, statement by statement
  (tests/autoscaling/test_karpenter_iam_upstream.py lists every deliberate difference and why);
- the node role, with an EC2_LINUX access entry so Karpenter's nodes can join;
- interruption handling: an encrypted SQS queue fed by EventBridge rules for spot interruption warnings,
  rebalance recommendations, instance state changes, AWS Health scheduled changes and capacity-reservation
  interruptions.
Policy documents are pure functions of (scope, ARNs) so tests compare them as data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster import aws_iam
from components.cluster.handle import AwsClusterInfo, ClusterHandle, aws_info

SERVICE_ACCOUNT = "karpenter"
NAMESPACE = "kube-system"

# (rule name, event source, detail-type): what Karpenter's interruption controller acts on or reports.
INTERRUPTION_EVENTS: tuple[tuple[str, str, str], ...] = (
    ("health", "aws.health", "AWS Health Event"),
    ("spot-interruption", "aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("rebalance", "aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("state-change", "aws.ec2", "EC2 Instance State-change Notification"),
    ("capacity-reservation", "aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
)


@dataclass(frozen=True)
class Scope:
    """Where the policies apply: ARNs are built from these, never from literals."""

    partition: str
    region: str
    account_id: str
    dns_suffix: str
    cluster_name: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def ec2_arn(self, resource: str) -> str:
        """Any account, as upstream: subnets and capacity reservations may be shared from another account (RAM)."""
        return f"arn:{self.partition}:ec2:{self.region}:*:{resource}"

    @property
    def owned(self) -> dict[str, str]:
        """Condition: the resource belongs to this cluster."""
        return {f"aws:ResourceTag/kubernetes.io/cluster/{self.cluster_name}": "owned"}

    @property
    def request_owned(self) -> dict[str, str]:
        """Condition: the request tags what it creates as this cluster's."""
        return {
            f"aws:RequestTag/kubernetes.io/cluster/{self.cluster_name}": "owned",
            "aws:RequestTag/eks:eks-cluster-name": self.cluster_name,
        }


def _statement(sid: str, actions: list[str], resources: list[str] | str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _document(*statements: dict[str, Any], **fields: str) -> str:
    return json.dumps({"Version": "2012-10-17", **fields, "Statement": list(statements)}, indent=2)


def node_lifecycle_policy(scope: Scope) -> str:
    """Launch, tag and terminate instances and launch templates, only with this cluster's tags."""
    cluster, owned, request_owned, ec2 = scope.cluster_name, scope.owned, scope.request_owned, scope.ec2_arn
    launched = [
        ec2(f"{r}/*")
        for r in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
    ]
    return _document(
        _statement(
            "AllowScopedEC2InstanceAccessActions",
            ["ec2:RunInstances", "ec2:CreateFleet"],
            [scope.arn("ec2", "image/*", account=False), scope.arn("ec2", "snapshot/*", account=False)]
            + [ec2(f"{r}/*") for r in ("security-group", "subnet", "capacity-reservation", "placement-group")],
        ),
        _statement(
            "AllowScopedEC2LaunchTemplateAccessActions",
            ["ec2:RunInstances", "ec2:CreateFleet"],
            ec2("launch-template/*"),
            StringEquals=owned,
            StringLike={"aws:ResourceTag/karpenter.sh/nodepool": "*"},
        ),
        _statement(
            "AllowScopedEC2InstanceActionsWithTags",
            ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            launched,
            StringEquals=request_owned,
            StringLike={"aws:RequestTag/karpenter.sh/nodepool": "*"},
        ),
        _statement(
            "AllowScopedResourceCreationTagging",
            ["ec2:CreateTags"],
            launched,
            StringEquals={
                **request_owned,
                "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
            },
            StringLike={"aws:RequestTag/karpenter.sh/nodepool": "*"},
        ),
        _statement(
            "AllowScopedResourceTagging",
            ["ec2:CreateTags"],
            ec2("instance/*"),
            StringEquals=owned,
            StringLike={"aws:ResourceTag/karpenter.sh/nodepool": "*"},
            StringEqualsIfExists={"aws:RequestTag/eks:eks-cluster-name": cluster},
            **{
                "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}
            },
        ),
        _statement(
            "AllowScopedDeletion",
            ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            [ec2("instance/*"), ec2("launch-template/*")],
            StringEquals=owned,
            StringLike={"aws:ResourceTag/karpenter.sh/nodepool": "*"},
        ),
    )


def iam_integration_policy(scope: Scope, node_role_arn: str) -> str:
    """Pass the node role to EC2 and manage the instance profiles of this cluster's EC2NodeClasses."""
    owned, request_owned = scope.owned, scope.request_owned
    profile = scope.arn("iam", "instance-profile/*", region=False)
    region_tag = {"aws:RequestTag/topology.kubernetes.io/region": scope.region}
    return _document(
        _statement(
            "AllowPassingInstanceRole",
            ["iam:PassRole"],
            node_role_arn,
            # This partition's EC2 principal only (upstream lists those of aws and aws-cn together).
            StringEquals={"iam:PassedToService": f"ec2.{scope.dns_suffix}"},
        ),
        _statement(
            "AllowScopedInstanceProfileCreationActions",
            ["iam:CreateInstanceProfile"],
            profile,
            StringEquals={**request_owned, **region_tag},
            StringLike={"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
        ),
        _statement(
            "AllowScopedInstanceProfileTagActions",
            ["iam:TagInstanceProfile"],
            profile,
            StringEquals={
                **owned,
                "aws:ResourceTag/topology.kubernetes.io/region": scope.region,
                **request_owned,
                **region_tag,
            },
            StringLike={
                "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
            },
        ),
        _statement(
            "AllowScopedInstanceProfileActions",
            ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            profile,
            StringEquals={**owned, "aws:ResourceTag/topology.kubernetes.io/region": scope.region},
            StringLike={"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
        ),
    )


def eks_integration_policy(scope: Scope) -> str:
    cluster = scope.cluster_name
    return _document(
        _statement("AllowAPIServerEndpointDiscovery", ["eks:DescribeCluster"], scope.arn("eks", f"cluster/{cluster}")),
    )


def interruption_policy(queue_arn: str) -> str:
    return _document(
        _statement(
            "AllowInterruptionQueueActions",
            ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            queue_arn,
        ),
    )


def zonal_shift_policy(scope: Scope) -> str:
    """Read this cluster's ARC zonal shift status: needed only with `settings.enableZonalShift` (the controller
    then refuses to start without it), reads nothing beyond this cluster, so granted always as upstream does."""
    return _document(
        _statement(
            "AllowZonalShiftStatusReadOnly",
            ["arc-zonal-shift:GetManagedResource"],
            "*",  # the API takes no resource ARN: the condition names the cluster
            StringEquals={"arc-zonal-shift:ResourceIdentifier": scope.arn("eks", f"cluster/{scope.cluster_name}")},
        ),
    )


def resource_discovery_policy(scope: Scope) -> str:
    return _document(
        _statement(
            "AllowRegionalReadActions",
            [
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            "*",
            StringEquals={"aws:RequestedRegion": scope.region},
        ),
        # AWS-owned public parameters (AMI ids): no account in the ARN.
        _statement(
            "AllowSSMReadActions", ["ssm:GetParameter"], scope.arn("ssm", "parameter/aws/service/*", account=False)
        ),
        # Read-only calls AWS does not scope by resource.
        _statement("AllowPricingReadActions", ["pricing:GetProducts"], "*"),
        _statement("AllowUnscopedInstanceProfileListAction", ["iam:ListInstanceProfiles"], "*"),
        # Whether an EC2NodeClass's instance profile exists or must be re-created.
        _statement(
            "AllowInstanceProfileReadActions",
            ["iam:GetInstanceProfile"],
            scope.arn("iam", "instance-profile/*", region=False),
        ),
    )


def controller_policies(scope: Scope, node_role_arn: str, queue_arn: str) -> dict[str, str]:
    """The controller's policies by concern (split like upstream's reference, each under the managed-policy size
    limit)."""
    return {
        "node-lifecycle": node_lifecycle_policy(scope),
        "iam-integration": iam_integration_policy(scope, node_role_arn),
        "eks-integration": eks_integration_policy(scope),
        "interruption": interruption_policy(queue_arn),
        "zonal-shift": zonal_shift_policy(scope),
        "resource-discovery": resource_discovery_policy(scope),
    }


CONTROLLER_POLICY_CONCERNS = (
    "node-lifecycle",
    "iam-integration",
    "eks-integration",
    "interruption",
    "zonal-shift",
    "resource-discovery",
)


def _pick(concern: str) -> Callable[[dict[str, str]], str]:
    return lambda documents: documents[concern]


def queue_policy(queue_arn: str) -> str:
    """EventBridge (and SQS itself) may send to the queue; nobody may use it without TLS."""
    return _document(
        {
            "Sid": "EventBridgeWrite",
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
        },
        {
            "Sid": "DenyHTTP",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": queue_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        Id="EC2InterruptionPolicy",
    )


def event_pattern(source: str, detail_type: str) -> str:
    return json.dumps({"source": [source], "detail-type": [detail_type]})


def node_role(
    name: str, info: AwsClusterInfo, opts: pulumi.ResourceOptions
) -> tuple[aws.iam.Role, aws.eks.AccessEntry]:
    """The role of the nodes Karpenter launches, and the access entry they join the cluster through (no aws-auth
    ConfigMap)."""
    role = aws_iam.iam_role(
        f"{name}-node",
        aws_iam.node_assume_role_policy(info.dns_suffix),
        aws_iam.NODE_ROLE_POLICIES,
        info.partition,
        opts,
    )
    access = aws.eks.AccessEntry(
        f"{name}-node", cluster_name=info.cluster_name, principal_arn=role.arn, type="EC2_LINUX", opts=opts
    )
    return role, access


def interruption_queue(name: str, cluster_name: str, opts: pulumi.ResourceOptions) -> aws.sqs.Queue:
    """The encrypted SQS queue EventBridge feeds with spot interruptions, rebalances, state changes and health
    events, which Karpenter's interruption controller reads."""
    queue = aws.sqs.Queue(
        f"{name}-interruption",
        name=f"karpenter-{cluster_name}",
        message_retention_seconds=300,  # an interruption warning is useless after two minutes
        sqs_managed_sse_enabled=True,
        opts=opts,
    )
    aws.sqs.QueuePolicy(f"{name}-interruption", queue_url=queue.url, policy=queue.arn.apply(queue_policy), opts=opts)
    for rule_name, source, detail_type in INTERRUPTION_EVENTS:
        rule = aws.cloudwatch.EventRule(
            f"{name}-{rule_name}",
            description=f"Karpenter interruption handling for {cluster_name}: {detail_type}",
            event_pattern=event_pattern(source, detail_type),
            opts=opts,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-{rule_name}",
            rule=rule.name,
            arn=queue.arn,
            target_id="KarpenterInterruptionQueueTarget",
            opts=opts,
        )
    return queue


def controller_identity(
    name: str,
    scope: Scope,
    info: AwsClusterInfo,
    node_role_arn: pulumi.Output[str],
    queue_arn: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
) -> list[pulumi.Resource]:
    """The controller's role through EKS Pod Identity with one policy per concern; returns what the controller
    must wait for."""
    controller = aws.iam.Role(
        f"{name}-controller", assume_role_policy=aws_iam.pod_identity_assume_role_policy(), opts=opts
    )
    documents: pulumi.Output[dict[str, str]] = pulumi.Output.all(node_role_arn, queue_arn).apply(
        lambda arns: controller_policies(scope, arns[0], arns[1])
    )
    ready: list[pulumi.Resource] = [
        aws.eks.PodIdentityAssociation(
            f"{name}-controller",
            cluster_name=info.cluster_name,
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            role_arn=controller.arn,
            opts=opts,
        )
    ]
    for concern in CONTROLLER_POLICY_CONCERNS:
        policy = aws.iam.Policy(
            f"{name}-{concern}",
            description=f"Karpenter controller ({concern}) for EKS cluster {scope.cluster_name}",
            policy=documents.apply(_pick(concern)),
            opts=opts,
        )
        ready.append(
            aws.iam.RolePolicyAttachment(f"{name}-{concern}", role=controller.name, policy_arn=policy.arn, opts=opts)
        )
    return ready


class KarpenterIam(pulumi.ComponentResource):
    node_role_name: pulumi.Output[str]
    queue_name: pulumi.Output[str]
    ready: list[pulumi.Resource]

    def __init__(self, name: str, handle: ClusterHandle, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ml-platform:autoscaling:KarpenterIam", name, None, opts)
        info = aws_info(handle)
        child = pulumi.ResourceOptions(parent=self, provider=info.aws_provider)
        scope = Scope(info.partition, handle.region or "", info.account_id, info.dns_suffix, handle.name)
        role, node_access = node_role(name, info, child)
        queue = interruption_queue(name, handle.name, child)
        identity = controller_identity(name, scope, info, role.arn, queue.arn, child)
        self.node_role_name = role.name
        self.queue_name = queue.name
        # The controller must not start before it can act, nor nodes launch before they can join.
        self.ready = [identity[0], node_access, *identity[1:]]
        self.register_outputs({"nodeRoleName": role.name, "queueName": queue.name})
