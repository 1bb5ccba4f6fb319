"""The checkpoint bucket on GCP: GCS with uniform access, versioning and public access prevention; a managed folder
per team whose IAM admits only the team's Kubernetes ServiceAccount (Workload Identity Federation for GKE, no
Google service account, no keys)."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from components.cluster.handle import GcpClusterInfo
from components.config.storage import CheckpointsConfig
from components.storage.team_objects import team_prefix
from vocabulary.storage import CHECKPOINT_SERVICE_ACCOUNT

# Read, write, list and delete objects (and their versions) in the managed folder.
TEAM_ROLE = "roles/storage.objectUser"


def workload_principal(project: str, project_number: str, namespace: str, service_account: str) -> str:
    """Workload Identity Federation for GKE: a Kubernetes ServiceAccount as an IAM principal."""
    pool = f"{project}.svc.id.goog"
    return (
        f"principal://iam.googleapis.com/projects/{project_number}/locations/global/workloadIdentityPools/{pool}"
        f"/subject/ns/{namespace}/sa/{service_account}"
    )


def lifecycle_rules(config: CheckpointsConfig) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    # A noncurrent version goes once it is `noncurrentVersionDays` old and `newerNoncurrentVersions` newer old
    # versions exist (GCS counts the live version among the newer ones: hence + 1), as S3's rule does.
    delete = gcp.storage.BucketLifecycleRuleActionArgs(type="Delete")
    return [
        gcp.storage.BucketLifecycleRuleArgs(
            action=delete,
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                days_since_noncurrent_time=config.noncurrent_version_days,
                num_newer_versions=config.newer_noncurrent_versions + 1,
                with_state="ARCHIVED",
            ),
        ),
        gcp.storage.BucketLifecycleRuleArgs(
            action=gcp.storage.BucketLifecycleRuleActionArgs(type="AbortIncompleteMultipartUpload"),
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=7),
        ),
    ]


def gcs_checkpoints(
    cluster: str,
    region: str,
    config: CheckpointsConfig,
    gcp_cluster: GcpClusterInfo,
    teams: tuple[str, ...],
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> pulumi.Output[str]:
    """Registers the bucket and each team's managed folder and grant; returns the bucket's URI (`gs://<bucket>/`)."""
    on_gcp = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=gcp_cluster.gcp_provider))
    keep = pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
    bucket = gcp.storage.Bucket(
        f"{cluster}-checkpoints",
        location=region,
        # Google encrypts every object at rest; managed folders need uniform bucket-level access.
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=gcp.storage.BucketVersioningArgs(enabled=True),
        lifecycle_rules=lifecycle_rules(config),
        force_destroy=not protect,
        opts=pulumi.ResourceOptions.merge(on_gcp, keep),
    )
    for team in teams:
        folder = gcp.storage.ManagedFolder(
            f"{cluster}-checkpoints-{team}",
            bucket=bucket.name,
            name=team_prefix(team),
            # The folder is only an IAM boundary: deleting it must not be blocked by the team's objects.
            force_destroy=True,
            # Not a child of the bucket: a protected parent would protect it, and a team could not be removed.
            opts=on_gcp,
        )
        gcp.storage.ManagedFolderIamMember(
            f"{cluster}-checkpoints-{team}",
            bucket=bucket.name,
            managed_folder=folder.name,
            role=TEAM_ROLE,
            member=workload_principal(
                gcp_cluster.project, gcp_cluster.project_number, team, CHECKPOINT_SERVICE_ACCOUNT
            ),
            opts=on_gcp,
        )
    return pulumi.Output.concat("gs://", bucket.name, "/")
