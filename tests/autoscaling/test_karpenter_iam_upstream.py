"""Karpenter's IAM against upstream's own reference, statement by statement.

The reference is the CloudFormation template the pinned Karpenter release publishes (getting started / reference
docs): the controller's managed policies, the node role, the interruption queue's policy and its EventBridge rules.
It is read as upstream wrote it, its `${...}` placeholders filled with the values our functions get. Every
statement is matched by Sid (by position where upstream has none) and compared field by field: actions, resources,
principals and each condition key. A difference fails unless DEVIATIONS lists it with its reason; a DEVIATIONS row
that no longer differs fails too, so the table stays the exact list of where we part from upstream.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.autoscaling.karpenter_iam import (
    CONTROLLER_POLICY_CONCERNS,
    INTERRUPTION_EVENTS,
    Scope,
    controller_policies,
    event_pattern,
    queue_policy,
)
from components.cluster import aws_iam
from components.versions import KARPENTER

REFERENCE_DIR = Path(os.environ.get("REFERENCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "reference"))
REFERENCE = REFERENCE_DIR / "iam" / f"karpenter-v{KARPENTER.version}-cloudformation.yaml"

# Upstream's managed policy (CloudFormation resource) -> our policy of the same concern.
UPSTREAM_POLICIES = {
    "NodeLifecyclePolicy": "node-lifecycle",
    "IAMIntegrationPolicy": "iam-integration",
    "EKSIntegrationPolicy": "eks-integration",
    "InterruptionPolicy": "interruption",
    "ZonalShiftPolicy": "zonal-shift",
    "ResourceDiscoveryPolicy": "resource-discovery",
}
QUEUE_POLICY = "interruption-queue"  # KarpenterInterruptionQueuePolicy
NODE_TRUST = "node-trust"  # KarpenterNodeRole's AssumeRolePolicyDocument

# The values both sides are built from.
SCOPES = {
    "aws": Scope("aws", "us-east-1", "111122223333", "amazonaws.com", "ml-dev"),
    # Another partition: ARNs and service principals must follow it on both sides.
    "aws-cn": Scope("aws-cn", "cn-north-1", "111122223333", "amazonaws.com.cn", "ml-dev"),
}


def placeholders(scope: Scope) -> dict[str, str]:
    """What each upstream placeholder stands for, as we fill it in (any other placeholder fails the test)."""
    return {
        "AWS::Partition": scope.partition,
        "AWS::Region": scope.region,
        "AWS::AccountId": scope.account_id,
        "AWS::URLSuffix": scope.dns_suffix,
        "ClusterName": scope.cluster_name,
        "KarpenterNodeRole.Arn": f"arn:{scope.partition}:iam::{scope.account_id}:role/karpenter-node",
        "KarpenterInterruptionQueue.Arn": scope.arn("sqs", f"karpenter-{scope.cluster_name}"),
        "KarpenterInterruptionQueue": f"https://sqs.{scope.region}.{scope.dns_suffix}/karpenter-{scope.cluster_name}",
    }


ABSENT = None


@dataclass(frozen=True)
class Deviation:
    """Where we deliberately differ from upstream.

    `path` is () for a whole statement, ("Sid",) to name a statement upstream leaves unnamed, or a field:
    ("Action",), ("Resource",), ("Principal", "Service"), ("Condition", operator, key); with `sid` None it is a
    field of the document itself (Version, Id). `ours` is what we have instead, in upstream's placeholder language,
    or ABSENT where we leave it out.
    """

    document: str
    sid: str | None
    path: tuple[str, ...]
    ours: Any
    reason: str


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "iam-integration",
        "AllowPassingInstanceRole",
        ("Condition", "StringEquals", "iam:PassedToService"),
        ["ec2.${AWS::URLSuffix}"],
        "EC2's service principal of this cluster's partition only: upstream names aws's and aws-cn's in one list "
        "for a template meant for both; ours follows the partition, so it also holds in partitions upstream's two "
        "literals miss (GovCloud shares aws's, ISO ones do not).",
    ),
    Deviation(
        QUEUE_POLICY,
        None,
        ("Version",),
        "2012-10-17",
        "Upstream's queue policy states no Version, which IAM reads as the 2008 policy language; every policy of "
        "ours states the current one.",
    ),
    Deviation(
        QUEUE_POLICY,
        "#0",
        ("Sid",),
        "EventBridgeWrite",
        "Upstream's send permission has no Sid; ours is named so plans and reviews can refer to it.",
    ),
    Deviation(
        NODE_TRUST,
        "#0",
        ("Sid",),
        "EksNodes",
        "Upstream's trust statement has no Sid; ours is named like every trust policy in components/cluster.",
    ),
)


# ---------------------------------------------------------------- reading upstream's template


@dataclass(frozen=True)
class Intrinsic:
    """A CloudFormation function (`!Sub`, `!GetAtt`, `!Ref`, ...) as written, resolved later."""

    function: str
    argument: Any


class _CloudFormationLoader(yaml.SafeLoader):
    pass


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Intrinsic:
    argument: Any
    if isinstance(node, yaml.ScalarNode):
        argument = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        argument = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        argument = loader.construct_mapping(node, deep=True)
    return Intrinsic(suffix, argument)


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def substitute(template: str, values: dict[str, str]) -> str:
    """`${Name}` as !Sub fills it; `${!Name}` is the literal `${Name}`."""

    def one(match: re.Match[str]) -> str:
        literal, name = match.group(1), match.group(2)
        if literal:
            return f"${{{name}}}"
        assert name in values, f"upstream placeholder ${{{name}}} has no value here: add it to placeholders()"
        return values[name]

    return re.sub(r"\$\{(!?)([^}]*)\}", one, template)


def resolve(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, Intrinsic):
        if value.function == "Sub" and isinstance(value.argument, str):
            return substitute(value.argument, values)
        if value.function == "GetAtt":
            name = value.argument if isinstance(value.argument, str) else ".".join(value.argument)
            return substitute(f"${{{name}}}", values)
        if value.function == "Ref":
            return substitute(f"${{{value.argument}}}", values)
        raise AssertionError(f"CloudFormation function {value.function} is not understood here: {value.argument!r}")
    if isinstance(value, dict):
        return {k: resolve(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, values) for v in value]
    return value


def filled(value: Any, values: dict[str, str]) -> Any:
    """A DEVIATIONS value: upstream's placeholder language in every string."""
    if isinstance(value, dict):
        return {k: filled(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, values) for v in value]
    return substitute(value, values) if isinstance(value, str) else value


