"""Shared storage and the checkpoint bucket: the cloud resources, the StorageClass, each team's claim and identity,
and what one team's identity can reach (its prefix, never another team's), evaluated as IAM evaluates it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from components.config.errors import ConfigError
from components.config.loading import load_platform_config
from conftest import plan_of, plan_variant, raw_config, stack_document

POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def k8s_objects(plan: Any, kind: str) -> dict[tuple[str | None, str], dict[str, Any]]:
    return {
        (r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"]): r.inputs
        for r in plan.registrations
        if isinstance(r.inputs, dict) and r.inputs.get("kind") == kind
    }


def one(plan: Any, typ: str, name: str | None = None) -> Any:
    [found] = [r for r in plan.of_type(typ) if name is None or r.name == name]
    return found


# --- the S3 checkpoint bucket ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_s3_bucket_is_versioned_encrypted_private_and_tls_only(stack: str) -> None:
    plan = plan_of(stack)
    name = f"ml-{stack}-checkpoints"
    bucket = one(plan, "aws:s3/bucket:Bucket", name)
    versioning = one(plan, "aws:s3/bucketVersioning:BucketVersioning", name)
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    [rule] = one(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs[
        "rules"
    ]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms" and rule["bucketKeyEnabled"]
    block = one(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    ownership = one(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}  # no ACLs at all
    policy = json.loads(one(plan, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    [deny] = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    [lifecycle] = one(plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert lifecycle["status"] == "Enabled"
    assert lifecycle["noncurrentVersionExpiration"] == {"noncurrentDays": 30, "newerNoncurrentVersions": 3}
    assert lifecycle["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    # `pulumi destroy` never loses checkpoints in prod
    prod = stack == "prod"
    assert (bucket.protect, bucket.retain_on_delete, bucket.inputs["forceDestroy"]) == (prod, prod, not prod)
    # a team can still be removed: its role and settings are not children of the protected bucket
    assert not [r for r in plan.registrations if r.protect and r.name.startswith(f"{name}-")]


def test_bucket_names_fit_s3s_prefix_limit(tmp_path: Path) -> None:
    def long_name(c: dict[str, Any]) -> None:
        c["ml-platform:cluster"]["name"] = "a-very-long-cluster-name-for-ml-platform"  # 40, the maximum

    bucket = one(plan_variant(tmp_path, "dev", long_name), "aws:s3/bucket:Bucket")
    assert len(bucket.inputs["bucketPrefix"]) <= 37 and not bucket.inputs["bucketPrefix"].startswith("-")


# A policy evaluator for the statements the platform writes: Allow statements with Action, Resource and StringLike
# conditions, matched as IAM matches them (`*` any run of characters, `?` one; case-sensitive ARNs).
def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def allowed(policy: dict[str, Any], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    context = context or {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if not any(_like(a, action) for a in actions) or not any(_like(r, resource) for r in resources):
            continue
        conditions = statement.get("Condition", {})
        assert set(conditions) <= {"StringLike", "Null"}
        like = all(
            key in context and any(_like(p, context[key]) for p in patterns)
            for key, patterns in conditions.get("StringLike", {}).items()
        )
        # Null: "true" holds when the key is absent from the request, "false" when present
        null = all((key not in context) == (value == "true") for key, value in conditions.get("Null", {}).items())
        if like and null:
            return True
    return False


def team_policies(plan: Any, bucket: str) -> dict[str, dict[str, Any]]:
    from components.storage.s3_checkpoints import team_checkpoint_policy

    policies = {}
    for association in plan.of_type(POD_IDENTITY):
        if association.inputs["serviceAccount"] != "checkpoints":
            continue
        team = association.inputs["namespace"]
        # the association binds the team's own role
        assert association.inputs["roleArn"] == f"<ml-dev-checkpoints-{team}.arn>"
        [role_policy] = [
            r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == f"ml-dev-checkpoints-{team}"
        ]
        planned = json.loads(role_policy.inputs["policy"])
        assert planned == team_checkpoint_policy("aws", "<ml-dev-checkpoints.bucket>", team)
        policies[team] = team_checkpoint_policy("aws", bucket, team)
    return policies


def test_each_team_reaches_its_own_prefix_and_no_other_teams() -> None:
    bucket = "ckpt"
    policies = team_policies(plan_of("dev"), bucket)
    assert set(policies) == {"research", "applied"}
    objects, bucket_arn = f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}"
    for team, policy in policies.items():
        other = ({"research", "applied"} - {team}).pop()
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion"):
            assert allowed(policy, action, f"{objects}/teams/{team}/run-1/step-100.pt")
            assert not allowed(policy, action, f"{objects}/teams/{other}/run-1/step-100.pt")
            assert not allowed(policy, action, f"{objects}/other-prefix/x")
        assert allowed(policy, "s3:ListBucket", bucket_arn, {"s3:prefix": f"teams/{team}/run-1/"})
        for prefix in (f"teams/{other}/", f"teams/{other}/run-1/", "teams/", ""):
            assert not allowed(policy, "s3:ListBucket", bucket_arn, {"s3:prefix": prefix})
        # HeadBucket (pyarrow, s3fs) is a ListBucket without a prefix: allowed, documented (names, never contents)
        assert allowed(policy, "s3:ListBucket", bucket_arn)
        assert allowed(policy, "s3:GetBucketLocation", bucket_arn)
        assert not allowed(policy, "s3:DeleteBucket", bucket_arn)
        assert not allowed(policy, "s3:PutBucketPolicy", bucket_arn)


def test_a_team_named_like_the_start_of_another_cannot_reach_it() -> None:
    """`teams/a/` is not a prefix of `teams/ab/`: the trailing slash is part of every pattern."""
    from components.storage.s3_checkpoints import team_checkpoint_policy

    policy = team_checkpoint_policy("aws", "ckpt", "a")
    assert allowed(policy, "s3:GetObject", "arn:aws:s3:::ckpt/teams/a/x")
    assert not allowed(policy, "s3:GetObject", "arn:aws:s3:::ckpt/teams/ab/x")
    assert not allowed(policy, "s3:ListBucket", "arn:aws:s3:::ckpt", {"s3:prefix": "teams/ab/"})
    assert not allowed(policy, "s3:ListBucket", "arn:aws:s3:::ckpt", {"s3:prefix": "teams/a"})


def test_the_evaluator_itself_tells_allowed_from_denied() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/x/*"}]}
    bucket = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}
    absent = {"Statement": [{**bucket, "Condition": {"Null": {"s3:prefix": "true"}}}]}
    assert allowed(absent, "s3:ListBucket", "arn:aws:s3:::b")
    assert not allowed(absent, "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "x/"})
    assert allowed(policy, "s3:GetObject", "arn:aws:s3:::b/x/1") and not allowed(
        policy, "s3:GetObject", "arn:aws:s3:::b/y/1"
    )
    assert not allowed(policy, "s3:PutObject", "arn:aws:s3:::b/x/1")


def test_each_teams_identity_is_bound_to_its_own_namespace_and_service_account() -> None:
    plan = plan_of("dev")
    associations = [a.inputs for a in plan.of_type(POD_IDENTITY) if a.inputs["serviceAccount"] == "checkpoints"]
    assert {(a["namespace"], a["roleArn"]) for a in associations} == {
        ("research", "<ml-dev-checkpoints-research.arn>"),
        ("applied", "<ml-dev-checkpoints-applied.arn>"),
    }
    roles = {r.name: json.loads(r.inputs["assumeRolePolicy"]) for r in plan.of_type("aws:iam/role:Role")}
    for team in ("research", "applied"):
        [statement] = roles[f"ml-dev-checkpoints-{team}"]["Statement"]
        assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    # no static keys anywhere
    assert not plan.of_type("aws:iam/accessKey:AccessKey") and not plan.of_type("aws:iam/user:User")


# --- GCS ---------------------------------------------------------------------------------------------------------


def test_the_gcs_bucket_and_each_teams_managed_folder() -> None:
    plan = plan_of("gke")
    bucket = one(plan, "gcp:storage/bucket:Bucket").inputs
    assert bucket["uniformBucketLevelAccess"] is True and bucket["publicAccessPrevention"] == "enforced"
    assert bucket["versioning"] == {"enabled": True}
    rules = {r["action"]["type"]: r["condition"] for r in bucket["lifecycleRules"]}
    # noncurrent versions: 30 days and beyond the 3 newest (GCS counts the live version among the newer ones)
    assert rules["Delete"] == {"daysSinceNoncurrentTime": 30, "numNewerVersions": 4, "withState": "ARCHIVED"}
    assert rules["AbortIncompleteMultipartUpload"] == {"age": 7}
    [folder] = plan.of_type("gcp:storage/managedFolder:ManagedFolder")
    assert folder.inputs["name"] == "teams/research/"
    [member] = plan.of_type("gcp:storage/managedFolderIamMember:ManagedFolderIamMember")
    assert member.inputs["role"] == "roles/storage.objectUser"
    assert re.fullmatch(
        r"principal://iam\.googleapis\.com/projects/[^/]+/locations/global/workloadIdentityPools/"
        r"my-ml-project\.svc\.id\.goog/subject/ns/research/sa/checkpoints",
        member.inputs["member"],
    ), member.inputs["member"]
    # bound on the folder only: nothing on the bucket or the project for the team
    assert not plan.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")


# --- shared filesystems ------------------------------------------------------------------------------------------


def test_efs_file_system_mount_targets_driver_and_class() -> None:
    plan = plan_of("prod")
    fs = one(plan, "aws:efs/fileSystem:FileSystem")
    assert fs.inputs["encrypted"] is True and fs.inputs["throughputMode"] == "elastic"
    assert fs.protect and fs.retain_on_delete  # prod: the teams' data outlive the stack
    targets = plan.of_type("aws:efs/mountTarget:MountTarget")
    assert len(targets) == 3 and all(t.inputs["securityGroups"] == ["<ml-prod-efs.id>"] for t in targets)
    [nfs] = [
        r
        for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["fromPort"] == 2049
    ]
    assert nfs.inputs["referencedSecurityGroupId"] == "<ml-prod-eks.clusterSecurityGroupId>"  # the nodes
    addon = next(a for a in plan.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "aws-efs-csi-driver")
    [identity] = addon.inputs["podIdentityAssociations"]
    assert identity["serviceAccount"] == "efs-csi-controller-sa"
    attached = [r.inputs["policyArn"] for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")]
    assert "arn:aws:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy" in attached
    sc = k8s_objects(plan, "StorageClass")[(None, "team-shared")]
    assert sc["provisioner"] == "efs.csi.aws.com" and sc["reclaimPolicy"] == "Retain"
    assert sc["parameters"]["fileSystemId"] == "<ml-prod-shared.id>"
    assert sc["parameters"]["provisioningMode"] == "efs-ap"


def test_fsx_for_lustre_driver_security_group_and_class(tmp_path: Path) -> None:
    def fsx(c: dict[str, Any]) -> None:
        c["ml-platform:storage"] = {"sharedFilesystem": {"type": "fsx-lustre"}}

    plan = plan_variant(tmp_path, "dev", fsx)
    assert not plan.of_type("aws:efs/fileSystem:FileSystem")
    addons = {a.inputs["addonName"]: a.inputs for a in plan.of_type("aws:eks/addon:Addon")}
    assert "aws-efs-csi-driver" not in addons
    assert addons["aws-fsx-csi-driver"]["podIdentityAssociations"][0]["serviceAccount"] == "fsx-csi-controller-sa"
    rules = [r.inputs for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    lustre = {
        (r["fromPort"], r["toPort"])
        for r in rules
        if r.get("referencedSecurityGroupId") == "<ml-dev-eks.clusterSecurityGroupId>"
    }
    assert lustre == {(988, 988), (1018, 1023)}
    sc = k8s_objects(plan, "StorageClass")[(None, "team-shared")]
    assert sc["provisioner"] == "fsx.csi.aws.com"
    assert (
        sc["parameters"]["deploymentType"] == "PERSISTENT_2" and sc["parameters"]["perUnitStorageThroughput"] == "125"
    )
    claim = k8s_objects(plan, "PersistentVolumeClaim")[("research", "team-data")]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1200Gi"  # the smallest FSx for Lustre


def test_filestore_on_gke() -> None:
    plan = plan_of("gke")
    [cluster] = plan.of_type("gcp:container/cluster:Cluster")
    assert cluster.inputs["addonsConfig"]["gcpFilestoreCsiDriverConfig"] == {"enabled": True}
    sc = k8s_objects(plan, "StorageClass")[(None, "team-shared")]
    assert sc["provisioner"] == "filestore.csi.storage.gke.io" and sc["parameters"]["tier"] == "standard"


def test_an_existing_clusters_own_class(tmp_path: Path) -> None:
    def nfs(c: dict[str, Any]) -> None:
        c["ml-platform:storage"] = {"sharedFilesystem": {"type": "existing", "storageClassName": "nfs-client"}}

    plan = plan_variant(tmp_path, "local", nfs)
    assert (None, "team-shared") not in k8s_objects(plan, "StorageClass")
    claims = k8s_objects(plan, "PersistentVolumeClaim")
    assert claims and all(c["spec"]["storageClassName"] == "nfs-client" for c in claims.values())


# --- each team's namespace ---------------------------------------------------------------------------------------


def test_each_team_gets_its_volume_service_account_and_checkpoint_uri() -> None:
    plan = plan_of("dev")
    claims, accounts = k8s_objects(plan, "PersistentVolumeClaim"), k8s_objects(plan, "ServiceAccount")
    configs = k8s_objects(plan, "ConfigMap")
    for team in ("research", "applied"):
        claim = claims[(team, "team-data")]["spec"]
        assert claim["accessModes"] == ["ReadWriteMany"] and claim["storageClassName"] == "team-shared"
        assert (team, "checkpoints") in accounts
        assert configs[(team, "checkpoints")]["data"] == {
            "CHECKPOINT_URI": f"s3://<ml-dev-checkpoints.bucket>/teams/{team}/",
            "AWS_REGION": "us-east-1",
        }
    quota = k8s_objects(plan, "ResourceQuota")[("research", "team-quota")]["spec"]["hard"]
    # the team's own 1Ti, plus the platform's 100Gi claim, which is the only claim of its class
    assert quota["requests.storage"] == "1124Gi"
    assert quota["team-shared.storageclass.storage.k8s.io/persistentvolumeclaims"] == "1"


def test_without_storage_nothing_of_it(tmp_path: Path) -> None:
    def off(c: dict[str, Any]) -> None:
        c["ml-platform:storage"] = {"sharedFilesystem": {"type": "none"}, "checkpoints": {"enabled": False}}

    plan = plan_variant(tmp_path, "dev", off)
    assert not plan.of_type("aws:s3/bucket:Bucket") and not plan.of_type("aws:efs/fileSystem:FileSystem")
    assert not k8s_objects(plan, "PersistentVolumeClaim") and not k8s_objects(plan, "ServiceAccount")
    runtime = next(r.inputs for r in plan.registrations if r.type.endswith(":ClusterTrainingRuntime"))
    pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod and [v["name"] for v in pod["volumes"]] == ["dshm"]


@pytest.mark.parametrize(
    ("stack", "storage", "message"),
    [
        (
            "dev",
            {"sharedFilesystem": {"type": "filestore"}},
            'storage.sharedFilesystem.type: got "filestore"; on cloud aws: efs or fsx-lustre or none',
        ),
        ("gke", {"sharedFilesystem": {"type": "efs"}}, "on cloud gcp: filestore or none"),
        ("local", {"sharedFilesystem": {"type": "existing"}}, "storage.sharedFilesystem.storageClassName"),
        ("dev", {"sharedFilesystem": {"storageClassName": "gp3"}}, "unset: type efs makes its own StorageClass"),
        ("dev", {"sharedFilesystem": {"type": "fsx-lustre", "size": "1Ti"}}, "at least 1200Gi"),
        ("gke", {"sharedFilesystem": {"filestoreTier": "premium"}}, "at least 2560Gi"),
        ("local", {"checkpoints": {"enabled": True}}, "false on an existing cluster"),
        ("dev", {"checkpoints": {"noncurrentVersionDays": 0}}, "storage.checkpoints.noncurrentVersionDays"),
        ("dev", {"sharedFilesystem": {"fsx": {"perUnitStorageThroughput": 100}}}, "perUnitStorageThroughput"),
        # settings of a filesystem the stack does not use are not silently dropped
        (
            "dev",
            {"sharedFilesystem": {"fsx": {"deploymentType": "SCRATCH_2"}}},
            "unset: FSx settings apply to type fsx-lustre",
        ),
        ("dev", {"sharedFilesystem": {"filestoreTier": "premium"}}, "unset: it applies to type filestore, not efs"),
        ("dev", {"sharedFilesystem": {"type": "none", "size": "5Ti"}}, "unset: type none makes no volumes"),
        (
            "dev",
            {
                "sharedFilesystem": {
                    "type": "fsx-lustre",
                    "fsx": {"deploymentType": "SCRATCH_2", "perUnitStorageThroughput": 500},
                }
            },
            "deployment type SCRATCH_2 has no per-unit throughput",
        ),
        ("dev", {"sharedFilesystem": {"size": "1e30"}}, "too large for a Kubernetes quantity"),
        ("dev", {"sharedFilesystem": {"size": "9Ei"}}, "too large for a Kubernetes quantity"),
        ("local", {"sharedFilesystem": {"type": "existing", "storageClassName": "a..b"}}, "storageClassName"),
    ],
)
def test_bad_storage_config_names_the_key(stack: str, storage: dict[str, Any], message: str) -> None:
    document = stack_document(stack)["config"]
    document["ml-platform:storage"] = storage
    with pytest.raises(ConfigError) as error:
        load_platform_config(raw_config(document))
    assert message in str(error.value)


def test_role_names_fit_iams_limit_for_the_longest_cluster_and_team_names() -> None:
    from components.storage.s3_checkpoints import role_name_prefix

    longest = role_name_prefix("c" * 40, "t" * 50)
    assert len(longest) <= 38  # AWS appends 26 characters to a name prefix; role names are at most 64
    assert role_name_prefix("ml-dev", "research") == "ml-dev-research-ckpt-"
    assert not role_name_prefix("a" * 13 + "-b", "x").startswith("-") and "--" not in role_name_prefix(
        "a" * 13 + "-b", "x"
    )


def test_numbers_are_quantities_and_sizes_stay_under_two_to_the_63(tmp_path: Path) -> None:
    document = stack_document("dev")["config"]
    document["ml-platform:storage"] = {"sharedFilesystem": {"size": 107374182400}}  # unquoted: 100Gi in bytes
    assert load_platform_config(raw_config(document)).storage.shared_filesystem.size == "107374182400"
    document["ml-platform:storage"] = {"sharedFilesystem": {"size": "2Ei"}}
    document["ml-platform:teams"][0]["resources"] = {"cpu": "96", "memory": "768Gi", "storage": "7Ei"}
    with pytest.raises(ConfigError) as error:
        load_platform_config(raw_config(document))
    assert "ml-platform:teams[0].resources.storage" in str(error.value) and "under 2^63" in str(error.value)


@pytest.mark.parametrize(
    ("stack", "name", "cloud_rule"),
    [
        ("dev", "xn--ml", "S3 reserves"),
        ("dev", "sthree-ml", "S3 reserves"),
        ("gke", "google-ml", "Cloud Storage"),
        ("gke", "my-g00gle", "Cloud Storage"),
        ("gke", "goog", "Cloud Storage"),
    ],
)
def test_cluster_names_that_make_bucket_names_the_cloud_refuses(stack: str, name: str, cloud_rule: str) -> None:
    document = stack_document(stack)["config"]
    document["ml-platform:cluster"]["name"] = name
    with pytest.raises(ConfigError) as error:
        load_platform_config(raw_config(document))
    assert "ml-platform:cluster.name" in str(error.value) and cloud_rule in str(error.value)
    document["ml-platform:storage"] = {"checkpoints": {"enabled": False}}  # no bucket, no rule
    load_platform_config(raw_config(document))


def test_an_existing_class_is_not_capped_at_one_claim(tmp_path: Path) -> None:
    def nfs(c: dict[str, Any]) -> None:
        c["ml-platform:storage"] = {"sharedFilesystem": {"type": "existing", "storageClassName": "gp2"}}

    quotas = k8s_objects(plan_variant(tmp_path, "local", nfs), "ResourceQuota")
    hard = quotas[("research", "team-quota")]["spec"]["hard"]
    assert not [k for k in hard if "storageclass" in k]  # the cluster's class may be the one every claim uses
