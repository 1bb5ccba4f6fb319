"""GKE cluster layer: network, node service account, private regional cluster, system and GPU node pools.

Pure builders (config in, plain keyword-argument dicts out) do every config lookup, so tests check them
without a runtime; `GkeCluster` only registers resources with them and yields a `ClusterHandle`.
Nested inputs are plain snake_case dicts: pulumi-gcp maps them onto its `*Args` input types.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster.handle import ClusterHandle, GcpClusterInfo
from components.cluster.kubeconfig import gke_kubeconfig
from components.config.cluster import ClusterConfig, GcpSettings
from components.config.platform import PlatformConfig
from components.gpu_pools import CapacityGroup, PlatformFacts, ResolvedGpuPool, platform_facts, resolve_gpu_pools
from vocabulary.labels import LABEL_ROLE

TYPE_TOKEN = "ml-platform:cluster:GkeCluster"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Least privilege for nodes: write logs/metrics, read Artifact Registry images. Access to anything else goes
# through Workload Identity, never the node identity (https://cloud.google.com/kubernetes-engine/docs/how-to/hardening-your-cluster).
NODE_SA_ROLES: tuple[str, ...] = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
)
PODS_RANGE = "pods"
SERVICES_RANGE = "services"
# pd-balanced is offered on every GPU machine series of the catalogue (a2, a3, g2, n1); pd-standard is not on
# a3/g2. Datasets and checkpoints live on other storage, so the boot disk only needs fast image pulls.
DISK_TYPE = "pd-balanced"
_LABEL_BAD = re.compile(r"[^a-z0-9_-]")


# ---------------------------------------------------------------- pure builders


def gcp_settings(cluster: ClusterConfig) -> GcpSettings:
    if cluster.gcp is None or cluster.region is None:  # the config rules require both on gcp
        raise ValueError(f"cluster {cluster.name}: cloud gcp needs cluster.gcp and cluster.region")
    return cluster.gcp


def gcp_label(text: str) -> str:
    """GCP labels allow only lowercase letters, digits, '_' and '-', at most 63 characters."""
    return _LABEL_BAD.sub("_", text.lower())[:63]


def gcp_labels(tags: dict[str, str]) -> dict[str, str]:
    """Cost tags as GCP labels (the platform's keys are GCP-safe already; the stack's own tags are made so)."""
    return {gcp_label(k): gcp_label(v) for k, v in tags.items()}


def node_sa_account_id(cluster_name: str) -> str:
    """Service account ids are 6-30 characters; cluster names may be 40. Long names keep a hash of the
    whole name, so two clusters that share a 24-character prefix still get distinct accounts."""
    if len(cluster_name) <= 24:
        return f"{cluster_name}-nodes"
    digest = hashlib.sha256(cluster_name.encode()).hexdigest()[:5]
    return f"{cluster_name[:18].rstrip('-')}-{digest}-nodes"


def existing_network(cluster: ClusterConfig) -> tuple[str, str, str, str] | None:
    """(network, subnetwork, pods range, services range) of an existing network; None to create one."""
    ex = cluster.vpc.existing
    if ex is None:
        return None
    if not (ex.network and ex.subnetwork and ex.pods_range_name and ex.services_range_name):
        # The config rules require all four; never fall back to creating a network behind the user's back.
        raise ValueError(f"cluster {cluster.name}: vpc.existing needs network, subnetwork and both range names")
    return ex.network, ex.subnetwork, ex.pods_range_name, ex.services_range_name


def subnetwork_args(cluster: ClusterConfig) -> dict[str, Any]:
    vpc = cluster.vpc
    return {
        "region": cluster.region,
        "ip_cidr_range": vpc.cidr,
        # Nodes have no public IPs: reach Google APIs (Artifact Registry, logging) without NAT.
        "private_ip_google_access": True,
        "secondary_ip_ranges": [
            {"range_name": PODS_RANGE, "ip_cidr_range": vpc.pods_cidr},
            {"range_name": SERVICES_RANGE, "ip_cidr_range": vpc.services_cidr},
        ],
    }


def router_nat_args(cluster: ClusterConfig) -> dict[str, Any]:
    # Private nodes pull public images (nvcr.io, Docker Hub, Helm repos) through Cloud NAT.
    return {
        "region": cluster.region,
        "nat_ip_allocate_option": "AUTO_ONLY",
        "source_subnetwork_ip_ranges_to_nat": "ALL_SUBNETWORKS_ALL_IP_RANGES",
        "log_config": {"enable": True, "filter": "ERRORS_ONLY"},
    }


def shielded_node_config(node_sa_email: pulumi.Input[str]) -> dict[str, Any]:
    """node_config keys every pool shares: own SA, Workload Identity metadata server, shielded boot."""
    return {
        "service_account": node_sa_email,
        # Access is governed by the SA's IAM roles; the broad scope only avoids a second, confusing gate.
        "oauth_scopes": [CLOUD_PLATFORM_SCOPE],
        # Pods get their own identity via Workload Identity, never the node's credentials.
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
    }


def cluster_args(
    config: PlatformConfig,
    network: pulumi.Input[str],
    subnetwork: pulumi.Input[str],
    node_sa_email: pulumi.Input[str],
    secrets_key: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    c = config.cluster
    g = gcp_settings(c)
    existing = existing_network(c)
    pods, services = existing[2:] if existing else (PODS_RANGE, SERVICES_RANGE)
    args: dict[str, Any] = {
        "name": c.name,
        "location": c.region,  # a region: the control plane is replicated across its zones
        "network": network,
        "subnetwork": subnetwork,
        "networking_mode": "VPC_NATIVE",
        "ip_allocation_policy": {"cluster_secondary_range_name": pods, "services_secondary_range_name": services},
        # Node pools are managed separately; the default pool only exists while the cluster is created.
        "remove_default_node_pool": True,
        "initial_node_count": 1,
        # ...and even that transient pool must not run as the default compute SA (ignore_changes keeps the
        # API's view of it from replacing the cluster).
        "node_config": shielded_node_config(node_sa_email),
        "private_cluster_config": {
            "enable_private_nodes": True,
            "enable_private_endpoint": c.endpoint_access == "private",
            "master_ipv4_cidr_block": g.master_ipv4_cidr,
        },
        "release_channel": {"channel": g.release_channel},
        "min_master_version": c.kubernetes_version,
        "workload_identity_config": {"workload_pool": f"{g.project}.svc.id.goog"},
        "enable_shielded_nodes": True,
        "deletion_protection": bool(c.protect),
        # Application-layer envelope encryption of Secrets with our Cloud KMS key (etcd is encrypted at rest anyway).
        **({"database_encryption": {"state": "ENCRYPTED", "key_name": secrets_key}} if secrets_key is not None else {}),
        # Dataplane V2 enforces NetworkPolicies (the teams' isolation); the legacy datapath does not by default.
        "datapath_provider": "ADVANCED_DATAPATH",
        "addons_config": {
            "gce_persistent_disk_csi_driver_config": {"enabled": True},
            # The teams' shared volumes (storage.sharedFilesystem.type filestore); off by default on GKE.
            "gcp_filestore_csi_driver_config": {"enabled": config.storage.shared_filesystem.type == "filestore"},
            "http_load_balancing": {"disabled": False},
        },
        # Pack nodes and remove idle ones sooner in dev; keep spare capacity in prod (scaling.gkeProfile).
        "cluster_autoscaling": {"autoscaling_profile": config.scaling.gke_profile},
        "logging_config": {"enable_components": ["SYSTEM_COMPONENTS", "WORKLOADS"]},
        "monitoring_config": monitoring_config(config),
    }
    args["master_authorized_networks_config"] = master_authorized_networks(c)
    if args["master_authorized_networks_config"] is None:
        del args["master_authorized_networks_config"]
    return args


def monitoring_config(config: PlatformConfig) -> dict[str, Any]:
    """GKE's own metrics; with `gpu.gkeMetrics: managed` (GKE's default for new clusters since 1.32) also DCGM's GPU
    metrics, which GKE collects into Google Cloud Managed Service for Prometheus."""
    if config.gpu.gke_metrics == "managed":
        return {"enable_components": ["SYSTEM_COMPONENTS", "DCGM"], "managed_prometheus": {"enabled": True}}
    return {"enable_components": ["SYSTEM_COMPONENTS"]}


def master_authorized_networks(c: ClusterConfig) -> dict[str, Any] | None:
    """Who may reach the control plane: `publicAccessCidrs` (a public endpoint) plus `apiAccess.cidrs` (the private
    path), the same keys as on EKS.

    A private endpoint requires authorized networks (the API rejects it otherwise): the cluster's own new network
    plus the private path. A public endpoint open to 0.0.0.0/0 (dev only) needs no block at all.
    """
    private = list(c.api_access.cidrs)
    if c.endpoint_access == "private":
        own = [c.vpc.cidr] if c.vpc.existing is None else []
        cidrs = list(dict.fromkeys(own + private))
    elif "0.0.0.0/0" in (c.public_access_cidrs or []):
        return None
    else:
        cidrs = list(dict.fromkeys([*(c.public_access_cidrs or []), *private]))
    return {"cidr_blocks": [{"cidr_block": cidr, "display_name": f"authorized-{i}"} for i, cidr in enumerate(cidrs)]}


def system_pool_args(cluster: ClusterConfig, node_sa_email: pulumi.Input[str]) -> dict[str, Any]:
    nodes = cluster.system_nodes
    return {
        "name": "system",
        "location": cluster.region,
        # Per zone: the controllers need a node before the autoscaler has anything to react to.
        "initial_node_count": 1,
        "autoscaling": {"total_min_node_count": nodes.min_nodes, "total_max_node_count": nodes.max_nodes},
        "management": {"auto_repair": True, "auto_upgrade": True},
        "node_config": {
            **shielded_node_config(node_sa_email),
            "machine_type": nodes.instance_type,
            "spot": False,
            "disk_size_gb": nodes.disk_gib,
            "disk_type": DISK_TYPE,
            "labels": {LABEL_ROLE: "system"},
        },
    }


def guest_accelerator(pool: ResolvedGpuPool) -> dict[str, Any]:
    shape, sharing = pool.shape, pool.config.sharing
    accel: dict[str, Any] = {
        "type": shape.accelerator_type,
        "count": shape.gpus_per_node,
        # GKE installs and upgrades the driver with the node image: no driver DaemonSet to keep in step.
        "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},
    }
    if sharing.mode == "mig" and sharing.profile:
        # The config rules admit only the partition sizes GKE creates (catalog.GKE_MIG_PARTITIONS).
        accel["gpu_partition_size"] = sharing.profile
    elif sharing.mode == "time-slicing" and sharing.replicas:
        sharing_config = {"gpu_sharing_strategy": "TIME_SHARING", "max_shared_clients_per_gpu": sharing.replicas}
        accel["gpu_sharing_config"] = sharing_config
    return accel


def node_pool_args(
    cluster: ClusterConfig, pool: ResolvedGpuPool, group: CapacityGroup, node_sa_email: pulumi.Input[str]
) -> dict[str, Any]:
    """Keyword arguments of `gcp.container.NodePool` for one (GPU pool, capacity type), minus `cluster`."""
    g = gcp_settings(cluster)
    cfg = pool.config
    # total_* counts are for the whole pool, not per zone. GPUs run out zone by zone: location policy ANY takes
    # capacity wherever it exists instead of balancing zones.
    scaling = {
        "total_min_node_count": group.min_nodes,
        "total_max_node_count": group.max_nodes,
        "location_policy": "ANY",
    }
    args: dict[str, Any] = {
        "name": group.name,
        "location": cluster.region,
        # No `version`: pools follow the cluster's release channel through auto-upgrade.
        "autoscaling": scaling,
        "management": {"auto_repair": True, "auto_upgrade": True},
        "node_config": {
            **shielded_node_config(node_sa_email),
            "machine_type": pool.shape.instance_type,
            "guest_accelerators": [guest_accelerator(pool)],
            "spot": group.capacity == "spot",
            "disk_size_gb": cfg.disk_gib,
            "disk_type": DISK_TYPE,
            # gVNIC: more network bandwidth for data loading and collectives (and A3 machine types need it).
            "gvnic": {"enabled": True},
            # Portable labels only. No taints: GKE adds nvidia.com/gpu=present:NoSchedule to GPU nodes
            # itself and rejects a second taint with the same key and effect.
            "labels": pool.node_labels(group.capacity, "gke"),
            # The pool's cost labels on its VMs (the cluster's labels reach them too; the pool's only from here).
            "resource_labels": gcp_labels(pool.cost_tags(group.capacity)),
        },
    }
    if zones := cfg.zones or g.zones:
        args["node_locations"] = list(zones)
    return args


# ---------------------------------------------------------------- the component


def network(
    cname: str, c: ClusterConfig, opts: pulumi.ResourceOptions
) -> tuple[pulumi.Input[str], pulumi.Input[str], pulumi.Input[str]]:
    """(network, subnetwork, network name): the existing ones, or a new VPC with a subnet and Cloud NAT."""
    if (existing := existing_network(c)) is not None:
        return existing[0], existing[1], existing[0]
    net = gcp.compute.Network(f"{cname}-vpc", auto_create_subnetworks=False, opts=opts)
    sub = gcp.compute.Subnetwork(f"{cname}-nodes", network=net.id, **subnetwork_args(c), opts=opts)
    router = gcp.compute.Router(f"{cname}-router", network=net.id, region=c.region, opts=opts)
    gcp.compute.RouterNat(f"{cname}-nat", router=router.name, **router_nat_args(c), opts=opts)
    return net.id, sub.id, net.name


def node_service_account(
    cname: str, project: str, opts: pulumi.ResourceOptions
) -> tuple[gcp.serviceaccount.Account, list[pulumi.Resource]]:
    """The nodes' own least-privilege service account and its role grants."""
    account = gcp.serviceaccount.Account(
        f"{cname}-nodes", account_id=node_sa_account_id(cname), display_name=f"GKE nodes of {cname}", opts=opts
    )
    member = account.email.apply(lambda email: f"serviceAccount:{email}")
    grants: list[pulumi.Resource] = [
        gcp.projects.IAMMember(
            f"{cname}-nodes-{role.removeprefix('roles/').replace('.', '-')}",
            project=project,
            role=role,
            member=member,
            opts=opts,
        )
        for role in NODE_SA_ROLES
    ]
    return account, grants


