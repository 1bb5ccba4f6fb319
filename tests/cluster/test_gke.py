"""GKE cluster layer: the pure builders, their keys against the pulumi-gcp SDK, and one mocked registration."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pulumi
import pulumi_gcp.compute as gcp_compute
import pulumi_gcp.compute._inputs as compute_inputs
import pulumi_gcp.container as gcp_container
import pulumi_gcp.container._inputs as container_inputs
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from components.cluster.gke import (
    CLOUD_PLATFORM_SCOPE,
    GkeCluster,
    cluster_args,
    gcp_labels,
    gke_kubeconfig,
    node_pool_args,
    node_sa_account_id,
    router_nat_args,
    subnetwork_args,
    system_pool_args,
)
from components.config.errors import ConfigError
from components.config.loading import load_platform_config
from components.config.platform import PlatformConfig
from components.gpu_pools import ResolvedGpuPool, platform_facts, resolve_gpu_pools
from conftest import with_api_path

SA = "ml-nodes@ml-proj.iam.gserviceaccount.com"
TRAIN = {
    "name": "train",
    "gpu": "a100-40gb",
    "gpusPerNode": 1,
    "capacity": ["spot", "on-demand"],
    "minNodes": 1,
    "maxNodes": 6,
}
SERVE = {
    "name": "serve",
    "gpu": "h100-80gb",
    "gpusPerNode": 8,
    "capacity": "on-demand",
    "maxNodes": 2,
    "workload": "inference",
    "diskGiB": 500,
}
DEV = {
    "name": "dev",
    "gpu": "t4",
    "gpusPerNode": 1,
    "capacity": "spot",
    "maxNodes": 3,
    "workload": "dev",
    "sharing": {"mode": "time-slicing", "replicas": 4},
}
MIG = {
    "name": "mig",
    "gpu": "a100-80gb",
    "gpusPerNode": 1,
    "maxNodes": 2,
    "sharing": {"mode": "mig", "profile": "1g.10gb"},
}


def make_config(pools: list[dict[str, Any]], env: str = "prod", **cluster: Any) -> PlatformConfig:
    base: dict[str, Any] = {"cloud": "gcp", "name": "ml", "region": "us-central1", "gcp": {"project": "ml-proj"}}
    gcp = {**base["gcp"], **cluster.pop("gcp", {})}
    return load_platform_config(
        {
            "ml-platform:cluster": json.dumps(with_api_path({**base, **cluster, "gcp": gcp}, env)),
            "ml-platform:gpuPools": json.dumps(pools),
            "ml-platform:environment": env,
        }
    )


def resolved(config: PlatformConfig, name: str) -> ResolvedGpuPool:
    return next(p for p in resolve_gpu_pools(config) if p.name == name)


def pool_args(pool: dict[str, Any], capacity: str | None = None, **cluster: Any) -> dict[str, Any]:
    config = make_config([pool], **cluster)
    rp = resolved(config, pool["name"])
    group = next(g for g in rp.node_groups if g.capacity == (capacity or rp.capacity_types[0]))
    return node_pool_args(config.cluster, rp, group, SA)


# ---------------------------------------------------------------- node pools


@pytest.mark.parametrize(
    ("pool", "machine", "accelerator", "count"),
    [
        (TRAIN, "a2-highgpu-1g", "nvidia-tesla-a100", 1),
        (SERVE, "a3-highgpu-8g", "nvidia-h100-80gb", 8),
        (DEV, "n1-standard-8", "nvidia-tesla-t4", 1),
    ],
)
def test_machine_type_and_accelerator(pool: dict[str, Any], machine: str, accelerator: str, count: int) -> None:
    node = pool_args(pool)["node_config"]
    assert node["machine_type"] == machine
    [accel] = node["guest_accelerators"]
    assert (accel["type"], accel["count"]) == (accelerator, count)
    # GKE installs the driver; nothing else on the node pool has to.
    assert accel["gpu_driver_installation_config"] == {"gpu_driver_version": "LATEST"}


def test_full_gpu_pool_has_no_sharing() -> None:
    [accel] = pool_args(SERVE)["node_config"]["guest_accelerators"]
    assert "gpu_partition_size" not in accel and "gpu_sharing_config" not in accel


def test_mig_partition_size() -> None:
    [accel] = pool_args(MIG)["node_config"]["guest_accelerators"]
    assert accel["gpu_partition_size"] == "1g.10gb"
    assert "gpu_sharing_config" not in accel


def test_mig_profile_gke_does_not_offer_is_rejected_by_the_config() -> None:
    # 1g.10gb exists on an A100-40GB (NVIDIA's table) but GKE cannot partition into it: a config error.
    with pytest.raises(ConfigError, match=r"not a MIG profile of a100-40gb on gcp; allowed: 1g\.5gb, 2g\.10gb"):
        pool_args({**TRAIN, "sharing": {"mode": "mig", "profile": "1g.10gb"}})


def test_time_slicing_sharing_config() -> None:
    [accel] = pool_args(DEV)["node_config"]["guest_accelerators"]
    assert accel["gpu_sharing_config"] == {"gpu_sharing_strategy": "TIME_SHARING", "max_shared_clients_per_gpu": 4}
    assert "gpu_partition_size" not in accel


def test_spot_first_with_on_demand_fallback() -> None:
    spot, on_demand = pool_args(TRAIN, "spot"), pool_args(TRAIN, "on-demand")
    assert (spot["name"], on_demand["name"]) == ("train-spot", "train-on-demand")
    assert spot["node_config"]["spot"] is True and on_demand["node_config"]["spot"] is False
    # minNodes stays on the preferred (first) capacity type; the fallback scales from zero.
    assert spot["autoscaling"]["total_min_node_count"] == 1
    assert on_demand["autoscaling"]["total_min_node_count"] == 0
    assert spot["autoscaling"]["total_max_node_count"] == on_demand["autoscaling"]["total_max_node_count"] == 6
    assert "min_node_count" not in spot["autoscaling"]  # per-zone counts would multiply by the zone count
    assert spot["autoscaling"]["location_policy"] == "ANY"


def test_labels_and_no_gpu_taint() -> None:
    node = pool_args(TRAIN, "spot")["node_config"]
    assert node["labels"] == {
        "ml-platform.io/gpu": "a100-40gb",
        "ml-platform.io/pool": "train",
        "ml-platform.io/capacity": "spot",
        "ml-platform.io/workload": "training",
        "ml-platform.io/sharing": "none",
    }
    # GKE taints GPU nodes with nvidia.com/gpu=present:NoSchedule itself; a duplicate is rejected.
    assert "taints" not in node and "taint_config" not in node


def test_node_security_and_disk() -> None:
    args = pool_args(SERVE)
    node = args["node_config"]
    assert node["service_account"] == SA and node["oauth_scopes"] == [CLOUD_PLATFORM_SCOPE]
    assert node["workload_metadata_config"] == {"mode": "GKE_METADATA"}
    assert node["shielded_instance_config"] == {"enable_secure_boot": True, "enable_integrity_monitoring": True}
    assert (node["disk_size_gb"], node["disk_type"]) == (500, "pd-balanced")
    assert args["management"] == {"auto_repair": True, "auto_upgrade": True}
    assert "version" not in args and "node_count" not in args  # follows the cluster; the autoscaler owns size


def test_node_locations_follow_zones() -> None:
    assert "node_locations" not in pool_args(TRAIN)
    zones = ["us-central1-a", "us-central1-c"]
    assert pool_args(TRAIN, gcp={"zones": zones})["node_locations"] == zones


def test_system_pool() -> None:
    config = make_config([], systemNodes={"minNodes": 3, "maxNodes": 5, "diskGiB": 80})
    args = system_pool_args(config.cluster, SA)
    node = args["node_config"]
    assert node["machine_type"] == "e2-standard-4"
    assert node["labels"] == {"ml-platform.io/role": "system"}
    assert node["spot"] is False and node["service_account"] == SA
    assert node["workload_metadata_config"] == {"mode": "GKE_METADATA"}
    assert (node["disk_size_gb"], node["disk_type"]) == (80, "pd-balanced")
    assert args["autoscaling"] == {"total_min_node_count": 3, "total_max_node_count": 5}


# ---------------------------------------------------------------- cluster and network


def test_cluster_prod() -> None:
    args = cluster_args(make_config([TRAIN]), "net", "subnet", SA)
    assert args["location"] == "us-central1" and args["name"] == "ml"
    assert args["private_cluster_config"] == {
        "enable_private_nodes": True,
        "enable_private_endpoint": True,  # prod defaults to a private endpoint
        "master_ipv4_cidr_block": "172.16.0.32/28",
    }
    assert args["workload_identity_config"] == {"workload_pool": "ml-proj.svc.id.goog"}
    assert args["release_channel"] == {"channel": "REGULAR"}
    assert args["min_master_version"] == "1.35"
    assert args["deletion_protection"] is True
    assert args["remove_default_node_pool"] is True and args["initial_node_count"] == 1
    assert args["networking_mode"] == "VPC_NATIVE"
    assert args["ip_allocation_policy"] == {
        "cluster_secondary_range_name": "pods",
        "services_secondary_range_name": "services",
    }
    assert args["enable_shielded_nodes"] is True
    assert args["node_config"]["service_account"] == SA  # the transient default pool too
    assert args["addons_config"]["gce_persistent_disk_csi_driver_config"] == {"enabled": True}
    assert args["logging_config"]["enable_components"] == ["SYSTEM_COMPONENTS", "WORKLOADS"]
    # GPU metrics: GKE's managed DCGM collection by default (GKE's own default for new clusters since 1.32).
    assert args["monitoring_config"] == {
        "enable_components": ["SYSTEM_COMPONENTS", "DCGM"],
        "managed_prometheus": {"enabled": True},
    }
    # prod keeps headroom; dev packs nodes and removes idle ones sooner (test_cluster_dev_and_options)
    assert args["cluster_autoscaling"] == {"autoscaling_profile": "BALANCED"}
    # A private endpoint requires authorized networks: the cluster's own network and the declared path.
    assert args["master_authorized_networks_config"] == {
        "cidr_blocks": [
            {"cidr_block": "10.0.0.0/16", "display_name": "authorized-0"},
            {"cidr_block": "10.200.0.0/16", "display_name": "authorized-1"},
        ],
    }


def test_private_endpoint_admits_only_private_ranges() -> None:
    config = make_config([], apiAccess={"cidrs": ["10.8.0.0/16"]})
    blocks = cluster_args(config, "net", "sub", SA)["master_authorized_networks_config"]["cidr_blocks"]
    assert [b["cidr_block"] for b in blocks] == ["10.0.0.0/16", "10.8.0.0/16"]
    with pytest.raises(ConfigError, match=r"apiAccess.cidrs\[0\]: got \"203.0.113.0/24\"; a private endpoint"):
        make_config([], apiAccess={"cidrs": ["203.0.113.0/24"]})
    with pytest.raises(ConfigError, match=r"publicAccessCidrs: .*only used with a public endpoint"):
        make_config([], publicAccessCidrs=["10.8.0.0/16"])


def test_a_public_endpoint_admits_its_cidrs_and_the_private_path() -> None:
    config = make_config([], env="dev", publicAccessCidrs=["203.0.113.0/24"], apiAccess={"cidrs": ["10.8.0.0/16"]})
    blocks = cluster_args(config, "net", "sub", SA)["master_authorized_networks_config"]["cidr_blocks"]
    assert [b["cidr_block"] for b in blocks] == ["203.0.113.0/24", "10.8.0.0/16"]


def test_public_endpoint_open_to_all_needs_no_authorized_networks() -> None:
    args = cluster_args(make_config([], env="dev", publicAccessCidrs=["0.0.0.0/0"]), "net", "sub", SA)
    assert args["private_cluster_config"]["enable_private_endpoint"] is False
    assert "master_authorized_networks_config" not in args


def test_cluster_dev_and_options() -> None:
    config = make_config(
        [],
        env="dev",
        gcp={"releaseChannel": "RAPID"},
        publicAccessCidrs=["10.1.0.0/16"],
        vpc={"existing": {"network": "shared", "subnetwork": "gke", "podsRangeName": "p", "servicesRangeName": "s"}},
    )
    args = cluster_args(config, "shared", "gke", SA)
    assert args["cluster_autoscaling"] == {"autoscaling_profile": "OPTIMIZE_UTILIZATION"}
    assert args["deletion_protection"] is False
    assert args["private_cluster_config"]["enable_private_endpoint"] is False
    assert args["private_cluster_config"]["enable_private_nodes"] is True
    assert args["release_channel"] == {"channel": "RAPID"}
    assert args["master_authorized_networks_config"] == {
        "cidr_blocks": [{"cidr_block": "10.1.0.0/16", "display_name": "authorized-0"}],
    }
    assert args["ip_allocation_policy"] == {"cluster_secondary_range_name": "p", "services_secondary_range_name": "s"}


def test_subnetwork_and_nat() -> None:
    cluster = make_config([]).cluster
    sub = subnetwork_args(cluster)
    assert sub["ip_cidr_range"] == "10.0.0.0/16" and sub["private_ip_google_access"] is True
    assert sub["secondary_ip_ranges"] == [
        {"range_name": "pods", "ip_cidr_range": "10.64.0.0/14"},
        {"range_name": "services", "ip_cidr_range": "10.68.0.0/20"},
    ]
    assert router_nat_args(cluster)["source_subnetwork_ip_ranges_to_nat"] == "ALL_SUBNETWORKS_ALL_IP_RANGES"


def test_labels_and_account_id() -> None:
    config = make_config([], tags={"cost-center": "ml-research", "team": "vision_group"})
    labels = gcp_labels(platform_facts(config).cost_tags)
    assert labels["cost-center"] == "ml-research" and labels["team"] == "vision_group"
    assert labels["managed-by"] == "ml-platform" and labels["ml-platform-environment"] == "prod"
    # Labels GCP would refuse are config errors before anything is created.
    with pytest.raises(ConfigError, match=r"cluster.tags.CostCenter: got \"CostCenter\"; a GCP label key"):
        make_config([], tags={"CostCenter": "x"})
    account_id = node_sa_account_id("a" * 23 + "-" + "b" * 16)
    assert re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", account_id) and "--" not in account_id
    # Two long names with the same prefix must not collide.
    assert node_sa_account_id("a" * 30 + "x") != node_sa_account_id("a" * 30 + "y")
    assert node_sa_account_id("ml-gke") == "ml-gke-nodes"


def test_kubeconfig_uses_gke_auth_plugin() -> None:
    kc = json.loads(gke_kubeconfig("ml", "10.0.0.2", "Q0E="))
    assert kc["clusters"][0]["cluster"] == {"server": "https://10.0.0.2", "certificate-authority-data": "Q0E="}
    exec_ = kc["users"][0]["user"]["exec"]
    assert exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_["command"] == "gke-gcloud-auth-plugin"
    assert exec_["provideClusterInfo"] is True and "installHint" in exec_
    assert kc["current-context"] == "ml"


# ---------------------------------------------------------------- keys against the SDK


def sdk_key_problems(value: dict[str, Any], args_cls: type, inputs: ModuleType, path: str = "") -> list[str]:
    """Every key of a plain-dict input must be a parameter of the SDK Args class it stands for, recursively.

    The SDK camelCases any key it is given, so under mocks a misspelt nested key travels silently.
    """
    params = inspect.signature(args_cls.__init__).parameters
    problems = []
    for key, item in value.items():
        if key not in params:
            problems.append(f"{path}{key}: not a parameter of {args_cls.__name__}")
            continue
        annotation = str(params[key].annotation)
        match = re.search(r"'(\w+Args)'", annotation)
        if match is None:
            if isinstance(item, dict) and "Mapping[str" not in annotation:
                problems.append(f"{path}{key}: a dict where {args_cls.__name__} takes no input type or map")
            continue  # scalars, lists of scalars and free-form maps (labels)
        nested = getattr(inputs, match.group(1))
        elements = enumerate(item) if isinstance(item, list) else [(None, item)]
        for i, element in elements:
            where = f"{path}{key}" + ("" if i is None else f"[{i}]") + "."
            if isinstance(element, dict):
                problems += sdk_key_problems(element, nested, inputs, where)
    return problems


def all_builder_outputs() -> list[tuple[dict[str, Any], type, ModuleType]]:
    gcp = {"zones": ["us-central1-a"]}
    config = make_config([TRAIN, SERVE, DEV, MIG], gcp=gcp, apiAccess={"cidrs": ["10.1.0.0/16"]})
    outputs: list[tuple[dict[str, Any], type, ModuleType]] = [
        (cluster_args(config, "net", "sub", SA), gcp_container.ClusterArgs, container_inputs),
        (system_pool_args(config.cluster, SA), gcp_container.NodePoolArgs, container_inputs),
        (subnetwork_args(config.cluster), gcp_compute.SubnetworkArgs, compute_inputs),
        (router_nat_args(config.cluster), gcp_compute.RouterNatArgs, compute_inputs),
    ]
    for pool in resolve_gpu_pools(config):
        for group in pool.node_groups:
            outputs.append(
                (node_pool_args(config.cluster, pool, group, SA), gcp_container.NodePoolArgs, container_inputs)
            )
    return outputs


def test_builder_keys_are_sdk_parameters() -> None:
    for args, cls, inputs in all_builder_outputs():
        assert sdk_key_problems(args, cls, inputs) == []


def test_key_check_catches_a_misspelt_nested_key() -> None:
    args = pool_args(TRAIN)
    args["node_config"]["guest_accelerators"][0]["gpu_driver_instalation_config"] = {}
    args["autoscaling"]["total_max_nodes"] = 3
    assert set(sdk_key_problems(args, gcp_container.NodePoolArgs, container_inputs)) == {
        "node_config.guest_accelerators[0].gpu_driver_instalation_config: not a parameter of "
        "NodePoolNodeConfigGuestAcceleratorArgs",
        "autoscaling.total_max_nodes: not a parameter of NodePoolAutoscalingArgs",
    }


# ---------------------------------------------------------------- under the mock runtime


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str


@dataclass
class Recorder(pulumi.runtime.Mocks):
    resources: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Registered(args.typ, args.name, args.inputs, args.provider))
        outputs = {
            **args.inputs,
            "endpoint": "10.0.0.2",
            "masterAuth": {"clusterCaCertificate": "Q0E="},
            "email": f"{args.name}@ml-proj.iam.gserviceaccount.com",
            "name": args.inputs.get("name", args.name),
            "selfLink": f"https://example.invalid/{args.name}",
        }
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        if args.token == "gcp:organizations/getProject:getProject":
            return {"id": "projects/ml-proj", "projectId": "ml-proj", "number": "123456789"}
        raise NotImplementedError(f"unexpected invoke {args.token}")

    def of(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]


class OptionsMonitor(MockMonitor):
    """Keeps the resource options the mocks never see (protect, ignoreChanges, parent)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.requests: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        self.requests[request.name] = request
        return super().RegisterResource(request)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> tuple[Recorder, OptionsMonitor]:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    mocks = Recorder()
    monitor = OptionsMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="ml-platform", stack="gke", preview=False, monitor=monitor)
    return mocks, monitor