def template() -> dict[str, Any]:
    loaded = yaml.load(REFERENCE.read_text(), Loader=_CloudFormationLoader)  # a SafeLoader with CloudFormation tags
    assert isinstance(loaded, dict)
    return loaded


def resources_of(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in template()["Resources"].items() if r["Type"] == kind}


def upstream_documents(scope: Scope) -> dict[str, dict[str, Any]]:
    values = placeholders(scope)
    documents: dict[str, dict[str, Any]] = {}
    for name, properties in resources_of("AWS::IAM::ManagedPolicy").items():
        assert name in UPSTREAM_POLICIES, f"upstream has a policy we do not map to one of ours: {name}"
        document = resolve(properties["PolicyDocument"], values)
        # Policies with a cluster-named condition key are JSON text inside !Sub.
        documents[UPSTREAM_POLICIES[name]] = json.loads(document) if isinstance(document, str) else document
    [queue] = resources_of("AWS::SQS::QueuePolicy").values()
    documents[QUEUE_POLICY] = resolve(queue["PolicyDocument"], values)
    documents[NODE_TRUST] = resolve(
        resources_of("AWS::IAM::Role")["KarpenterNodeRole"]["AssumeRolePolicyDocument"], values
    )
    return documents


def our_documents(scope: Scope) -> dict[str, dict[str, Any]]:
    values = placeholders(scope)
    node_role, queue = values["KarpenterNodeRole.Arn"], values["KarpenterInterruptionQueue.Arn"]
    documents = {k: json.loads(v) for k, v in controller_policies(scope, node_role, queue).items()}
    documents[QUEUE_POLICY] = json.loads(queue_policy(queue))
    documents[NODE_TRUST] = json.loads(aws_iam.node_assume_role_policy(scope.dns_suffix))
    return documents


# ---------------------------------------------------------------- comparing


def _strings(value: Any) -> list[str]:
    """IAM reads a single value as a one-element list and every condition value as a string."""
    items = value if isinstance(value, list) else [value]
    return sorted(str(v).lower() if isinstance(v, bool) else str(v) for v in items)