def key_ring_name(cluster_name: str, suffix: str) -> str:
    return f"{cluster_name}-gke-{suffix}"


def project_number(project: str, opts: pulumi.ResourceOptions) -> str:
    return str(
        gcp.organizations.get_project(project_id=project, opts=pulumi.InvokeOptions(provider=opts.provider)).number
    )


def secrets_key(
    cname: str, region: str, project: str, protect: bool, opts: pulumi.ResourceOptions
) -> tuple[gcp.kms.CryptoKey, gcp.kms.CryptoKeyIAMMember]:
    """A rotating Cloud KMS key for Secrets, usable by the GKE service agent of the project.

    GCP never deletes key rings or keys (a destroy only removes key versions), so a fixed ring name makes the
    next `pulumi up` after a `destroy` fail with 409 already exists. The ring's name ends in a random suffix kept
    in state: stable for the life of the stack, new after a destroy. Adopting the old ring instead would need an
    import step per re-create and would reuse a key whose versions were destroyed.
    """
    number = project_number(project, opts)
    suffix = random.RandomId(
        f"{cname}-gke-keyring-suffix",
        byte_length=3,
        keepers={"project": project, "region": region, "cluster": cname},
        opts=pulumi.ResourceOptions(parent=opts.parent),
    )
    ring = gcp.kms.KeyRing(
        f"{cname}-gke", name=suffix.hex.apply(lambda h: key_ring_name(cname, h)), location=region, opts=opts
    )
    key = gcp.kms.CryptoKey(
        f"{cname}-secrets",
        name="secrets",
        key_ring=ring.id,
        rotation_period=f"{90 * 24 * 3600}s",
        # Losing the key loses every Secret: protected with the cluster.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
    )
    grant = gcp.kms.CryptoKeyIAMMember(
        f"{cname}-secrets-gke",
        crypto_key_id=key.id,
        role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
        member=f"serviceAccount:service-{number}@container-engine-robot.iam.gserviceaccount.com",
        opts=opts,
    )
    return key, grant