def test_gke_cluster_registration(runtime: tuple[Recorder, OptionsMonitor]) -> None:
    mocks, monitor = runtime
    config = make_config([TRAIN, SERVE])
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> Any:
        gke = GkeCluster("gke", config)
        seen["handle"] = gke.handle
        return pulumi.Output.all(gke.cluster.name, gke.node_sa.email).apply(
            lambda values: seen.update(cluster_name=values[0], email=values[1])
        )

    run()
    counts: dict[str, int] = {}
    for r in mocks.resources:
        counts[r.typ] = counts.get(r.typ, 0) + 1
    assert counts == {
        "ml-platform:cluster:GkeCluster": 1,
        "pulumi:providers:gcp": 1,
        "gcp:compute/network:Network": 1,
        "gcp:compute/subnetwork:Subnetwork": 1,
        "gcp:compute/router:Router": 1,
        "gcp:compute/routerNat:RouterNat": 1,
        "gcp:serviceaccount/account:Account": 1,
        "gcp:projects/iAMMember:IAMMember": 5,
        "random:index/randomId:RandomId": 1,  # the key ring's name suffix (GCP never deletes key rings)
        "gcp:kms/keyRing:KeyRing": 1,
        "gcp:kms/cryptoKey:CryptoKey": 1,
        "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": 1,
        "gcp:container/cluster:Cluster": 1,
        "gcp:container/nodePool:NodePool": 4,  # system, train-spot, train-on-demand, serve-on-demand
        "pulumi:providers:kubernetes": 1,
    }
    # GKE hardening guide, "least privilege service account": write logs and metrics, read metadata, pull images.
    grants = mocks.of("gcp:projects/iAMMember:IAMMember")
    assert {g.inputs["role"] for g in grants} == {
        "roles/logging.logWriter",
        "roles/monitoring.metricWriter",
        "roles/monitoring.viewer",
        "roles/stackdriver.resourceMetadata.writer",
        "roles/artifactregistry.reader",
    }
    assert {g.inputs["member"] for g in grants} == {"serviceAccount:ml-nodes@ml-proj.iam.gserviceaccount.com"}
    pools = {r.name: r.inputs for r in mocks.of("gcp:container/nodePool:NodePool")}
    assert set(pools) == {"ml-system", "ml-train-spot", "ml-train-on-demand", "ml-serve-on-demand"}
    # Nested plain dicts reach the engine under their schema (camelCase) names.
    accel = pools["ml-serve-on-demand"]["nodeConfig"]["guestAccelerators"][0]
    assert accel["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}
    assert pools["ml-train-spot"]["autoscaling"]["totalMinNodeCount"] == 1

    # Every cloud resource goes through the explicit provider, under the component.
    gcp_provider = next(r for r in mocks.resources if r.typ == "pulumi:providers:gcp")
    assert json.loads(gcp_provider.inputs["defaultLabels"])["ml-platform-cluster"] == "ml"
    for r in mocks.resources:
        if r.typ.startswith("gcp:"):
            assert r.provider.endswith("::gke-gcp-id"), r.name
            assert monitor.requests[r.name].parent.endswith("GkeCluster::gke"), r.name

    cluster = monitor.requests["ml"]
    assert cluster.protect is True and list(cluster.ignoreChanges) == ["nodeConfig"]
    # The Secrets key is protected with the cluster (losing it loses every Secret); nothing else is.
    assert {name for name, req in monitor.requests.items() if req.protect} == {"ml", "ml-secrets"}
    [cluster_inputs] = [r.inputs for r in mocks.of("gcp:container/cluster:Cluster")]
    assert cluster_inputs["databaseEncryption"] == {"state": "ENCRYPTED", "keyName": "ml-secrets-id"}
    [grant] = mocks.of("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    assert grant.inputs["member"] == "serviceAccount:service-123456789@container-engine-robot.iam.gserviceaccount.com"
    assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert monitor.requests["ml-train-spot"].deleteBeforeReplace is True

    k8s_provider = mocks.of("pulumi:providers:kubernetes")[0].inputs
    assert rpc.is_rpc_secret(k8s_provider["kubeconfig"])
    kubeconfig = json.loads(rpc.unwrap_rpc_secret(k8s_provider["kubeconfig"]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.0.0.2"
    assert k8s_provider["enableServerSideApply"] == "true"

    handle = seen["handle"]
    assert (handle.cloud, handle.region, handle.platform.environment) == ("gcp", "us-central1", "prod")
    assert [p.name for p in handle.gpu_pools] == ["train", "serve"] and len(handle.ready) == 4
    assert (seen["cluster_name"], seen["email"]) == ("ml", "ml-nodes@ml-proj.iam.gserviceaccount.com")


def test_existing_network_dev(runtime: tuple[Recorder, OptionsMonitor]) -> None:
    mocks, monitor = runtime
    existing = {"network": "shared", "subnetwork": "gke", "podsRangeName": "p", "servicesRangeName": "s"}
    config = make_config([DEV], env="dev", vpc={"existing": existing})

    @pulumi.runtime.test
    def run() -> None:
        GkeCluster("gke", config)

    run()
    assert not [r for r in mocks.resources if r.typ.startswith("gcp:compute/")]
    cluster = mocks.of("gcp:container/cluster:Cluster")[0].inputs
    assert (cluster["network"], cluster["subnetwork"]) == ("shared", "gke")
    assert cluster["deletionProtection"] is False and monitor.requests["ml"].protect is False
    assert {r.name for r in mocks.of("gcp:container/nodePool:NodePool")} == {"ml-system", "ml-dev-spot"}