Leaves = dict[tuple[str, ...], Any]


def statement_leaves(statement: dict[str, Any]) -> Leaves:
    leaves: Leaves = {}
    for field, value in statement.items():
        if field == "Sid":
            continue
        if field == "Condition":
            for operator, block in value.items():
                for key, values in block.items():
                    leaves[(field, operator, key)] = _strings(values)
        elif field in ("Principal", "NotPrincipal") and isinstance(value, dict):
            for kind, principals in value.items():
                leaves[(field, kind)] = _strings(principals)
        elif field == "Effect":
            leaves[(field,)] = value
        else:  # Action, NotAction, Resource, NotResource, a "*" principal
            leaves[(field,)] = _strings(value)
    return leaves


def statements_by_sid(document: dict[str, Any]) -> dict[str, Leaves]:
    keyed: dict[str, Leaves] = {}
    for index, statement in enumerate(document["Statement"]):
        sid = statement.get("Sid", f"#{index}")
        assert sid not in keyed, f"two statements named {sid}"
        keyed[sid] = statement_leaves(statement)
    return keyed


def document_leaves(document: dict[str, Any]) -> Leaves:
    return {(k,): v for k, v in document.items() if k != "Statement"}


def expected_from_upstream(
    name: str, upstream: dict[str, Any], values: dict[str, str], deviations: tuple[Deviation, ...]
) -> dict[str | None, Leaves]:
    """Upstream's document with our deviations applied: what ours must be, exactly. Fails on stale deviations."""
    statements = statements_by_sid(upstream)
    expected: dict[str | None, Leaves] = {None: document_leaves(upstream)}
    rows = [d for d in deviations if d.document == name]
    for row in [r for r in rows if r.path == ("Sid",)]:
        assert row.sid in statements, f"stale deviation, upstream has no statement {row.sid}: {row}"
        statements[filled(row.ours, values)] = statements.pop(row.sid)
    expected.update(statements)
    for row in [r for r in rows if r.path != ("Sid",)]:
        ours = filled(row.ours, values)
        if row.path == ():
            before = expected.get(row.sid)
            after = None if ours is ABSENT else statement_leaves(ours)
            assert before != after, f"stale deviation, upstream already has this: {row}"
            if after is None:
                expected.pop(row.sid, None)
            else:
                expected[row.sid] = after
            continue
        leaves = expected.setdefault(row.sid, {})
        before = leaves.get(row.path)
        after = ours if ours is ABSENT or row.path[0] in ("Effect", "Version", "Id") else _strings(ours)
        assert before != after, f"stale deviation, upstream already has this: {row}"
        if after is ABSENT:
            leaves.pop(row.path, None)
        else:
            leaves[row.path] = after
    return expected


def differences(
    name: str,
    upstream: dict[str, Any],
    ours: dict[str, Any],
    values: dict[str, str],
    deviations: tuple[Deviation, ...] = DEVIATIONS,
) -> list[str]:
    expected = expected_from_upstream(name, upstream, values, deviations)
    actual: dict[str | None, Leaves] = {None: document_leaves(ours), **statements_by_sid(ours)}
    found: list[str] = []
    for sid in sorted(set(expected) | set(actual), key=str):
        where = f"{name} {sid or '(document)'}"
        if sid not in actual:
            found.append(f"{where}: upstream has it, we do not")
        elif sid not in expected:
            found.append(f"{where}: ours only, upstream has no such statement: {actual[sid]}")
        else:
            for path in sorted(set(expected[sid]) | set(actual[sid])):
                want, have = expected[sid].get(path, ABSENT), actual[sid].get(path, ABSENT)
                if want != have:
                    found.append(f"{where} {'.'.join(path)}: upstream (after DEVIATIONS) {want!r}, ours {have!r}")
    return found


# ---------------------------------------------------------------- tests


def test_the_reference_is_the_pinned_karpenter_release_as_published() -> None:
    assert REFERENCE.is_file(), f"no upstream IAM reference for Karpenter {KARPENTER.version}: {REFERENCE}"
    sources = (REFERENCE_DIR / "SOURCES.tsv").read_text().splitlines()
    [row] = [line.split("\t") for line in sources if line.startswith(f"iam/{REFERENCE.name}\t")]
    assert row[1] == "aws/karpenter-provider-aws" and row[2].endswith(f"v{KARPENTER.version}"), row
    assert hashlib.sha256(REFERENCE.read_bytes()).hexdigest() == row[-1], "the reference differs from upstream's"