def node_pools(
    cname: str,
    c: ClusterConfig,
    cluster: gcp.container.Cluster,
    pools: tuple[ResolvedGpuPool, ...],
    node_sa_email: pulumi.Input[str],
    grants: list[pulumi.Resource],
    opts: pulumi.ResourceOptions,
) -> dict[str, gcp.container.NodePool]:
    """The system pool, then one pool per GPU pool and capacity type (`ResolvedGpuPool.node_groups`)."""
    # Explicit pool names: a replacement must delete first, or the new pool's name collides.
    # Nodes wait for their SA's roles so logging and image pulls work from the first boot.
    pool_opts = pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(delete_before_replace=True, depends_on=grants)
    )
    system = gcp.container.NodePool(
        f"{cname}-system", cluster=cluster.id, **system_pool_args(c, node_sa_email), opts=pool_opts
    )
    # GKE taints GPU nodes (nvidia.com/gpu=present:NoSchedule) only when a non-GPU pool exists, so the GPU
    # pools wait for the system pool: the default pool is already gone.
    gpu_opts = pulumi.ResourceOptions.merge(pool_opts, pulumi.ResourceOptions(depends_on=[system, *grants]))
    return {"system": system} | {
        group.name: gcp.container.NodePool(
            f"{cname}-{group.name}",
            cluster=cluster.id,
            **node_pool_args(c, pool, group, node_sa_email),
            opts=gpu_opts,
        )
        for pool in pools
        for group in pool.node_groups
    }


