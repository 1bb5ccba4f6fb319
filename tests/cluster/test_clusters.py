"""The real `__main__.py` under the recording mocks, per stack file: the properties that matter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from conftest import STACKS, plan_of, plan_variant, stack_document
from tools.offline import PlanResult, Registration, read_stack_file, run_stack
from vocabulary.labels import GPU_TAINT_KEY, LABEL_CAPACITY, LABEL_GPU, LABEL_POOL

EKS = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
AWS_STACKS = [s for s in STACKS if stack_document(s)["config"]["ml-platform:cluster"]["cloud"] == "aws"]


def only(plan: PlanResult, typ: str) -> Registration:
    found = plan.of_type(typ)
    assert len(found) == 1, [r.name for r in found]
    return found[0]


def test_all_four_stacks_exist() -> None:
    assert {"dev", "prod", "gke", "local"} <= set(STACKS)
    assert set(AWS_STACKS) >= {"dev", "prod"}


def test_every_stack_registers_its_cluster_component(stack: str) -> None:
    plan = plan_of(stack)
    components = {r.type for r in plan.registrations if r.type.startswith("ml-platform:cluster:")}
    expected = {"aws": "EksCluster", "gcp": "GkeCluster", "existing": "ExistingCluster"}
    cloud = json.loads(plan.stack.config["ml-platform:cluster"])["cloud"]
    assert f"ml-platform:cluster:{expected[cloud]}" in components


def test_kubernetes_objects_use_the_cluster_provider_and_kubeconfigs_are_secret(stack: str) -> None:
    plan = plan_of(stack)
    providers = plan.of_type("pulumi:providers:kubernetes")
    assert len(providers) == 1
    kubeconfig = providers[0].inputs.get("kubeconfig")
    if kubeconfig is not None:
        assert rpc.is_rpc_secret(kubeconfig), "a kubeconfig must be a Pulumi secret"
    k8s_objects = [r for r in plan.registrations if r.type.startswith("kubernetes:")]
    assert k8s_objects
    # Never the ambient default provider (it would read whatever $KUBECONFIG points at).
    assert all(r.provider.startswith(providers[0].urn) for r in k8s_objects)


def test_existing_cluster_kubeconfig_content_is_secret(tmp_path: Path) -> None:
    plan = plan_variant(
        tmp_path,
        "local",
        lambda c: c["ml-platform:cluster"].update(existing={"kubeconfig": "apiVersion: v1\nkind: Config\n"}),
    )
    provider = only(plan, "pulumi:providers:kubernetes")
    assert rpc.is_rpc_secret(provider.inputs["kubeconfig"])
    assert "kind: Config" in rpc.unwrap_rpc_secret(provider.inputs["kubeconfig"])


def test_local_stack_uses_its_context() -> None:
    provider = only(plan_of("local"), "pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "kind-ml-platform"


# ---------------------------------------------------------------- EKS


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_eks_secrets_are_envelope_encrypted_with_a_rotating_kms_key(stack: str) -> None:
    plan = plan_of(stack)
    cluster = only(plan, EKS)
    key = only(plan, "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    encryption = cluster.inputs["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"] == f"<{key.name}.arn>"


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_eks_cluster_basics(stack: str) -> None:
    plan = plan_of(stack)
    cluster = only(plan, EKS).inputs
    config = json.loads(plan.stack.config["ml-platform:cluster"])
    assert cluster["name"] == config["name"]
    assert cluster["version"] == config["kubernetesVersion"]
    assert cluster["accessConfig"]["authenticationMode"] == "API"
    # audit, api and authenticator by default (the other two stay available), into a log group with a retention
    # that exists before the cluster (EKS's own group never expires).
    assert set(cluster["enabledClusterLogTypes"]) == {"api", "audit", "authenticator"}
    logs = only(plan, "aws:cloudwatch/logGroup:LogGroup")
    assert logs.inputs == {"name": f"/aws/eks/{config['name']}/cluster", "retentionInDays": 90}
    assert logs.urn in only(plan, EKS).dependencies
    assert cluster["upgradePolicy"]["supportType"] == "STANDARD"
    assert cluster["bootstrapSelfManagedAddons"] is False
    addons = {r.inputs["addonName"] for r in plan.of_type("aws:eks/addon:Addon")}
    # the EFS CSI driver: the teams' shared volumes (storage.sharedFilesystem, efs by default on aws)
    assert addons == {
        "vpc-cni",
        "coredns",
        "kube-proxy",
        "aws-ebs-csi-driver",
        "eks-pod-identity-agent",
        "aws-efs-csi-driver",
        "metrics-server",  # KServe's HPAs
    }
    efs = next(r for r in plan.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "aws-efs-csi-driver")
    assert efs.inputs["podIdentityAssociations"][0]["serviceAccount"] == "efs-csi-controller-sa"
    ebs = next(r for r in plan.of_type("aws:eks/addon:Addon") if r.inputs["addonName"] == "aws-ebs-csi-driver")
    assert ebs.inputs["podIdentityAssociations"][0]["serviceAccount"] == "ebs-csi-controller-sa"


def test_endpoint_public_and_private_in_dev_private_only_in_prod() -> None:
    dev = only(plan_of("dev"), EKS).inputs["vpcConfig"]
    assert dev["endpointPublicAccess"] is True and dev["endpointPrivateAccess"] is True
    assert dev["publicAccessCidrs"] == ["0.0.0.0/0"]
    prod = only(plan_of("prod"), EKS).inputs["vpcConfig"]
    assert prod["endpointPublicAccess"] is False and prod["endpointPrivateAccess"] is True
    assert "publicAccessCidrs" not in prod
    # prod's declared path to its private endpoint: port 443 on the cluster security group from the runners' VPC
    [rule] = [
        r
        for r in plan_of("prod").of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["fromPort"] == 443
    ]
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (443, 443, "tcp")
    assert rule.inputs["cidrIpv4"] == "10.20.0.0/16"
    # on a security group of its own that only the control plane's network interfaces carry, not on the cluster
    # security group every node carries
    groups = {g.name: g for g in plan_of("prod").of_type("aws:ec2/securityGroup:SecurityGroup")}
    assert set(groups) == {"ml-prod-api-access", "ml-prod-efs"}  # the EFS mount targets have their own
    group = groups["ml-prod-api-access"]
    assert group.inputs.get("ingress") is None
    assert rule.inputs["securityGroupId"] == "<ml-prod-api-access.id>"
    assert prod["securityGroupIds"] == ["<ml-prod-api-access.id>"]


def test_endpoint_access_is_configurable(tmp_path: Path) -> None:
    def private(c: dict[str, Any]) -> None:
        c["ml-platform:cluster"].update(
            endpointAccess="private",
            publicAccessCidrs=None,
            apiAccess={
                "cidrs": ["10.9.0.0/16"],
                "securityGroupIds": ["sg-0123456789abcdef0"],
                "routeVia": "pcx-0123456789abcdef0",
            },
        )

    plan = plan_variant(tmp_path, "dev", private)
    # the return path: a route to the runners' network on every private route table, through the peering
    returns = [r.inputs for r in plan.of_type("aws:ec2/route:Route") if "vpcPeeringConnectionId" in r.inputs]
    assert len(returns) == 3 and {r["destinationCidrBlock"] for r in returns} == {"10.9.0.0/16"}
    assert {r["vpcPeeringConnectionId"] for r in returns} == {"pcx-0123456789abcdef0"}
    assert only(plan, EKS).inputs["vpcConfig"]["endpointPublicAccess"] is False
    # (the EFS mount targets' NFS rule admits the nodes, not a path to the API)
    rules = [
        r
        for r in plan.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["fromPort"] == 443
    ]
    sources = {(r.inputs.get("cidrIpv4"), r.inputs.get("referencedSecurityGroupId")) for r in rules}
    assert sources == {("10.9.0.0/16", None), (None, "sg-0123456789abcdef0")}
    # in-cluster objects wait for the path to the API
    ready = {r.urn for r in rules}
    helm = [r for r in plan.registrations if r.type == "kubernetes:helm.sh/v3:Release"]
    assert helm and all(ready <= set(r.dependencies) for r in helm)


def test_cluster_kms_key_and_kueue_are_protected_in_prod_only() -> None:
    assert only(plan_of("prod"), EKS).protect and only(plan_of("prod"), "aws:kms/key:Key").protect
    assert only(plan_of("prod"), EKS).inputs["deletionProtection"] is True
    assert not only(plan_of("dev"), EKS).protect and not only(plan_of("dev"), "aws:kms/key:Key").protect
    others = [r.name for r in plan_of("prod").registrations if r.protect and r.type not in (EKS, "aws:kms/key:Key")]
    # CRDs hold every object of their kind: Kueue's, Trainer's and KServe's (chart templates), KubeRay's and the
    # Training Operator's (applied from the pinned tags)
    assert sorted(others) == [
        "kserve-crd",
        "kubeflow-trainer",
        "kuberay-crds-ray.io_rayclusters",
        "kuberay-crds-ray.io_raycronjobs",
        "kuberay-crds-ray.io_rayjobs",
        "kuberay-crds-ray.io_rayservices",
        "kueue",
        "ml-prod-checkpoints",  # the checkpoint bucket and the shared file system: data
        "ml-prod-shared",
        "training-operator",
    ]
    assert not [r for r in plan_of("dev").registrations if r.protect]


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_every_node_has_imdsv2_with_hop_limit_1_and_an_encrypted_root(stack: str) -> None:
    plan = plan_of(stack)
    templates = {f"<{t.name}.id>": t for t in plan.of_type(LAUNCH_TEMPLATE)}
    groups = plan.of_type(NODE_GROUP)
    assert groups
    for group in groups:
        template = templates[group.inputs["launchTemplate"]["id"]].inputs
        assert template["metadataOptions"]["httpTokens"] == "required"
        assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
        ebs = template["blockDeviceMappings"][0]["ebs"]
        assert ebs["encrypted"] == "true" and ebs["volumeType"] == "gp3"
        assert "diskSize" not in group.inputs  # disk comes from the launch template


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_system_node_group_is_small_and_on_demand(stack: str) -> None:
    plan = plan_of(stack)
    system = plan.named(NODE_GROUP, "system").inputs
    assert system["capacityType"] == "ON_DEMAND"
    assert system["amiType"] == "AL2023_x86_64_STANDARD"
    assert system["labels"] == {"ml-platform.io/role": "system"}
    assert "taints" not in system
    assert 1 <= system["scalingConfig"]["minSize"] <= system["scalingConfig"]["maxSize"] <= 10


def test_karpenter_stacks_keep_only_min_nodes_in_managed_gpu_groups() -> None:
    assert [g.name for g in plan_of("dev").of_type(NODE_GROUP)] == ["system"]
    groups = {g.name: g.inputs for g in plan_of("prod").of_type(NODE_GROUP)}
    assert set(groups) == {"system", "serve-mig-baseline"}
    # Karpenter has no minimum: serve-mig's minNodes (1) is a fixed on-demand group with the pool's contract.
    baseline = groups["serve-mig-baseline"]
    assert baseline["scalingConfig"] == {"minSize": 1, "maxSize": 1, "desiredSize": 1}
    assert baseline["capacityType"] == "ON_DEMAND" and baseline["amiType"] == "AL2023_x86_64_NVIDIA"
    assert baseline["labels"][LABEL_POOL] == "serve-mig"
    assert baseline["taints"] == [{"key": GPU_TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"}]


def test_new_vpc_subnets_are_tagged_for_load_balancers_and_karpenter() -> None:
    subnets = plan_of("dev").of_type("aws:ec2/subnet:Subnet")
    private = [s.inputs for s in subnets if "private" in s.name]
    public = [s.inputs for s in subnets if "public" in s.name]
    assert len(private) == 3 and len(public) == 3
    assert len({s["availabilityZone"] for s in private}) == 3
    for s in private:
        assert s["tags"]["kubernetes.io/role/internal-elb"] == "1"
        assert s["tags"]["karpenter.sh/discovery"] == "ml-dev"
    for s in public:
        assert s["tags"]["kubernetes.io/role/elb"] == "1" and "karpenter.sh/discovery" not in s["tags"]
        assert s["mapPublicIpOnLaunch"] is False
    tag = only(plan_of("dev"), "aws:ec2/tag:Tag").inputs
    assert tag["key"] == "karpenter.sh/discovery" and tag["value"] == "ml-dev"


def test_one_nat_in_dev_one_per_az_in_prod() -> None:
    assert len(plan_of("dev").of_type("aws:ec2/natGateway:NatGateway")) == 1
    assert len(plan_of("prod").of_type("aws:ec2/natGateway:NatGateway")) == 3


def test_existing_vpc_creates_no_network(tmp_path: Path) -> None:
    existing = {"vpcId": "vpc-0abc", "privateSubnetIds": ["subnet-a", "subnet-b"], "publicSubnetIds": ["subnet-c"]}
    plan = plan_variant(tmp_path, "dev", lambda c: c["ml-platform:cluster"].update(vpc={"existing": existing}))
    assert plan.of_type("aws:ec2/vpc:Vpc") == [] and plan.of_type("aws:ec2/subnet:Subnet") == []
    assert only(plan, EKS).inputs["vpcConfig"]["subnetIds"] == ["subnet-a", "subnet-b"]


def test_access_entries_are_named_by_principal_and_scoped(tmp_path: Path) -> None:
    entries = [
        {"principalArn": "arn:aws:iam::111122223333:role/PlatformAdmins", "access": "cluster-admin"},
        {
            "principalArn": "arn:aws:iam::111122223333:role/ResearchViewers",
            "access": "view",
            "namespaces": ["research"],
        },
    ]
    plan = plan_variant(tmp_path, "dev", lambda c: c["ml-platform:cluster"].update(aws={"accessEntries": entries}))
    associations = {r.name: r.inputs for r in plan.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")}
    assert len(associations) == 2
    admin = next(v for k, v in associations.items() if k.startswith("ml-dev-access-platformadmins-"))
    assert admin["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert admin["accessScope"] == {"type": "cluster"}
    viewer = next(v for k, v in associations.items() if k.startswith("ml-dev-access-researchviewers-"))
    assert viewer["accessScope"] == {"type": "namespace", "namespaces": ["research"]}


def _all_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    return [value] if isinstance(value, str) else []


def test_arns_take_the_partition_from_the_environment() -> None:
    plan = run_stack(read_stack_file("prod"), partition="aws-us-gov")
    strings = [s for r in plan.registrations for s in _all_strings(r.inputs)]
    assert any(s.startswith("arn:aws-us-gov:iam::aws:policy/") for s in strings)
    assert not [s for s in strings if "arn:aws:" in s]


def test_iam_roles_trust_the_right_services() -> None:
    roles = {r.name: json.loads(r.inputs["assumeRolePolicy"]) for r in plan_of("dev").of_type("aws:iam/role:Role")}
    principals = {n: d["Statement"][0]["Principal"]["Service"] for n, d in roles.items()}
    assert principals == {
        "ml-dev-cluster": "eks.amazonaws.com",
        "ml-dev-node": "ec2.amazonaws.com",
        "ml-dev-ebs-csi": "pods.eks.amazonaws.com",
        "ml-dev-efs-csi": "pods.eks.amazonaws.com",
        "ml-dev-checkpoints-research": "pods.eks.amazonaws.com",
        "ml-dev-checkpoints-applied": "pods.eks.amazonaws.com",
        "karpenter-controller": "pods.eks.amazonaws.com",
        "karpenter-node": "ec2.amazonaws.com",
    }
    assert all(s.get("Sid") for d in roles.values() for s in d["Statement"])


def test_aws_resources_carry_cost_allocation_tags() -> None:
    provider = only(plan_of("dev"), "pulumi:providers:aws").inputs
    tags = json.loads(provider["defaultTags"])["tags"]
    assert tags["cost-center"] == "ml-platform-dev" and tags["ml-platform-cluster"] == "ml-dev"
    assert provider["region"] == "us-east-1"


# ---------------------------------------------------------------- cluster-autoscaler: GPU node groups


@pytest.fixture(scope="module")
def dev_with_cluster_autoscaler(tmp_path_factory: pytest.TempPathFactory) -> PlanResult:
    return plan_variant(
        tmp_path_factory.mktemp("ca"), "dev", lambda c: c.update({"ml-platform:autoscaler": "cluster-autoscaler"})
    )


def test_cluster_autoscaler_gets_a_gpu_node_group_per_pool_and_capacity(
    dev_with_cluster_autoscaler: PlanResult,
) -> None:
    groups = {g.name: g.inputs for g in dev_with_cluster_autoscaler.of_type(NODE_GROUP)}
    assert set(groups) == {
        "system",
        "notebooks-spot",
        "notebooks-on-demand",
        "train-a100-spot",
        "train-a100-on-demand",
    }
    spot, fallback = groups["train-a100-spot"], groups["train-a100-on-demand"]
    assert spot["capacityType"] == "SPOT" and fallback["capacityType"] == "ON_DEMAND"
    assert spot["instanceTypes"] == ["p4d.24xlarge"]
    assert spot["amiType"] == "AL2023_x86_64_NVIDIA"
    assert spot["scalingConfig"] == {"minSize": 0, "maxSize": 2, "desiredSize": 0}
    assert spot["taints"] == [{"key": GPU_TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"}]
    assert spot["labels"][LABEL_GPU] == "a100-40gb"
    assert spot["labels"][LABEL_POOL] == "train-a100"
    assert spot["labels"][LABEL_CAPACITY] == "spot" and fallback["labels"][LABEL_CAPACITY] == "on-demand"
    # One size per group: cluster-autoscaler assumes identical nodes within a group.
    assert groups["notebooks-spot"]["instanceTypes"] == ["g5.2xlarge"]


def test_min_nodes_applies_to_the_first_capacity_type_only(tmp_path: Path) -> None:
    def change(c: dict[str, Any]) -> None:
        c["ml-platform:autoscaler"] = "cluster-autoscaler"
        c["ml-platform:gpuPools"][1]["minNodes"] = 1

    groups = {g.name: g.inputs for g in plan_variant(tmp_path, "dev", change).of_type(NODE_GROUP)}
    assert groups["train-a100-spot"]["scalingConfig"]["minSize"] == 1
    assert groups["train-a100-on-demand"]["scalingConfig"]["minSize"] == 0


def test_node_groups_leave_desired_size_to_the_autoscaler(dev_with_cluster_autoscaler: PlanResult) -> None:
    groups = dev_with_cluster_autoscaler.of_type(NODE_GROUP)
    assert len(groups) == 5
    assert all(g.ignore_changes == ["scalingConfig.desiredSize"] for g in groups)


def test_gpu_node_groups_have_imdsv2_hop_1_and_cost_tags_on_instances(dev_with_cluster_autoscaler: PlanResult) -> None:
    templates = {f"<{t.name}.id>": t.inputs for t in dev_with_cluster_autoscaler.of_type(LAUNCH_TEMPLATE)}
    for group in dev_with_cluster_autoscaler.of_type(NODE_GROUP):
        template = templates[group.inputs["launchTemplate"]["id"]]
        assert template["metadataOptions"]["httpTokens"] == "required"
        assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert template["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
        specs = {t["resourceType"]: t["tags"] for t in template["tagSpecifications"]}
        assert set(specs) == {"instance", "volume", "network-interface"}
        # Provider default_tags do not reach ASG-launched instances: the launch template carries them.
        for tags in specs.values():
            assert tags["cost-center"] == "ml-platform-dev" and tags["ml-platform-cluster"] == "ml-dev"
    gpu_template = templates[
        next(g for g in dev_with_cluster_autoscaler.of_type(NODE_GROUP) if g.name == "train-a100-spot").inputs[
            "launchTemplate"
        ]["id"]
    ]
    assert gpu_template["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 500


def test_node_group_names_fit_eks_limit_with_the_longest_names(tmp_path: Path) -> None:
    def change(c: dict[str, Any]) -> None:
        c["ml-platform:autoscaler"] = "cluster-autoscaler"
        c["ml-platform:cluster"]["name"] = "c" * 40
        c["ml-platform:gpuPools"][0]["name"] = "p" * 30
        c["ml-platform:teams"] = []

    plan = plan_variant(tmp_path, "dev", change)
    assert plan.error is None, plan.error
    groups = plan.of_type(NODE_GROUP)
    # Pulumi auto-names node groups as <logical name>-<7 random characters>; EKS allows 63.
    assert max(len(g.name) + 8 for g in groups) <= 63


def test_availability_zones_exclude_local_zones_and_azs_eks_cannot_use() -> None:
    [(_, args)] = [i for i in plan_of("dev").invokes if i[0] == "aws:index/getAvailabilityZones:getAvailabilityZones"]
    assert args["state"] == "available"
    assert args["filters"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]
    assert "use1-az3" in args["excludeZoneIds"]


def test_addon_versions_can_be_pinned(tmp_path: Path) -> None:
    pins = {"vpc-cni": "v1.20.1-eksbuild.1", "coredns": "v1.12.1-eksbuild.2"}
    plan = plan_variant(tmp_path, "dev", lambda c: c["ml-platform:cluster"].update(aws={"addonVersions": pins}))
    versions = {r.inputs["addonName"]: r.inputs["addonVersion"] for r in plan.of_type("aws:eks/addon:Addon")}
    assert versions["vpc-cni"] == "v1.20.1-eksbuild.1" and versions["coredns"] == "v1.12.1-eksbuild.2"
    assert versions["kube-proxy"].startswith("<default kube-proxy version for 1.35")
    asked = {a["addonName"] for t, a in plan.invokes if t == "aws:eks/getAddonVersion:getAddonVersion"}
    assert asked == {
        "kube-proxy",
        "eks-pod-identity-agent",
        "aws-ebs-csi-driver",
        "aws-efs-csi-driver",
        "metrics-server",
    }


def test_every_addon_eks_installs_can_be_pinned_and_no_other(tmp_path: Path) -> None:
    installed = {r.inputs["addonName"] for r in plan_of("prod").of_type("aws:eks/addon:Addon")}
    assert installed == {
        "vpc-cni",
        "kube-proxy",
        "eks-pod-identity-agent",
        "coredns",
        "aws-ebs-csi-driver",
        "aws-efs-csi-driver",
        "metrics-server",
    }
    pins = {addon: "v1.0.0-eksbuild.1" for addon in installed}
    plan = plan_variant(tmp_path, "prod", lambda c: c["ml-platform:cluster"].update(aws={"addonVersions": pins}))
    assert {r.inputs["addonVersion"] for r in plan.of_type("aws:eks/addon:Addon")} == {"v1.0.0-eksbuild.1"}
    bad = plan_variant(
        tmp_path, "prod", lambda c: c["ml-platform:cluster"].update(aws={"addonVersions": {"cilium": "1"}})
    )
    assert bad.error is not None and "ml-platform:cluster.aws.addonVersions.cilium" in bad.error


def test_in_cluster_objects_wait_for_nodes_addons_and_access(tmp_path: Path) -> None:
    entries = [{"principalArn": "arn:aws:iam::111122223333:role/Deployer", "access": "cluster-admin"}]
    plan = plan_variant(
        tmp_path,
        "dev",
        lambda c: c["ml-platform:cluster"].update(aws={"accessEntries": entries, "bootstrapCreatorAdmin": False}),
    )
    namespace = plan.named("kubernetes:core/v1:Namespace", "ns-ml-platform-system")
    by_urn = {r.urn: r for r in plan.registrations}
    waits_for = {by_urn[d].type for d in namespace.dependencies}
    assert {NODE_GROUP, "aws:eks/addon:Addon", "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"} <= waits_for


# ---------------------------------------------------------------- bad input: nothing registered


def test_bad_stack_registers_nothing_and_names_every_key(tmp_path: Path) -> None:
    def change(c: dict[str, Any]) -> None:
        c["ml-platform:gpuPools"][1]["maxNodes"] = -3
        c["ml-platform:gpuPools"][0]["sharing"]["replicas"] = 1
        c["ml-platform:cluster"]["kubernetesVersion"] = "1.30"

    plan = plan_variant(tmp_path, "dev", change)
    assert plan.registrations == []
    assert plan.error is not None
    for path in ("gpuPools[1].maxNodes", "gpuPools[0].sharing.replicas", "cluster.kubernetesVersion"):
        assert f"ml-platform:{path}:" in plan.error
    assert "Traceback" not in plan.error


@pytest.mark.parametrize(("stack", "command"), [("dev", "aws"), ("gke", "gke-gcloud-auth-plugin")])
def test_cloud_kubeconfigs_authenticate_with_exec_plugins_not_tokens(stack: str, command: str) -> None:
    provider = only(plan_of(stack), "pulumi:providers:kubernetes")
    kubeconfig = json.loads(rpc.unwrap_rpc_secret(provider.inputs["kubeconfig"]))
    user = kubeconfig["users"][0]["user"]
    assert set(user) == {"exec"} and user["exec"]["command"] == command
    assert kubeconfig["clusters"][0]["cluster"]["server"].startswith("https://")
    if stack == "dev":
        assert user["exec"]["args"] == [
            "eks",
            "get-token",
            "--cluster-name",
            "ml-dev",
            "--region",
            "us-east-1",
            "--output",
            "json",
        ]


# ---------------------------------------------------------------- GKE (the real gke stack file)

NODE_POOL = "gcp:container/nodePool:NodePool"


def test_gke_stack_node_pools_per_pool_and_capacity() -> None:
    plan = plan_of("gke")
    pools = {r.name: r.inputs for r in plan.of_type(NODE_POOL)}
    assert set(pools) == {
        "ml-gke-system",
        "ml-gke-dev-l4-spot",
        "ml-gke-train-a100-spot",
        "ml-gke-train-a100-on-demand",
        "ml-gke-serve-mig-on-demand",
    }
    dev = pools["ml-gke-dev-l4-spot"]["nodeConfig"]
    assert dev["machineType"] == "g2-standard-8" and dev["spot"] is True
    [accelerator] = dev["guestAccelerators"]
    assert accelerator["type"] == "nvidia-l4" and accelerator["count"] == 1
    assert accelerator["gpuSharingConfig"] == {"gpuSharingStrategy": "TIME_SHARING", "maxSharedClientsPerGpu": 4}
    assert accelerator["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
    train, fallback = pools["ml-gke-train-a100-spot"], pools["ml-gke-train-a100-on-demand"]
    assert train["nodeConfig"]["machineType"] == "a2-highgpu-8g" and train["nodeConfig"]["spot"] is True
    assert fallback["nodeConfig"]["spot"] is False
    assert train["nodeConfig"]["labels"] == {
        LABEL_GPU: "a100-40gb",
        LABEL_POOL: "train-a100",
        LABEL_CAPACITY: "spot",
        "ml-platform.io/workload": "training",
        "ml-platform.io/sharing": "none",
    }
    assert "taints" not in train["nodeConfig"]  # GKE taints GPU nodes itself
    assert train["autoscaling"]["totalMinNodeCount"] == 0 and train["autoscaling"]["totalMaxNodeCount"] == 2
    assert train["nodeLocations"] == ["us-central1-a", "us-central1-b", "us-central1-c"]
    mig = pools["ml-gke-serve-mig-on-demand"]
    assert mig["nodeConfig"]["guestAccelerators"][0]["gpuPartitionSize"] == "1g.10gb"
    assert mig["nodeLocations"] == ["us-central1-a", "us-central1-c"]


def test_gke_cluster_is_private_with_workload_identity_and_gpu_pools_after_the_system_pool() -> None:
    plan = plan_of("gke")
    cluster = only(plan, "gcp:container/cluster:Cluster")
    inputs = cluster.inputs
    assert inputs["privateClusterConfig"]["enablePrivateNodes"] is True
    assert inputs["workloadIdentityConfig"] == {"workloadPool": "my-ml-project.svc.id.goog"}
    assert inputs["releaseChannel"] == {"channel": "REGULAR"} and inputs["minMasterVersion"] == "1.35"
    assert inputs["enableShieldedNodes"] is True
    assert not cluster.protect and inputs["deletionProtection"] is False  # the gke stack is a dev stack
    system = plan.named(NODE_POOL, "ml-gke-system")
    for pool in plan.of_type(NODE_POOL):
        assert pool.inputs["nodeConfig"]["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert pool.inputs["nodeConfig"]["serviceAccount"].endswith(".iam.gserviceaccount.com")
        if pool is not system:
            assert system.urn in pool.dependencies


def test_gke_secrets_are_encrypted_with_a_rotating_cloud_kms_key() -> None:
    plan = plan_of("gke")
    cluster = only(plan, "gcp:container/cluster:Cluster")
    key = only(plan, "gcp:kms/cryptoKey:CryptoKey")
    assert cluster.inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": f"<{key.name}.id>"}
    assert key.inputs["rotationPeriod"] == "7776000s"
    grant = only(plan, "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    assert grant.urn in cluster.dependencies  # the GKE service agent can use the key before the cluster needs it
    assert grant.inputs["member"].endswith("@container-engine-robot.iam.gserviceaccount.com")


VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_s3_traffic_skips_the_nat_through_the_free_gateway_endpoint(stack: str) -> None:
    plan = plan_of(stack)
    [s3] = plan.of_type(VPC_ENDPOINT)
    region = json.loads(plan.stack.config["ml-platform:cluster"])["region"]
    assert s3.inputs["serviceName"] == f"com.amazonaws.{region}.s3" and s3.inputs["vpcEndpointType"] == "Gateway"
    # on every private route table (the ones that route 0.0.0.0/0 to a NAT gateway), none of the public one
    nat_routes = [r for r in plan.of_type("aws:ec2/route:Route") if "natGatewayId" in r.inputs]
    private = {r.inputs["routeTableId"] for r in nat_routes}
    assert len(private) == 3 and sorted(s3.inputs["routeTableIds"]) == sorted(private)
    # routes are resources of their own: inline routes would remove a peering's return route added beside them
    assert all("routes" not in t.inputs for t in plan.of_type("aws:ec2/routeTable:RouteTable") if "private" in t.name)


def test_ecr_interface_endpoints_are_opt_in(tmp_path: Path) -> None:
    plan = plan_variant(tmp_path, "dev", lambda c: c["ml-platform:cluster"]["vpc"].update(endpoints={"ecr": True}))
    by_service = {r.inputs["serviceName"]: r for r in plan.of_type(VPC_ENDPOINT)}
    assert set(by_service) == {
        "com.amazonaws.us-east-1.s3",
        "com.amazonaws.us-east-1.ecr.api",
        "com.amazonaws.us-east-1.ecr.dkr",
    }
    [group] = [g for g in plan.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "ml-dev-endpoints"]
    [ingress] = group.inputs["ingress"]
    assert (ingress["protocol"], ingress["fromPort"], ingress["toPort"]) == ("tcp", 443, 443)
    assert ingress["cidrBlocks"] == ["10.40.0.0/16"]  # the VPC only
    for service in ("ecr.api", "ecr.dkr"):
        endpoint = by_service[f"com.amazonaws.us-east-1.{service}"].inputs
        assert endpoint["vpcEndpointType"] == "Interface" and endpoint["privateDnsEnabled"] is True
        assert len(endpoint["subnetIds"]) == 3
    off = plan_variant(tmp_path, "dev", lambda c: c["ml-platform:cluster"]["vpc"].update(endpoints={"s3": False}))
    assert off.of_type(VPC_ENDPOINT) == []


def test_log_retention_and_log_types_are_configurable(tmp_path: Path) -> None:
    every = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    plan = plan_variant(
        tmp_path, "dev", lambda c: c["ml-platform:cluster"].update(aws={"logRetentionDays": 365, "logTypes": every})
    )
    assert only(plan, "aws:cloudwatch/logGroup:LogGroup").inputs["retentionInDays"] == 365
    assert only(plan, EKS).inputs["enabledClusterLogTypes"] == every


CREATOR_CASES = [
    # (caller ARN as STS reports it, an access entry's principal, same identity?)
    ("arn:aws:sts::111122223333:assumed-role/deployer/gh-actions-42", "arn:aws:iam::111122223333:role/deployer", True),
    ("arn:aws:sts::111122223333:assumed-role/deployer/s", "arn:aws:iam::111122223333:role/ci/deployer", True),
    ("arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/alice", True),
    ("arn:aws:sts::111122223333:assumed-role/deployer/s", "arn:aws:iam::444455556666:role/deployer", False),
    ("arn:aws:sts::111122223333:assumed-role/deployer/s", "arn:aws:iam::111122223333:role/deployer-ro", False),
    ("arn:aws:iam::111122223333:user/deployer", "arn:aws:iam::111122223333:role/deployer", False),
    ("<caller-arn>", "arn:aws:iam::111122223333:role/deployer", False),  # the offline plan cannot know
]


@pytest.mark.parametrize(("caller", "principal", "same"), CREATOR_CASES)
def test_an_access_entry_for_the_deploying_identity_is_refused_before_anything_is_created(
    caller: str, principal: str, same: bool
) -> None:
    from components.cluster.eks_control_plane import creator_conflict_message, entries_naming_the_creator
    from components.config.cluster import AwsSettings

    settings = AwsSettings.model_validate({"accessEntries": [{"principalArn": principal, "access": "admin"}]})
    assert entries_naming_the_creator(settings, caller) == ([0] if same else [])
    # without bootstrapCreatorAdmin the entry is how the deployer gets in
    off = settings.model_copy(update={"bootstrap_creator_admin": False})
    assert entries_naming_the_creator(off, caller) == []
    if same:
        message = creator_conflict_message(settings, caller, [0])
        assert message.startswith("ml-platform:cluster.aws.accessEntries[0].principalArn: got")
        assert "ResourceInUseException" in message and "bootstrapCreatorAdmin: false" in message


DEPLOYER_ENTRIES = [{"principalArn": "arn:aws:iam::111122223333:role/deployer", "access": "cluster-admin"}]


def plan_as_deployer(tmp_path: Path, caller_arn: str, existing_clusters: list[str]) -> PlanResult:
    """The dev plan with DEPLOYER_ENTRIES, the mocks answering as STS and EKS would for this caller and account."""
    import tools.offline as offline

    original = offline.PlanMocks.call
    answers = {
        "aws:index/getCallerIdentity:getCallerIdentity": {
            "id": "111122223333",
            "accountId": "111122223333",
            "arn": caller_arn,
            "userId": "AROA",
        },
        "aws:eks/getClusters:getClusters": {"id": "us-east-1", "names": existing_clusters},
    }

    def call(self: Any, args: Any) -> Any:
        return answers[args.token] if args.token in answers else original(self, args)

    offline.PlanMocks.call = call  # type: ignore[method-assign]
    try:
        return plan_variant(
            tmp_path, "dev", lambda c: c["ml-platform:cluster"].update(aws={"accessEntries": DEPLOYER_ENTRIES})
        )
    finally:
        offline.PlanMocks.call = original  # type: ignore[method-assign]


def test_the_program_stops_with_the_message_when_the_deployer_is_listed(tmp_path: Path) -> None:
    plan = plan_as_deployer(tmp_path, "arn:aws:sts::111122223333:assumed-role/deployer/session", [])
    assert plan.error is not None and "accessEntries[0].principalArn" in plan.error
    assert not [r for r in plan.registrations if r.type.startswith("aws:") and r.type != "pulumi:providers:aws"]


def test_the_deployer_check_runs_only_when_the_cluster_is_created(tmp_path: Path) -> None:
    """bootstrapCreatorAdmin acts once; later the deployer listed in accessEntries is the normal hand-over."""
    # IAM names ignore case: Deployer is the role deployer
    plan = plan_as_deployer(tmp_path, "arn:aws:sts::111122223333:assumed-role/Deployer/session", ["ml-dev"])
    assert plan.error is None, plan.error
    eks = only(plan, EKS)
    # changing bootstrapCreatorAdmin later would replace the cluster: Pulumi never acts on it after creation
    assert "accessConfig.bootstrapClusterCreatorAdminPermissions" in eks.ignore_changes
