"""The checkpoint bucket on AWS: S3, versioned, encrypted, private, TLS only; a role per team through EKS Pod
Identity that reaches only `teams/<team>/`. IAM documents are plain functions (tests evaluate them)."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster import aws_iam
from components.cluster.handle import AwsClusterInfo
from components.config.storage import CheckpointsConfig
from components.storage.team_objects import team_prefix
from vocabulary.storage import CHECKPOINT_SERVICE_ACCOUNT

# What a training job does with its checkpoints: write, read (any version, to roll back), delete, and finish or
# abort multipart uploads (large checkpoints).
OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)


def team_checkpoint_policy(partition: str, bucket: str, team: str) -> dict[str, Any]:
    """Objects under the team's prefix and nothing else; listing under it (AWS's "home folder" pattern), and the
    bucket itself. S3 authorizes HeadBucket (which pyarrow, hence Ray Train, and s3fs call before writing) as a
    ListBucket without a prefix, which no condition can tell from listing the whole bucket: a team can see the names
    of other teams' objects, never read, write or delete them."""
    prefix = team_prefix(team)
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListTeamPrefix",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
            },
            {
                "Sid": "BucketItself",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"Null": {"s3:prefix": "true"}},
            },
            {
                "Sid": "BucketLocation",
                "Effect": "Allow",
                "Action": "s3:GetBucketLocation",
                "Resource": bucket_arn,
            },
            {
                "Sid": "ListTeamUploads",
                "Effect": "Allow",
                "Action": "s3:ListBucketMultipartUploads",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
            },
            {
                "Sid": "TeamObjects",
                "Effect": "Allow",
                "Action": list(OBJECT_ACTIONS),
                "Resource": f"{bucket_arn}/{prefix}*",
            },
        ],
    }


def role_name_prefix(cluster: str, team: str) -> str:
    """IAM role names are at most 64 characters and a name prefix at most 38 (AWS appends 26): cluster and team
    shortened to fit; the role's tags and its policy name the team in full."""
    return f"{cluster[:14].rstrip('-')}-{team[:17].rstrip('-')}-ckpt-"


def team_policy_json(partition: str, team: str, bucket: str) -> str:
    return json.dumps(team_checkpoint_policy(partition, bucket, team))


def tls_only_policy(partition: str, bucket: str) -> dict[str, Any]:
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def lifecycle_rules(config: CheckpointsConfig) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    return [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="old-checkpoint-versions",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=config.noncurrent_version_days,
                newer_noncurrent_versions=config.newer_noncurrent_versions or None,
            ),
            # Delete markers left with no versions behind them, and uploads a preempted job never finished.
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7
            ),
        )
    ]


def s3_checkpoints(
    cluster: str,
    config: CheckpointsConfig,
    aws_info: AwsClusterInfo,
    teams: tuple[str, ...],
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> pulumi.Output[str]:
    """Registers the bucket and each team's role; returns the bucket's URI (`s3://<bucket>/`)."""
    on_aws = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=aws_info.aws_provider))
    # `pulumi destroy` never takes the checkpoints with it where the cluster is protected (prod).
    keep = pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
    bucket = aws.s3.Bucket(
        f"{cluster}-checkpoints",
        # S3 allows a 37-character prefix (Pulumi appends 26 characters).
        bucket_prefix=f"{cluster[:30].rstrip('-')}-ckpt-",
        force_destroy=not protect,
        opts=pulumi.ResourceOptions.merge(on_aws, keep),
    )
    # Not children of the bucket: a protected parent would protect them too.
    settings = on_aws
    access = aws.s3.BucketPublicAccessBlock(
        f"{cluster}-checkpoints",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=settings,
    )
    aws.s3.BucketOwnershipControls(
        f"{cluster}-checkpoints",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=settings,
    )
    versioning = aws.s3.BucketVersioning(
        f"{cluster}-checkpoints",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=settings,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{cluster}-checkpoints",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                # SSE-KMS with the account's AWS-managed key; the bucket key keeps KMS requests (and cost) low.
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms"
                ),
                bucket_key_enabled=True,
            )
        ],
        opts=settings,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{cluster}-checkpoints",
        bucket=bucket.id,
        rules=lifecycle_rules(config),
        # S3 applies lifecycle rules on a versioned bucket only once versioning is on.
        opts=pulumi.ResourceOptions.merge(settings, pulumi.ResourceOptions(depends_on=[versioning])),
    )
    aws.s3.BucketPolicy(
        f"{cluster}-checkpoints",
        bucket=bucket.id,
        policy=bucket.bucket.apply(lambda name: json.dumps(tls_only_policy(aws_info.partition, name))),
        # A bucket policy is refused while the public access block is being put in place.
        opts=pulumi.ResourceOptions.merge(settings, pulumi.ResourceOptions(depends_on=[access])),
    )
    for team in teams:
        role = aws.iam.Role(
            f"{cluster}-checkpoints-{team}",
            name_prefix=role_name_prefix(cluster, team),
            assume_role_policy=aws_iam.pod_identity_assume_role_policy(),
            tags={"ml-platform.io/team": team},
            opts=on_aws,
        )
        aws.iam.RolePolicy(
            f"{cluster}-checkpoints-{team}",
            role=role.name,
            policy=bucket.bucket.apply(partial(team_policy_json, aws_info.partition, team)),
            opts=pulumi.ResourceOptions.merge(on_aws, pulumi.ResourceOptions(parent=role)),
        )
        aws.eks.PodIdentityAssociation(
            f"{cluster}-checkpoints-{team}",
            cluster_name=aws_info.cluster_name,
            namespace=team,
            service_account=CHECKPOINT_SERVICE_ACCOUNT,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions.merge(on_aws, pulumi.ResourceOptions(parent=role)),
        )
    return pulumi.Output.concat("s3://", bucket.bucket, "/")