def kubernetes_provider(
    name: str, cluster: gcp.container.Cluster, opts: pulumi.ResourceOptions
) -> tuple[k8s.Provider, pulumi.Output[str]]:
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate).apply(
            lambda a: gke_kubeconfig(a[0], a[1], a[2])
        )
    )
    provider = k8s.Provider(f"{name}-k8s", kubeconfig=kubeconfig, enable_server_side_apply=True, opts=opts)
    return provider, kubeconfig


def gcp_provider(
    name: str, g: GcpSettings, region: str | None, facts: PlatformFacts, opts: pulumi.ResourceOptions
) -> gcp.Provider:
    return gcp.Provider(
        f"{name}-gcp", project=g.project, region=region, default_labels=gcp_labels(facts.cost_tags), opts=opts
    )


class GkeCluster(pulumi.ComponentResource):
    handle: ClusterHandle

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        c = config.cluster
        g, cname = gcp_settings(c), c.name
        facts, pools = platform_facts(config), resolve_gpu_pools(config)
        self.gcp_provider = gcp_provider(name, g, c.region, facts, pulumi.ResourceOptions(parent=self))
        on_gcp = pulumi.ResourceOptions(parent=self, provider=self.gcp_provider)

        net, subnet, network_name = network(cname, c, on_gcp)
        self.node_sa, grants = node_service_account(cname, g.project, on_gcp)
        key, key_grant = secrets_key(cname, c.region or "", g.project, bool(c.protect), on_gcp)
        cluster_opts = pulumi.ResourceOptions(
            protect=bool(c.protect), ignore_changes=["nodeConfig"], depends_on=[key_grant]
        )
        self.cluster = gcp.container.Cluster(
            cname,
            **cluster_args(config, net, subnet, self.node_sa.email, key.id),
            opts=pulumi.ResourceOptions.merge(on_gcp, cluster_opts),
        )
        self.node_pools = node_pools(cname, c, self.cluster, pools, self.node_sa.email, grants, on_gcp)
        self.provider, self.kubeconfig = kubernetes_provider(name, self.cluster, pulumi.ResourceOptions(parent=self))

        self.handle = ClusterHandle(
            name=cname,
            region=c.region,
            provider=self.provider,
            platform=facts,
            gpu_pools=pools,
            # In-cluster objects wait for nodes, not just the control plane.
            ready=list(self.node_pools.values()),
            gcp=GcpClusterInfo(
                project=g.project,
                project_number=project_number(g.project, on_gcp),
                network=network_name,
                gcp_provider=self.gcp_provider,
            ),
        )
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "clusterId": self.cluster.id,
                "endpoint": self.cluster.endpoint,
                "nodeServiceAccount": self.node_sa.email,
                "nodePools": list(self.node_pools),
            }
        )