def test_we_have_a_policy_for_each_of_upstreams() -> None:
    assert set(resources_of("AWS::IAM::ManagedPolicy")) == set(UPSTREAM_POLICIES)
    assert set(UPSTREAM_POLICIES.values()) == set(CONTROLLER_POLICY_CONCERNS)


@pytest.mark.parametrize("partition", sorted(SCOPES))
def test_every_statement_matches_upstream_or_is_a_listed_deviation(partition: str) -> None:
    scope = SCOPES[partition]
    upstream, ours = upstream_documents(scope), our_documents(scope)
    assert set(upstream) == set(ours)
    found = [d for name in upstream for d in differences(name, upstream[name], ours[name], placeholders(scope))]
    assert not found, "differences from upstream not in DEVIATIONS:\n" + "\n".join(found)


def test_every_deviation_names_a_document_we_compare_and_says_why() -> None:
    names = {*UPSTREAM_POLICIES.values(), QUEUE_POLICY, NODE_TRUST}
    for row in DEVIATIONS:
        assert row.document in names, row
        assert len(row.reason) > 40, row


def test_the_comparison_catches_what_it_should() -> None:
    """The checker itself: a dropped action, a missing statement, an extra one, a changed condition and a
    DEVIATIONS row that no longer differs all fail."""
    scope = SCOPES["aws"]
    values = placeholders(scope)
    upstream = upstream_documents(scope)["node-lifecycle"]
    ours = json.loads(json.dumps(upstream))
    assert differences("node-lifecycle", upstream, ours, values) == []
    ours["Statement"][0]["Action"] = ["ec2:RunInstances"]
    ours["Statement"][1]["Condition"]["StringLike"]["aws:ResourceTag/karpenter.sh/nodepool"] = "x*"
    ours["Statement"].append({"Sid": "Extra", "Effect": "Allow", "Action": "ec2:*", "Resource": "*"})
    del ours["Statement"][2]
    found = differences("node-lifecycle", upstream, ours, values)
    assert [f.split(": ")[0] for f in found] == [
        "node-lifecycle AllowScopedEC2InstanceAccessActions Action",
        "node-lifecycle AllowScopedEC2InstanceActionsWithTags",
        "node-lifecycle AllowScopedEC2LaunchTemplateAccessActions Condition.StringLike."
        "aws:ResourceTag/karpenter.sh/nodepool",
        "node-lifecycle Extra",
    ], found
    # A listed extra statement passes; the same row once upstream has that statement is stale.
    extra = Deviation("node-lifecycle", "Extra", (), ours["Statement"][-1], "an example reason, long enough to read")
    assert "node-lifecycle Extra" not in [
        f.split(": ")[0] for f in differences("node-lifecycle", upstream, ours, values, (extra,))
    ]
    with pytest.raises(AssertionError, match="stale deviation"):
        differences("node-lifecycle", ours, ours, values, (extra,))


def test_managed_policies_stay_under_the_iam_size_limit() -> None:
    for partition, scope in SCOPES.items():
        for name, document in our_documents(scope).items():
            # IAM counts a managed policy's characters without whitespace: 6,144 at most.
            assert len(json.dumps(document, separators=(",", ":"))) < 6144, (partition, name)


def test_node_role_has_upstreams_managed_policies() -> None:
    [node_role] = resources_of("AWS::IAM::Role").values()
    for scope in SCOPES.values():
        upstream = resolve(node_role["ManagedPolicyArns"], placeholders(scope))
        ours = [aws_iam.managed_policy_arn(scope.partition, p) for p in aws_iam.NODE_ROLE_POLICIES]
        assert sorted(ours) == sorted(upstream)


def test_interruption_rules_match_upstreams() -> None:
    """The queue hears exactly the events upstream routes to it."""
    upstream = sorted(json.dumps(r["EventPattern"], sort_keys=True) for r in resources_of("AWS::Events::Rule").values())
    ours = sorted(json.dumps(json.loads(event_pattern(s, d)), sort_keys=True) for _, s, d in INTERRUPTION_EVENTS)
    assert ours == upstream
