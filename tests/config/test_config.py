"""The stack-file schema: every rule has a negative case that names its key path, value and what is allowed."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel

from components.config.cluster import SUPPORTED_KUBERNETES_VERSIONS
from components.config.errors import ConfigError
from components.config.loading import load_platform_config
from components.config.platform import STACK_KEYS, PlatformConfig
from conftest import STACKS, raw_config, stack_document, with_api_path
from tools.offline import PROJECT_DIR

MIG_A100 = {
    "name": "mig",
    "gpu": "a100-40gb",
    "gpusPerNode": 8,
    "maxNodes": 1,
    "sharing": {"mode": "mig", "profile": "1g.5gb"},
}
BASE: dict[str, dict[str, Any]] = {
    "aws": {
        "ml-platform:cluster": {"cloud": "aws", "name": "ml", "region": "us-east-1", "kubernetesVersion": "1.35"},
        "ml-platform:gpuPools": [{"name": "train", "gpu": "a100-40gb", "gpusPerNode": 8, "maxNodes": 2}],
    },
    "gcp": {
        "ml-platform:cluster": {
            "cloud": "gcp",
            "name": "ml",
            "region": "us-central1",
            "gcp": {"project": "ml-proj"},
        },
        "ml-platform:gpuPools": [{"name": "train", "gpu": "a100-40gb", "gpusPerNode": 1, "maxNodes": 2}],
    },
    "existing": {
        "ml-platform:cluster": {"cloud": "existing", "name": "ml", "existing": {"context": "kind-ml"}},
        "ml-platform:gpuPools": [{"name": "train", "gpu": "l4", "gpusPerNode": 1, "maxNodes": 1}],
    },
}


def load(document: dict[str, Any]) -> PlatformConfig:
    document = dict(document)
    if isinstance(cluster := document.get("ml-platform:cluster"), dict):
        document["ml-platform:cluster"] = with_api_path(cluster, str(document.get("ml-platform:environment", "dev")))
    return load_platform_config(raw_config(document))


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(document)
    return [str(p) for p in info.value.problems]


def pool(doc: dict[str, Any], **changes: Any) -> None:
    doc["ml-platform:gpuPools"][0].update(changes)


def cluster(doc: dict[str, Any], **changes: Any) -> None:
    doc["ml-platform:cluster"].update(changes)


Mutation = Callable[[dict[str, Any]], None]
# (cloud, mutation, key path that must be named, text that must say what is allowed)
NEGATIVE: dict[str, tuple[str, Mutation, str, str]] = {
    "min above max": ("aws", lambda d: pool(d, minNodes=3, maxNodes=2), "gpuPools[0].maxNodes", ">= minNodes (3)"),
    "negative max": ("aws", lambda d: pool(d, maxNodes=-1), "gpuPools[0].maxNodes", "greater than or equal to 0"),
    "negative min": ("aws", lambda d: pool(d, minNodes=-1), "gpuPools[0].minNodes", "greater than or equal to 0"),
    "a100 x4 on aws": ("aws", lambda d: pool(d, gpusPerNode=4), "gpuPools[0].gpusPerNode", "8 (p4d.24xlarge)"),
    "a100-80 x1 on aws": (
        "aws",
        lambda d: pool(d, gpu="a100-80gb", gpusPerNode=1),
        "gpuPools[0].gpusPerNode",
        "8 (p4de.24xlarge)",
    ),
    "h100 x2 on aws": (
        "aws",
        lambda d: pool(d, gpu="h100-80gb", gpusPerNode=2),
        "gpuPools[0].gpusPerNode",
        "1 (p5.4xlarge), 8 (p5.48xlarge)",
    ),
    "a100 x3 on gcp": ("gcp", lambda d: pool(d, gpusPerNode=3), "gpuPools[0].gpusPerNode", "1 (a2-highgpu-1g), 2"),
    "a10g on gcp": ("gcp", lambda d: pool(d, gpu="a10g"), "gpuPools[0].gpu", "not sold on gcp"),
    "unknown gpu": ("aws", lambda d: pool(d, gpu="v100"), "gpuPools[0].gpu", "unknown GPU; allowed: a100-40gb"),
    "unknown cloud": ("aws", lambda d: cluster(d, cloud="azure"), "cluster.cloud", "'aws', 'gcp' or 'existing'"),
    "mig on l4": (
        "aws",
        lambda d: pool(d, gpu="l4", gpusPerNode=1, sharing={"mode": "mig", "profile": "1g.5gb"}),
        "gpuPools[0].sharing.mode",
        "MIG needs a GPU that supports it",
    ),
    "mig without profile": (
        "aws",
        lambda d: pool(d, sharing={"mode": "mig"}),
        "gpuPools[0].sharing.profile",
        "allowed for a100-40gb: 1g.5gb",
    ),
    "a100-80 profile on a100-40": (
        "aws",
        lambda d: pool(d, sharing={"mode": "mig", "profile": "1g.10gb+me"}),
        "gpuPools[0].sharing.profile",
        "not a MIG profile of a100-40gb",
    ),
    "a100-40 profile on h100": (
        "aws",
        lambda d: pool(d, gpu="h100-80gb", sharing={"mode": "mig", "profile": "3g.20gb"}),
        "gpuPools[0].sharing.profile",
        "allowed: 1g.10gb, 1g.10gb+me, 1g.20gb",
    ),
    "profile without mig": (
        "aws",
        lambda d: pool(d, sharing={"mode": "none", "profile": "1g.5gb"}),
        "gpuPools[0].sharing.profile",
        "only used with mode: mig",
    ),
    "time-slicing replicas 1": (
        "aws",
        lambda d: pool(d, sharing={"mode": "time-slicing", "replicas": 1}),
        "gpuPools[0].sharing.replicas",
        "replicas >= 2",
    ),
    "time-slicing without replicas": (
        "aws",
        lambda d: pool(d, sharing={"mode": "time-slicing"}),
        "gpuPools[0].sharing.replicas",
        "replicas >= 2",
    ),
    "replicas without time-slicing": (
        "aws",
        lambda d: pool(d, sharing={"replicas": 4}),
        "gpuPools[0].sharing.replicas",
        "only used with mode",
    ),
    "unknown sharing mode": (
        "aws",
        lambda d: pool(d, sharing={"mode": "mps"}),
        "gpuPools[0].sharing.mode",
        "'none', 'time-slicing' or 'mig'",
    ),
    "on-demand before spot": (
        "aws",
        lambda d: pool(d, capacity=["on-demand", "spot"]),
        "gpuPools[0].capacity",
        "list capacity types in preference order, reserved, spot, on-demand",
    ),
    "reserved after spot": (
        "aws",
        lambda d: pool(d, capacity=["spot", "reserved"], reservations={"ids": ["cr-0123456789abcdef0"]}),
        "gpuPools[0].capacity",
        "preference order, reserved, spot, on-demand",
    ),
    "reserved without reservations": (
        "aws",
        lambda d: pool(d, capacity=["reserved", "on-demand"]),
        "gpuPools[0].capacity",
        "reserved needs the pool's reservations",
    ),
    "reservations without reserved": (
        "aws",
        lambda d: pool(d, reservations={"ids": ["cr-0123456789abcdef0"]}),
        "gpuPools[0].reservations",
        "add reserved to the pool's capacity",
    ),
    "reservations naming nothing": (
        "aws",
        lambda d: pool(d, capacity="reserved", reservations={}),
        "gpuPools[0].reservations",
        "name the reservations: ids [cr-...] or tags",
    ),
    "a reservation id that is not one": (
        "aws",
        lambda d: pool(d, capacity="reserved", reservations={"ids": ["odcr-1"]}),
        "gpuPools[0].reservations.ids[0]",
        "a capacity reservation id such as cr-0123456789abcdef0",
    ),
    "reservations on gcp": (
        "gcp",
        lambda d: pool(d, reservations={"ids": ["cr-0123456789abcdef0"]}),
        "gpuPools[0].reservations",
        "aws only",
    ),
    "reserved on an existing cluster": (
        "existing",
        lambda d: pool(d, capacity="reserved"),
        "gpuPools[0].capacity",
        "no spot or reserved capacity",
    ),
    "several reservations under cluster-autoscaler": (
        "aws",
        lambda d: (
            d.update({"ml-platform:autoscaler": "cluster-autoscaler"}),
            pool(d, capacity="reserved", reservations={"ids": ["cr-0123456789abcdef0", "cr-0123456789abcdef1"]}),
        ),
        "gpuPools[0].reservations",
        "exactly one id and no tags",
    ),
    "capacity blocks under cluster-autoscaler": (
        "aws",
        lambda d: (
            d.update({"ml-platform:autoscaler": "cluster-autoscaler"}),
            pool(d, capacity="reserved", reservations={"ids": ["cr-0123456789abcdef0"], "capacityBlock": True}),
        ),
        "gpuPools[0].reservations.capacityBlock",
        "Capacity Blocks need Karpenter",
    ),
    "an always-on node waiting for a capacity block": (
        "aws",
        lambda d: pool(
            d, capacity="reserved", minNodes=1, reservations={"ids": ["cr-0123456789abcdef0"], "capacityBlock": True}
        ),
        "gpuPools[0].minNodes",
        "must be 0 with Capacity Blocks first",
    ),
    "an always-on reserved node with tags only": (
        "aws",
        lambda d: pool(d, capacity="reserved", minNodes=1, reservations={"tags": {"team": "ml"}}),
        "gpuPools[0].reservations.ids",
        "the fixed node group's launch template targets it",
    ),
    "a reserved node group without the reservation's AZ": (
        "aws",
        lambda d: (
            d.update({"ml-platform:autoscaler": "cluster-autoscaler"}),
            pool(d, capacity="reserved", reservations={"ids": ["cr-0123456789abcdef0"]}),
        ),
        "gpuPools[0].reservations.availabilityZone",
        "a reservation is zonal",
    ),
    "a reservation AZ of another region": (
        "aws",
        lambda d: pool(
            d,
            capacity="reserved",
            minNodes=1,
            reservations={"ids": ["cr-0123456789abcdef0"], "availabilityZone": "us-west-2a"},
        ),
        "gpuPools[0].reservations.availabilityZone",
        "an AZ of us-east-1, e.g. us-east-1a",
    ),
    "a route target that is not one": (
        "aws",
        lambda d: cluster(d, apiAccess={"cidrs": ["10.9.0.0/16"], "routeVia": "igw-0123abcd"}),
        "cluster.apiAccess.routeVia",
        "a VPC peering connection (pcx-...) or transit gateway (tgw-...) id",
    ),
    "a route with nothing to route": (
        "aws",
        lambda d: cluster(d, apiAccess={"routeVia": "pcx-0123abcd"}),
        "cluster.apiAccess.routeVia",
        "routes apiAccess.cidrs",
    ),
    "routes in an existing vpc": (
        "aws",
        lambda d: cluster(
            d,
            apiAccess={"cidrs": ["10.9.0.0/16"], "routeVia": "tgw-0123abcd"},
            vpc={"existing": {"vpcId": "vpc-1", "privateSubnetIds": ["subnet-1", "subnet-2"]}},
        ),
        "cluster.apiAccess.routeVia",
        "an existing VPC's routes are yours",
    ),
    "reserved cpu capacity": (
        "aws",
        lambda d: d.update({"ml-platform:scaling": {"cpuPool": {"capacity": ["reserved"]}}}),
        "scaling.cpuPool.capacity[0]",
        "spot",
    ),
    "capacity twice": ("aws", lambda d: pool(d, capacity=["spot", "spot"]), "gpuPools[0].capacity", "once"),
    "unknown capacity": (
        "aws",
        lambda d: pool(d, capacity="preemptible"),
        "gpuPools[0].capacity[0]",
        "'reserved', 'spot' or 'on-demand'",
    ),
    "unknown workload": ("aws", lambda d: pool(d, workload="batch"), "gpuPools[0].workload", "'training', 'inference'"),
    "karpenter on gcp": (
        "gcp",
        lambda d: d.update({"ml-platform:autoscaler": "karpenter"}),
        "autoscaler",
        "only on AWS",
    ),
    "karpenter on existing": (
        "existing",
        lambda d: d.update({"ml-platform:autoscaler": "karpenter"}),
        "autoscaler",
        "allowed on existing: none",
    ),
    "unknown autoscaler": (
        "aws",
        lambda d: d.update({"ml-platform:autoscaler": "keda"}),
        "autoscaler",
        "'karpenter', 'cluster-autoscaler'",
    ),
    "version too old": (
        "aws",
        lambda d: cluster(d, kubernetesVersion="1.29"),
        "cluster.kubernetesVersion",
        "1.33, 1.34",
    ),
    "version too new": ("aws", lambda d: cluster(d, kubernetesVersion="1.37"), "cluster.kubernetesVersion", "1.36"),
    "version as number": ("aws", lambda d: cluster(d, kubernetesVersion=1.3), "cluster.kubernetesVersion", "quoted"),
    "unknown cluster key": ("aws", lambda d: cluster(d, regoin="x"), "cluster.regoin", "allowed keys: cloud, name"),
    "unknown pool key": ("aws", lambda d: pool(d, gpus=8), "gpuPools[0].gpus", "allowed keys: name, gpu, gpusPerNode"),
    "unknown stack key": ("aws", lambda d: d.update({"ml-platform:gpuPool": "[]"}), "ml-platform:gpuPool", "gpuPools"),
    "missing region": ("aws", lambda d: d["ml-platform:cluster"].pop("region"), "cluster.region", "required on aws"),
    "bad aws region": ("aws", lambda d: cluster(d, region="us-central1"), "cluster.region", "such as us-east-1"),
    "missing gcp project": ("gcp", lambda d: d["ml-platform:cluster"].pop("gcp"), "cluster.gcp", "project"),
    "gcp block on aws": (
        "aws",
        lambda d: cluster(d, gcp={"project": "ml-proj"}),
        "cluster.gcp",
        "only used when cloud is gcp",
    ),
    "existing without kubeconfig": (
        "existing",
        lambda d: cluster(d, existing={}),
        "cluster.existing",
        "kubeconfig (secret), kubeconfigPath or context",
    ),
    "bad cluster name": ("aws", lambda d: cluster(d, name="ML_Prod"), "cluster.name", "DNS label"),
    "duplicate pool names": (
        "aws",
        lambda d: d["ml-platform:gpuPools"].append(dict(d["ml-platform:gpuPools"][0])),
        "gpuPools[1].name",
        "unique",
    ),
    "bad cidr": ("aws", lambda d: cluster(d, vpc={"cidr": "10.0.0.0/33"}), "cluster.vpc.cidr", "CIDR"),
    "vpc too small": ("aws", lambda d: cluster(d, vpc={"cidr": "10.0.0.0/24"}), "cluster.vpc.cidr", "/16 to /20"),
    "existing vpc without subnets": (
        "aws",
        lambda d: cluster(d, vpc={"existing": {"vpcId": "vpc-1"}}),
        "cluster.vpc.existing.privateSubnetIds",
        "at least 2",
    ),
    "bad public cidr": (
        "aws",
        lambda d: cluster(d, publicAccessCidrs=["10.1.2.3/8"]),
        "cluster.publicAccessCidrs[0]",
        "CIDR",
    ),
    "team pool unknown": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "pools": ["nope"]}]}),
        "teams[0].pools[0]",
        "allowed: train",
    ),
    "team reserved name": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "kube-system"}]}),
        "teams[0].name",
        "reserved",
    ),
    "team named like the spare queue": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "ml-platform-spare"}]}),
        "teams[0].name",
        "ml-platform-spare the ClusterQueue of the GPUs no team is promised",
    ),
    "team named like the cohort": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "ml-platform"}]}),
        "teams[0].name",
        "ml-platform is the teams' Kueue cohort",
    ),
    "team named like Kubernetes' own": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "kube-ml"}]}),
        "teams[0].name",
        "kube- names are Kubernetes'",
    ),
    "every authenticated user as a team group": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "groups": ["ml", "system:authenticated"]}]}),
        "teams[0].groups",
        "Kubernetes' own groups are not a team (system:authenticated",
    ),
    "a pool listed twice for a team": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "pools": ["train", "train"]}]}),
        "teams[0].pools",
        "each pool once",
    ),
    "a team CPU quota no container fits in": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "resources": {"cpu": "0"}}]}),
        "teams[0].resources.cpu",
        "at least 250m, the request a container that sets none gets",
    ),
    "a team memory quota in bytes by mistake": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "resources": {"memory": "256"}}]}),
        "teams[0].resources.memory",
        "at least 512Mi",
    ),
    "two pools of one model for different teams": (
        "aws",
        lambda d: d.update(
            {
                "ml-platform:gpuPools": [
                    *d["ml-platform:gpuPools"],
                    {"name": "train-b", "gpu": "a100-40gb", "gpusPerNode": 8, "maxNodes": 1},
                ],
                "ml-platform:teams": [{"name": "a", "pools": ["train"]}, {"name": "b", "pools": ["train-b"]}],
            }
        ),
        "gpuPools[1].name",
        "pools train (teams: a) and train-b (teams: b) both offer a100-40gb GPUs",
    ),
    "whole GPUs and MIG slices under one name": (
        "aws",
        lambda d: d.update(
            {
                "ml-platform:gpuPools": [*d["ml-platform:gpuPools"], MIG_A100],
                "ml-platform:gpu": {"migStrategy": "single"},
            }
        ),
        "gpuPools[1].sharing",
        "pools train and mig both offer a100-40gb GPUs as nvidia.com/gpu (whole GPUs and MIG 1g.5gbx7)",
    ),
    "team named like the shared cost tag": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "shared"}]}),
        "teams[0].name",
        "the 'shared' cost tag marks pools several teams use",
    ),
    "stack tag that is a platform cost key": (
        "gcp",
        lambda d: cluster(d, tags={"ml-platform-pool": "infra"}),
        "cluster.tags.ml-platform-pool",
        "reserved for the platform's cost tags (managed-by, ml-platform-*)",
    ),
    "stack tag managed-by": (
        "aws",
        lambda d: cluster(d, tags={"managed-by": "terraform"}),
        "cluster.tags.managed-by",
        "reserved for the platform's cost tags",
    ),
    "mig pool under karpenter with a fallback": (
        "aws",
        lambda d: pool(
            d,
            gpu="h100-80gb",
            capacity=["spot", "on-demand"],
            minNodes=1,
            maxNodes=1,
            sharing={"mode": "mig", "profile": "1g.10gb"},
        ),
        "gpuPools[0].capacity",
        "one fixed group of one capacity type",
    ),
    "time-slicing on bottlerocket": (
        "aws",
        lambda d: (
            d.update({"ml-platform:scaling": {"amiFamily": "bottlerocket"}}),
            pool(d, sharing={"mode": "time-slicing", "replicas": 2}),
        ),
        "gpuPools[0].sharing.mode",
        "Bottlerocket GPU nodes run their own device plugin",
    ),
    "node overlay without karpenter": (
        "gcp",
        lambda d: d.update({"ml-platform:scaling": {"nodeOverlay": True}}),
        "scaling.nodeOverlay",
        "only used with Karpenter (aws)",
    ),
    "unknown custom mig layout": (
        "aws",
        lambda d: pool(d, sharing={"mode": "mig", "config": "nope"}, minNodes=1, maxNodes=1),
        "gpuPools[0].sharing.config",
        "none defined in ml-platform:gpu.migConfigs",
    ),
    "custom mig layout on gke": (
        "gcp",
        lambda d: pool(d, sharing={"mode": "mig", "config": "x"}),
        "gpuPools[0].sharing.config",
        "GKE partitions every GPU one way",
    ),
    "mig profile and config": (
        "existing",
        lambda d: (
            d.update({"ml-platform:gpu": {"migConfigs": {"two": {"3g.40gb": 2}}}}),
            pool(d, gpu="h100-80gb", sharing={"mode": "mig", "profile": "1g.10gb", "config": "two"}),
        ),
        "gpuPools[0].sharing.profile",
        "set profile or config, not both",
    ),
    "custom layout named like a built-in": (
        "existing",
        lambda d: d.update({"ml-platform:gpu": {"migConfigs": {"all-1g.10gb": {"1g.10gb": 7}}}}),
        'gpu.migConfigs["all-1g.10gb"]',
        "the all-* names are the MIG manager's built-in layouts",
    ),
    "custom layout with an unknown profile": (
        "existing",
        lambda d: d.update({"ml-platform:gpu": {"migConfigs": {"odd": {"5g.50gb": 1}}}}),
        'gpu.migConfigs.odd["5g.50gb"]',
        "not a MIG profile",
    ),
    "layout name that is no label value": (
        "existing",
        lambda d: d.update({"ml-platform:gpu": {"migConfigs": {"my layout": {"1g.10gb": 7}}}}),
        'gpu.migConfigs["my layout"]',
        "a layout's name is a node label value",
    ),
    "empty layout name in a pool": (
        "existing",
        lambda d: pool(d, gpu="h100-80gb", sharing={"mode": "mig", "config": ""}),
        "gpuPools[0].sharing.config",
        "the name of a layout in ml-platform:gpu.migConfigs",
    ),
    "zero retention": (
        "aws",
        lambda d: d.update({"ml-platform:monitoring": {"prometheus": {"retention": "0d"}}}),
        "monitoring.prometheus.retention",
        "must be longer than 0",
    ),
    "retention beyond prometheus": (
        "aws",
        lambda d: d.update({"ml-platform:monitoring": {"prometheus": {"retention": "99999999999y"}}}),
        "monitoring.prometheus.retention",
        "at most 10y",
    ),
    "memory alert that never fires": (
        "aws",
        lambda d: d.update({"ml-platform:monitoring": {"alerts": {"gpuMemoryFull": 100}}}),
        "monitoring.alerts.gpuMemoryFull",
        "less than or equal to 99",
    ),
    "idle alert longer than a week": (
        "aws",
        lambda d: d.update({"ml-platform:monitoring": {"alerts": {"idleFor": "999h"}}}),
        "monitoring.alerts.idleFor",
        "at most 168h",
    ),
    "maxNodes beyond reason": (
        "aws",
        lambda d: pool(d, maxNodes=2**64),
        "gpuPools[0].maxNodes",
        "less than or equal to 1000",
    ),
    "huge system node group": (
        "aws",
        lambda d: cluster(d, systemNodes={"minNodes": 2, "maxNodes": 5000}),
        "cluster.systemNodes.maxNodes",
        "less than or equal to 100",
    ),
    "empty node group under cluster-autoscaler": (
        "aws",
        lambda d: (d.update({"ml-platform:autoscaler": "cluster-autoscaler"}), pool(d, maxNodes=0)),
        "gpuPools[0].maxNodes",
        "an EKS node group needs maxNodes >= 1",
    ),
    "reserved aws tag": (
        "aws",
        lambda d: cluster(d, tags={"aws:team": "x"}),
        'cluster.tags["aws:team"]',
        "reserved by AWS",
    ),
    "karpenter's own tag": (
        "aws",
        lambda d: cluster(d, tags={"kubernetes.io/cluster/other": "owned"}),
        'cluster.tags["kubernetes.io/cluster/other"]',
        "reserved by AWS, EKS or Karpenter",
    ),
    "long aws tag value": (
        "aws",
        lambda d: cluster(d, tags={"team": "x" * 300}),
        "cluster.tags.team",
        "a tag value has at most 256 characters",
    ),
    "uppercase gcp label": ("gcp", lambda d: cluster(d, tags={"Team": "ml"}), "cluster.tags.Team", "a GCP label key"),
    "long gcp label value": (
        "gcp",
        lambda d: cluster(d, tags={"team": "x" * 64}),
        "cluster.tags.team",
        "a GCP label value",
    ),
    "gcp project id": (
        "gcp",
        lambda d: cluster(d, gcp={"project": "My_Project"}),
        "cluster.gcp.project",
        "a GCP project id",
    ),
    "gke node range overlaps pods": (
        "gcp",
        lambda d: cluster(d, vpc={"cidr": "10.64.0.0/16"}),
        "cluster.vpc.podsCidr",
        "overlaps cluster.vpc.cidr (10.64.0.0/16)",
    ),
    "gke control plane not a /28": (
        "gcp",
        lambda d: cluster(d, gcp={"project": "ml-proj", "masterIpv4Cidr": "172.16.0.0/27"}),
        "cluster.gcp.masterIpv4Cidr",
        "GKE needs a /28",
    ),
    "exempt namespace that is no name": (
        "aws",
        lambda d: d.update({"ml-platform:policies": {"exemptNamespaces": ["GPU Operator"]}}),
        "policies.exemptNamespaces",
        "not namespace names",
    ),
    "spot on an existing cluster": (
        "existing",
        lambda d: pool(d, capacity="spot"),
        "gpuPools[0].capacity",
        "no spot or reserved capacity",
    ),
    "region on an existing cluster": (
        "existing",
        lambda d: cluster(d, region="us-east-1"),
        "cluster.region",
        "only used on aws and gcp",
    ),
    "system nodes on an existing cluster": (
        "existing",
        lambda d: cluster(d, systemNodes={"minNodes": 3}),
        "cluster.systemNodes",
        "only used on aws and gcp",
    ),
    "gke metrics on aws": (
        "aws",
        lambda d: d.update({"ml-platform:gpu": {"gkeMetrics": "dcgm-exporter"}}),
        "gpu.gkeMetrics",
        "only used on gcp",
    ),
    "toolkit on gke": (
        "gcp",
        lambda d: d.update({"ml-platform:gpu": {"toolkit": True}}),
        "gpu.toolkit",
        "only used on existing clusters (GKE installs it)",
    ),
    "prometheus retention": (
        "aws",
        lambda d: d.update({"ml-platform:monitoring": {"prometheus": {"retention": "2 weeks"}}}),
        "monitoring.prometheus.retention",
        "expected a Prometheus duration such as 15d",
    ),
    "an ambiguous team quota": (
        "aws",
        lambda d: (
            d["ml-platform:gpuPools"].append({"name": "nb", "gpu": "a10g", "gpusPerNode": 1, "maxNodes": 2}),
            d.update({"ml-platform:teams": [{"name": "a", "gpuQuota": 4}]}),
        ),
        "teams[0].gpuQuota",
        "a number is ambiguous: the team's pools offer a100-40gb, a10g; write {a100-40gb: <n>, a10g: <n>}",
    ),
    "a team quota for a GPU its pools do not offer": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "gpuQuota": {"h100-80gb": 8}}]}),
        "teams[0].gpuQuota.h100-80gb",
        "not offered by the team's pools; offered: a100-40gb",
    ),
    "a team quota of whole GPUs on a MIG pool": (
        "aws",
        lambda d: (
            pool(d, gpu="h100-80gb", minNodes=1, maxNodes=1, sharing={"mode": "mig", "profile": "1g.10gb"}),
            d.update({"ml-platform:teams": [{"name": "a", "gpuQuota": {"h100-80gb": 8}}]}),
        ),
        "teams[0].gpuQuota.h100-80gb",
        "offered: nvidia.com/mig-1g.10gb",
    ),
    "a fractional team quota": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "gpuQuota": {"a100-40gb": 1.5}}]}),
        "teams[0].gpuQuota",
        "GPU counts are whole numbers",
    ),
    "a default priority the team may not use": (
        "aws",
        lambda d: d.update(
            {"ml-platform:teams": [{"name": "a", "priority": "training-critical", "priorityClasses": ["development"]}]}
        ),
        "teams[0].priority",
        "must be one of the team's priorityClasses: development",
    ),
    "a team quantity Kubernetes would refuse": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "resources": {"memory": "-1Gi"}}]}),
        "teams[0].resources.memory",
        "expected a Kubernetes quantity such as 64, 500m or 256Gi",
    ),
    "an empty list of allowed priorities": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "priorityClasses": []}]}),
        "teams[0].priorityClasses",
        "at least 1 item",
    ),
    "a group with no name": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "groups": [""]}]}),
        "teams[0].groups[0]",
        "at least 1 character",
    ),
    "a borrowing limit on a GPU the team's pools do not offer": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "gpuBorrowingLimit": {"h100-80gb": 8}}]}),
        "teams[0].gpuBorrowingLimit.h100-80gb",
        "not offered by the team's pools; offered: a100-40gb",
    ),
    "a negative borrowing limit": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "gpuBorrowingLimit": -2}]}),
        "teams[0].gpuBorrowingLimit",
        "GPU counts are whole numbers from 0 to 100000",
    ),
    "teams promised more GPUs than the pools have, as an error": (
        "aws",
        lambda d: d.update(
            {
                "ml-platform:teams": [{"name": "a", "gpuQuota": 10}, {"name": "b", "gpuQuota": 30}],
                "ml-platform:kueue": {"overcommit": "error"},
            }
        ),
        "kueue.overcommit",
        "the teams' a100-40gb quotas add up to 40 (a 10, b 30), more than the pools can ever provide (16 at maxNodes)",
    ),
    "an unknown overcommit setting": (
        "aws",
        lambda d: d.update({"ml-platform:kueue": {"overcommit": "ignore"}}),
        "kueue.overcommit",
        "'warn' or 'error'",
    ),
    "an absurd quantity": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "resources": {"cpu": "1e1000000"}}]}),
        "teams[0].resources.cpu",
        "too large for a Kubernetes quantity",
    ),
    "a class listed twice": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "priorityClasses": ["development", "development"]}]}),
        "teams[0].priorityClasses",
        "each class once",
    ),
    "capacity as a number": (
        "aws",
        lambda d: pool(d, capacity=5),
        "gpuPools[0].capacity",
        "expected a list",
    ),
    "a tag value of the wrong type under a key named like a type": (
        "aws",
        lambda d: cluster(d, tags={"str": 5}),
        "cluster.tags.str",
        "expected a valid string",
    ),
    "a ray cluster without kuberay": (
        "aws",
        lambda d: d.update(
            {"ml-platform:teams": [{"name": "a", "rayCluster": {}}], "ml-platform:kuberay": {"enabled": False}}
        ),
        "teams[0].rayCluster",
        "needs the KubeRay operator",
    ),
    "a ray cluster on a pool not the team's": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "rayCluster": {"gpuPool": "nope"}}]}),
        "teams[0].rayCluster.gpuPool",
        "one of the team's GPU pools: train",
    ),
    "more GPUs per ray worker than a node has": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "rayCluster": {"gpusPerWorker": 16}}]}),
        "teams[0].rayCluster.gpusPerWorker",
        "at most 8: what one node of pool train offers (nvidia.com/gpu)",
    ),
    "a ray /dev/shm as large as the worker": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "rayCluster": {"shmSize": "64Gi"}}]}),
        "teams[0].rayCluster.shmSize",
        "at most half of gpuWorkerMemory (64Gi)",
    ),
    "a null team quota": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "gpuQuota": None}]}),
        "teams[0].gpuQuota",
        "expected a valid integer or a mapping of keys to values",
    ),
    "negative team quota": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a", "gpuQuota": -1}]}),
        "teams[0].gpuQuota",
        "GPU counts are whole numbers from 0 to 100000",
    ),
    "disk too small": ("aws", lambda d: pool(d, diskGiB=10), "gpuPools[0].diskGiB", "greater than or equal to 50"),
    "zone outside region": (
        "gcp",
        lambda d: cluster(d, gcp={"project": "p", "zones": ["europe-west4-a"]}),
        "cluster.gcp.zones[0]",
        "zone of region us-central1",
    ),
    "mig profile gke cannot create": (
        "gcp",
        lambda d: pool(d, gpu="a100-80gb", sharing={"mode": "mig", "profile": "4g.40gb"}),
        "gpuPools[0].sharing.profile",
        "not a MIG profile of a100-80gb on gcp; allowed: 1g.10gb, 2g.20gb",
    ),
    "a3 1-gpu on demand": (
        "gcp",
        lambda d: pool(d, gpu="h100-80gb", gpusPerNode=1, capacity="on-demand"),
        "gpuPools[0].capacity",
        "a3-highgpu-1g is sold only as spot",
    ),
    "snake_case key": ("aws", lambda d: pool(d, min_nodes=1), "gpuPools[0].min_nodes", "minNodes"),
    "too many time-slicing replicas": (
        "aws",
        lambda d: pool(d, sharing={"mode": "time-slicing", "replicas": 64}),
        "gpuPools[0].sharing.replicas",
        "at most 48",
    ),
    "kubeconfig and path": (
        "existing",
        lambda d: cluster(d, existing={"kubeconfig": "x", "kubeconfigPath": "/k"}),
        "cluster.existing.kubeconfigPath",
        "not both",
    ),
    "system min above max": (
        "aws",
        lambda d: cluster(d, systemNodes={"minNodes": 5, "maxNodes": 3}),
        "cluster.systemNodes.maxNodes",
        ">= systemNodes.minNodes (5)",
    ),
    "missing gcp region": (
        "gcp",
        lambda d: d["ml-platform:cluster"].pop("region"),
        "cluster.region",
        "required on gcp",
    ),
    "bad gcp region": ("gcp", lambda d: cluster(d, region="us-east-1"), "cluster.region", "such as us-central1"),
    "bad pods cidr": ("gcp", lambda d: cluster(d, vpc={"podsCidr": "10.64.0.0/99"}), "cluster.vpc.podsCidr", "CIDR"),
    "existing vpc without id": (
        "aws",
        lambda d: cluster(d, vpc={"existing": {"privateSubnetIds": ["a", "b"]}}),
        "cluster.vpc.existing.vpcId",
        "required for an existing aws VPC",
    ),
    "existing gcp network incomplete": (
        "gcp",
        lambda d: cluster(d, vpc={"existing": {"network": "n"}}),
        "cluster.vpc.existing.subnetwork",
        "required for an existing gcp network",
    ),
    "aws vpc fields on gcp": (
        "gcp",
        lambda d: cluster(
            d,
            vpc={
                "existing": {
                    "network": "n",
                    "subnetwork": "s",
                    "podsRangeName": "p",
                    "servicesRangeName": "s",
                    "vpcId": "vpc-1",
                }
            },
        ),
        "cluster.vpc.existing.vpcId",
        "not used on gcp",
    ),
    "duplicate team names": (
        "aws",
        lambda d: d.update({"ml-platform:teams": [{"name": "a"}, {"name": "a"}]}),
        "teams[1].name",
        "unique",
    ),
    "empty capacity": ("aws", lambda d: pool(d, capacity=[]), "gpuPools[0].capacity", "at least one of reserved, spot"),
    "unknown addon": (
        "aws",
        lambda d: cluster(d, aws={"addonVersions": {"cilium": "1"}}),
        "cluster.aws.addonVersions.cilium",
        "allowed add-ons: vpc-cni",
    ),
    "duplicate access entry": (
        "aws",
        lambda d: cluster(d, aws={"accessEntries": [{"principalArn": "arn:aws:iam::1:role/a"}] * 2}),
        "cluster.aws.accessEntries[1].principalArn",
        "each principal once",
    ),
    "pool zones on aws": ("aws", lambda d: pool(d, zones=["us-east-1a"]), "gpuPools[0].zones[0]", "only used on gcp"),
    "pool zone outside region": (
        "gcp",
        lambda d: pool(d, zones=["us-east1-b"]),
        "gpuPools[0].zones[0]",
        "zone of region us-central1",
    ),
    "public cidr as a private path": (
        "gcp",
        lambda d: (d.update({"ml-platform:environment": "prod"}), cluster(d, apiAccess={"cidrs": ["8.8.8.0/24"]})),
        "cluster.apiAccess.cidrs[0]",
        "a private endpoint is reached from private ranges",
    ),
    "public cidrs with a private endpoint": (
        "aws",
        lambda d: cluster(d, endpointAccess="private", publicAccessCidrs=["203.0.113.0/24"]),
        "cluster.publicAccessCidrs",
        "list private networks under cluster.apiAccess.cidrs",
    ),
    "public endpoint without cidrs": (
        "aws",
        lambda d: cluster(d, publicAccessCidrs=None),
        "cluster.publicAccessCidrs",
        "required with a public endpoint",
    ),
    "public endpoint with an empty list": (
        "gcp",
        lambda d: cluster(d, publicAccessCidrs=[]),
        "cluster.publicAccessCidrs",
        "0.0.0.0/0 only in dev",
    ),
    "the internet outside dev": (
        "aws",
        lambda d: (
            d.update({"ml-platform:environment": "staging"}),
            cluster(d, endpointAccess="public-and-private", publicAccessCidrs=["10.0.0.0/8", "0.0.0.0/1"]),
        ),
        "cluster.publicAccessCidrs[1]",
        "opens the API to the internet, allowed only in dev (this stack is staging)",
    ),
    "private endpoint in a new vpc with no path (aws)": (
        "aws",
        lambda d: (d.update({"ml-platform:environment": "prod"}), cluster(d, apiAccess={})),
        "cluster.apiAccess",
        "bootstrap in two phases",
    ),
    "private endpoint in a new vpc with no path (gcp)": (
        "gcp",
        lambda d: cluster(d, endpointAccess="private", publicAccessCidrs=None, apiAccess={"cidrs": []}),
        "cluster.apiAccess",
        "Cloud VPN or Interconnect that exports routes to the control plane (VPC peering is not transitive",
    ),
    "security groups on gcp": (
        "gcp",
        lambda d: cluster(d, apiAccess={"securityGroupIds": ["sg-0123abcd"]}),
        "cluster.apiAccess.securityGroupIds[0]",
        "aws only",
    ),
    "a security group id that is not one": (
        "aws",
        lambda d: cluster(d, apiAccess={"securityGroupIds": ["my-runners"]}),
        "cluster.apiAccess.securityGroupIds[0]",
        "a security group id such as sg-0123abcd",
    ),
    "a bad private path cidr": (
        "aws",
        lambda d: cluster(d, apiAccess={"cidrs": ["10.0.0.1/16"]}),
        "cluster.apiAccess.cidrs[0]",
        "expected a CIDR block",
    ),
    "api access on an existing cluster": (
        "existing",
        lambda d: cluster(d, apiAccess={"cidrs": ["10.0.0.0/16"]}),
        "cluster.apiAccess",
        "only used on aws and gcp",
    ),
    "log retention CloudWatch does not offer": (
        "aws",
        lambda d: cluster(d, aws={"logRetentionDays": 100}),
        "cluster.aws.logRetentionDays",
        "one of CloudWatch's retention periods: 1, 3, 5",
    ),
    "a log type EKS does not have": (
        "aws",
        lambda d: cluster(d, aws={"logTypes": ["audit", "kubelet"]}),
        "cluster.aws.logTypes[1]",
        "controllerManager",
    ),
    "latest AMI outside dev": (
        "aws",
        lambda d: d.update({"ml-platform:environment": "staging"}),
        "scaling.amiVersion",
        "pin an AMI release outside dev (this stack is staging), e.g. v20260714",
    ),
    "vpc endpoints on gcp": (
        "gcp",
        lambda d: cluster(d, vpc={"endpoints": {"ecr": True}}),
        "cluster.vpc.endpoints",
        "only for a VPC this stack creates on aws",
    ),
    "vpc endpoints in an existing vpc": (
        "aws",
        lambda d: cluster(
            d,
            vpc={
                "endpoints": {"s3": False},
                "existing": {"vpcId": "vpc-1", "privateSubnetIds": ["subnet-1", "subnet-2"]},
            },
        ),
        "cluster.vpc.endpoints",
        "an existing VPC keeps its own endpoints",
    ),
    "bad consolidateAfter": (
        "aws",
        lambda d: d.update({"ml-platform:scaling": {"consolidateAfter": "2 minutes"}}),
        "scaling.consolidateAfter",
        "expected",
    ),
    "consolidateAfter in days": (
        "aws",
        lambda d: d.update({"ml-platform:scaling": {"expireAfter": "30d"}}),
        "scaling.expireAfter",
        "expected",
    ),
    "bad ami version": (
        "aws",
        lambda d: d.update({"ml-platform:scaling": {"amiVersion": "newest"}}),
        "scaling.amiVersion",
        "expected",
    ),
    "unknown ami family": (
        "aws",
        lambda d: d.update({"ml-platform:scaling": {"amiFamily": "ubuntu"}}),
        "scaling.amiFamily",
        "'al2023' or 'bottlerocket'",
    ),
    "cpu pool on-demand first": (
        "aws",
        lambda d: d.update({"ml-platform:scaling": {"cpuPool": {"capacity": ["on-demand", "spot"]}}}),
        "scaling.cpuPool.capacity",
        "preference order, spot, on-demand",
    ),
    "bad gke profile": (
        "gcp",
        lambda d: d.update({"ml-platform:scaling": {"gkeProfile": "cheap"}}),
        "scaling.gkeProfile",
        "'OPTIMIZE_UTILIZATION' or 'BALANCED'",
    ),
    "default shm before 1.36": (
        "aws",
        lambda d: d.update({"ml-platform:policies": {"defaultShm": True}}),
        "policies.defaultShm",
        "GA from Kubernetes 1.36",
    ),
    "cluster-autoscaler minor mismatch": (
        "aws",
        lambda d: (cluster(d, kubernetesVersion="1.34"), d.update({"ml-platform:autoscaler": "cluster-autoscaler"})),
        "scaling.clusterAutoscalerVersion",
        "minor must match Kubernetes 1.34",
    ),
    "bad environment": (
        "aws",
        lambda d: d.update({"ml-platform:environment": "qa"}),
        "environment",
        "'dev', 'staging'",
    ),
}


@pytest.mark.parametrize("case", NEGATIVE)
def test_every_rule_rejects_bad_input_naming_key_value_and_allowed(case: str) -> None:
    cloud, mutate, path, allowed = NEGATIVE[case]
    document = copy.deepcopy(BASE[cloud])
    mutate(document)
    found = [p for p in problems(document) if p.startswith(f"ml-platform:{path.removeprefix('ml-platform:')}:")]
    assert found, f"no problem at {path}: {problems(document)}"
    assert any(allowed in p for p in found), found
    # "<path>: got <value as JSON>; <what is allowed>" or "<path>: missing; <what is required>"
    # (a key that is not a plain name is quoted: migConfigs["my layout"])
    assert all(re.fullmatch(r"ml-platform:(?:[^\s\[]|\[[^\]]*\])+: (got .+|missing); .+", p) for p in found), found


def test_all_problems_are_reported_at_once() -> None:
    document = copy.deepcopy(BASE["aws"])
    pool(document, minNodes=3, maxNodes=1, gpusPerNode=4, sharing={"mode": "time-slicing", "replicas": 1})
    cluster(document, kubernetesVersion="1.20", regoin="x")
    document["ml-platform:autoscaler"] = "none"
    paths = {p.split(": ")[0] for p in problems(document)}
    assert {
        "ml-platform:gpuPools[0].maxNodes",
        "ml-platform:gpuPools[0].gpusPerNode",
        "ml-platform:gpuPools[0].sharing.replicas",
        "ml-platform:cluster.regoin",
        # a cross-key rule of the same section as the unknown key still runs
        "ml-platform:cluster.kubernetesVersion",
        "ml-platform:autoscaler",
    } <= paths


def test_an_item_with_a_wrong_key_still_gets_its_cross_field_checks() -> None:
    document = copy.deepcopy(BASE["aws"])
    pool(document, gpus=8, minNodes=5, maxNodes=2)
    paths = {p.split(": ")[0] for p in problems(document)}
    assert {"ml-platform:gpuPools[0].gpus", "ml-platform:gpuPools[0].maxNodes"} <= paths


def test_semantic_rules_still_run_when_another_section_has_a_type_error() -> None:
    document = copy.deepcopy(BASE["aws"])
    document["ml-platform:gpuPools"].append({"name": "b", "gpu": "h100-80gb", "gpusPerNode": 2, "maxNodes": 1})
    cluster(document, regoin="x")
    paths = {p.split(": ")[0] for p in problems(document)}
    assert {"ml-platform:cluster.regoin", "ml-platform:gpuPools[1].gpusPerNode"} <= paths


@pytest.mark.parametrize("cloud", sorted(BASE))
def test_base_documents_are_valid(cloud: str) -> None:
    assert load(BASE[cloud]).cluster.cloud == cloud


def test_environment_defaults() -> None:
    dev = load(BASE["aws"])
    assert (dev.cluster.endpoint_access, dev.cluster.protect, dev.cluster.vpc.nat_gateways) == (
        "public-and-private",
        False,
        "single",
    )
    assert (dev.autoscaler, dev.policies.enforcement) == ("karpenter", "advisory")
    prod = load({**BASE["aws"], "ml-platform:environment": "prod", "ml-platform:scaling": {"amiVersion": "v20260714"}})
    assert (prod.cluster.endpoint_access, prod.cluster.protect, prod.cluster.vpc.nat_gateways) == (
        "private",
        True,
        "one-per-az",
    )
    assert prod.policies.enforcement == "mandatory"
    # The field guide's scale-down delays: 2 minutes in dev, 5 in production.
    assert (dev.scaling.consolidate_after, prod.scaling.consolidate_after) == ("2m", "5m")
    assert (dev.scaling.gke_profile, prod.scaling.gke_profile) == ("OPTIMIZE_UTILIZATION", "BALANCED")
    assert load(BASE["gcp"]).autoscaler == "cluster-autoscaler"
    assert load(BASE["existing"]).autoscaler == "none"


def test_capacity_accepts_a_single_value_or_spot_first_list() -> None:
    document = copy.deepcopy(BASE["aws"])
    pool(document, capacity="spot")
    assert load(document).gpu_pools[0].capacity == ("spot",)
    pool(document, capacity=["spot", "on-demand"])
    assert load(document).gpu_pools[0].capacity == ("spot", "on-demand")


@pytest.mark.parametrize("version", [*SUPPORTED_KUBERNETES_VERSIONS, "1.32", "1.37"])
def test_kubernetes_versions_outside_what_both_clouds_offer_are_rejected(version: str) -> None:
    doc = copy.deepcopy(BASE["aws"])
    doc["ml-platform:cluster"]["kubernetesVersion"] = version
    if version in ("1.32", "1.37"):
        message = "\n".join(problems(doc))
        assert f'ml-platform:cluster.kubernetesVersion: got "{version}"; allowed: 1.33, 1.34, 1.35, 1.36' in message
    else:
        assert load(doc).cluster.kubernetes_version == version


def test_pulumi_yaml_declares_every_stack_key_with_a_description() -> None:
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    assert project["name"] == "ml-platform"
    assert project["runtime"]["name"] == "python" and project["runtime"]["options"]["virtualenv"] == ".venv"
    declared = project["config"]
    assert set(declared) == set(STACK_KEYS)
    for key, spec in declared.items():
        assert spec.get("description"), key
        # The project schema only knows these simple types; object keys are typed by the pydantic models.
        assert spec.get("type", "string") in ("string", "integer", "boolean", "array"), key
    # An object key's description names every field of its section (of an item, for lists).
    for key, field in STACK_KEYS.items():
        annotation = PlatformConfig.model_fields[field].annotation
        model = next(
            (a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
        if model is not None:
            names = [f.alias or n for n, f in model.model_fields.items()]
            missing = [n for n in names if not re.search(rf"\b{n}\b", declared[key]["description"])]
            assert missing == [], f"Pulumi.yaml {key}: description misses {missing}"


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_file_is_valid_and_uses_only_declared_keys(name: str) -> None:
    config = stack_document(name)["config"]
    assert all(k.split(":")[0] == "ml-platform" for k in config), "stack files set only ml-platform:* keys"
    assert load(config).cluster.name


def test_bad_json_in_a_value_is_a_problem_not_a_traceback() -> None:
    raw = raw_config(BASE["aws"]) | {"ml-platform:gpuPools": "[{"}
    with pytest.raises(ConfigError) as info:
        load_platform_config(raw)
    assert "ml-platform:gpuPools" in str(info.value)


def test_error_message_lists_every_problem() -> None:
    document = copy.deepcopy(BASE["aws"])
    pool(document, minNodes=5)
    with pytest.raises(ConfigError) as info:
        load(document)
    text = str(info.value)
    assert text.startswith("1 problem(s)") and "nothing was deployed" in text
    assert "ml-platform:gpuPools[0].maxNodes: got 2; must be >= minNodes (5)" in text
    assert json.dumps(2) in text


def test_generated_configuration_docs_are_current() -> None:
    from tools.config_docs import DOC, render

    assert DOC.read_text() == render(), "docs/configuration.md is stale: run `make docs`"


def test_each_problem_is_reported_once() -> None:
    document = copy.deepcopy(BASE["aws"])
    document["ml-platform:autoscaler"] = "kerpenter"
    found = problems(document)
    assert len(found) == 1 and found[0].startswith('ml-platform:autoscaler: got "kerpenter"')


def test_credentials_never_appear_in_config_errors() -> None:
    document = copy.deepcopy(BASE["existing"])
    cluster(document, existing={"kubeconfig": {"users": [{"user": {"token": "s3cr3t-token"}}]}})
    text = "\n".join(problems(document))
    assert "ml-platform:cluster.existing.kubeconfig" in text and "s3cr3t-token" not in text


def test_long_values_are_shortened_in_errors() -> None:
    document = copy.deepcopy(BASE["aws"])
    cluster(document, name="x" * 500)
    [problem] = [p for p in problems(document) if p.startswith("ml-platform:cluster.name:")]
    assert len(problem) < 300 and "..." in problem


def test_generated_docs_state_facts_from_upstream() -> None:
    """Rows a user relies on, written by hand from AWS's instance pages, NVIDIA's MIG user guide and GKE's docs."""
    doc = (PROJECT_DIR / "docs" / "configuration.md").read_text()
    for row in (
        "| aws | a100-40gb | 8 | p4d.24xlarge |",  # AWS sells A100 40GB only as 8-GPU p4d
        "| aws | h100-80gb | 8 | p5.48xlarge |",
        "| gcp | h100-80gb | 1 | a3-highgpu-1g | nvidia-h100-80gb | spot only |",
        "| a100-80gb | 1g.10gb | 7 | 10 GB | `nvidia.com/mig-1g.10gb` | yes |",
        "| h100-80gb | 1g.10gb+me | 1 | 10 GB | `nvidia.com/mig-1g.10gb.me` | no |",  # '+' is not valid in a name
        "| a100-40gb | 1g.10gb | 4 | 10 GB | `nvidia.com/mig-1g.10gb` | no |",  # GKE does not create it
        "| h100-80gb | NVIDIA H100 80GB | 80 GiB | `NVIDIA-H100-80GB-HBM3` | yes |",
    ):
        assert row in doc, row


def test_messages_name_what_is_wrong_in_the_users_words() -> None:
    # A missing cluster is one problem, not two.
    missing = problems({"ml-platform:environment": "dev"})
    assert len([p for p in missing if p.startswith("ml-platform:cluster:")]) == 1
    # No Python class names.
    [shape] = problems({"ml-platform:cluster": 3})
    assert "instance of" not in shape and "expected a mapping of keys to values" in shape
    # A secure: number says it is a secret the offline plan cannot read, not "expected a valid integer".
    doc = copy.deepcopy(BASE["aws"])
    pool(doc, maxNodes="<secret ml-platform:gpuPools[0].maxNodes>")
    [secret] = problems(doc)
    assert "a secret (secure:) value, which the offline plan cannot decrypt" in secret and "integer" not in secret
    # No raw regular expression.
    doc = copy.deepcopy(BASE["aws"])
    doc["ml-platform:scaling"] = {"clusterAutoscalerVersion": "1.35"}
    [tag] = problems(doc)
    assert tag.endswith("expected a cluster-autoscaler image tag such as v1.35.0") and "^v1" not in tag
    # A bad pool name is not offered as an allowed one.
    doc = copy.deepcopy(BASE["aws"])
    pool(doc, name="")
    doc["ml-platform:teams"] = [{"name": "a", "pools": ["train"]}]
    assert not any("allowed: ," in p or 'allowed: ""' in p for p in problems(doc))


def test_risky_api_access_warns() -> None:
    from components.config.rules import config_warnings

    open_dev = copy.deepcopy(BASE["aws"])
    cluster(open_dev, publicAccessCidrs=["0.0.0.0/0"])
    assert config_warnings(load(open_dev)) == [
        "ml-platform:cluster.publicAccessCidrs: the API endpoint is open to the whole internet (dev only); narrow "
        "it to your office, VPN or runner egress"
    ]
    existing_vpc = copy.deepcopy(BASE["aws"])
    existing = {"vpcId": "vpc-1", "privateSubnetIds": ["subnet-1", "subnet-2"]}
    cluster(existing_vpc, endpointAccess="private", apiAccess={}, vpc={"existing": existing})
    [warning] = config_warnings(load(existing_vpc))
    assert warning.startswith("ml-platform:cluster.apiAccess: private endpoint and no declared path")
    narrowed = copy.deepcopy(BASE["gcp"])
    assert config_warnings(load(narrowed)) == []


def test_teams_promised_more_gpus_than_the_pools_have_warns() -> None:
    from components.config.rules import config_warnings

    document = copy.deepcopy(BASE["aws"])  # a100-40gb x8, maxNodes 2: 16 GPUs at most
    document["ml-platform:teams"] = [{"name": "a", "gpuQuota": 10}, {"name": "b", "gpuQuota": 6}]
    assert config_warnings(load(document)) == []  # exactly what exists is fine
    document["ml-platform:teams"][1]["gpuQuota"] = 7
    assert config_warnings(load(document)) == [
        "teams are promised 17 a100-40gb GPUs (nvidia.com/gpu) but the pools can ever provide 16 (at maxNodes): "
        "quota beyond that only queues (kueue.overcommit: error refuses it)"
    ]
    # a second capacity type is a second group of maxNodes: 32
    document["ml-platform:gpuPools"][0]["capacity"] = ["spot", "on-demand"]
    assert config_warnings(load(document)) == []


def test_latest_ami_is_for_dev_and_karpenter_only() -> None:
    prod = copy.deepcopy(BASE["aws"])
    prod["ml-platform:environment"] = "prod"
    prod["ml-platform:scaling"] = {"amiVersion": "v20260714"}
    assert load(prod).scaling.ami_version == "v20260714"
    prod["ml-platform:autoscaler"] = "cluster-autoscaler"  # managed node groups take the AMI current at creation
    prod["ml-platform:scaling"] = {"clusterAutoscalerVersion": "v1.35.0"}
    assert load(prod).scaling.ami_version == "latest"
    assert load(copy.deepcopy(BASE["aws"])).scaling.ami_version == "latest"  # dev


def test_prod_pins_its_ami_release() -> None:
    prod = stack_document("prod")["config"]
    assert re.fullmatch(r"v20\d{6}", prod["ml-platform:scaling"]["amiVersion"])


# Found by trying to break the new keys: each input gives exactly these problems, nothing more (no follow-on
# problems about defaults standing in for a value that did not parse), and no traceback.
EXACTLY: dict[str, tuple[str, Mutation, list[str]]] = {
    "a block listed twice": (
        "aws",
        lambda d: cluster(d, apiAccess={"cidrs": ["10.20.0.0/16", "10.20.0.0/16"]}),
        ['cluster.apiAccess.cidrs[1]: got "10.20.0.0/16"; listed twice'],
    ),
    "a security group listed twice": (
        "aws",
        lambda d: cluster(d, apiAccess={"securityGroupIds": ["sg-0123abcd", "sg-0123abcd"]}),
        ['cluster.apiAccess.securityGroupIds[1]: got "sg-0123abcd"; listed twice'],
    ),
    "a block without its prefix": (
        "aws",
        lambda d: cluster(d, apiAccess={"cidrs": ["10.20.0.1"]}),
        ['cluster.apiAccess.cidrs[0]: got "10.20.0.1"; write the block as 10.20.0.1/32'],
    ),
    "a netmask instead of a prefix": (
        "gcp",
        lambda d: cluster(d, publicAccessCidrs=["0.0.0.0/0.0.0.0"]),
        ['cluster.publicAccessCidrs[0]: got "0.0.0.0/0.0.0.0"; write the block as 0.0.0.0/0'],
    ),
    "a prefix with a leading zero": (
        "aws",
        lambda d: cluster(d, apiAccess={"cidrs": ["10.20.0.0/016"]}),
        ['cluster.apiAccess.cidrs[0]: got "10.20.0.0/016"; write the block as 10.20.0.0/16'],
    ),
    "true as a retention": (
        "aws",
        lambda d: cluster(d, aws={"logRetentionDays": True}),
        ["cluster.aws.logRetentionDays: got true; expected a valid integer"],
    ),
    "yes as a switch": (
        "aws",
        lambda d: cluster(d, vpc={"endpoints": {"s3": "yes"}}),
        ['cluster.vpc.endpoints.s3: got "yes"; expected a valid boolean'],
    ),
    "no capacity with reservations": (
        "aws",
        lambda d: pool(d, capacity=[], reservations={"ids": ["cr-0123456789abcdef0"]}),
        ["gpuPools[0].capacity: got []; at least one of reserved, spot, on-demand"],
    ),
    "a reservation id with a newline": (
        "aws",
        lambda d: pool(d, capacity="reserved", reservations={"ids": ["cr-0a1b2c3d4e5f67890\n"]}),
        ['gpuPools[0].reservations.ids[0]: got "cr-0a1b2c3d4e5f67890\\n"; a capacity reservation id'],
    ),
    "more reservations than Karpenter takes": (
        "aws",
        lambda d: pool(d, capacity="reserved", reservations={"ids": [f"cr-{i:017x}" for i in range(31)]}),
        ['gpuPools[0].reservations.ids: got "31 ids"; at most 30 selector terms'],
    ),
    "more reservation tags than Karpenter takes": (
        "aws",
        lambda d: pool(d, capacity="reserved", reservations={"tags": {f"k{i}": "v" for i in range(21)}}),
        ['gpuPools[0].reservations.tags: got "21 tags"; at most 20'],
    ),
    "a reservations block that does not parse": (
        "aws",
        lambda d: pool(d, capacity="reserved", reservations={"tags": {"k": None}}),
        ["gpuPools[0].reservations.tags.k: got null; expected a valid string"],
    ),
    "reserved on gcp": (
        "gcp",
        lambda d: pool(d, capacity=["reserved", "on-demand"]),
        ['gpuPools[0].capacity: got ["reserved", "on-demand"]; reserved is aws only'],
    ),
    "a private range as an EKS public access CIDR": (
        "aws",
        lambda d: cluster(d, publicAccessCidrs=["10.0.0.0/8"]),
        ['cluster.publicAccessCidrs[0]: got "10.0.0.0/8"; EKS public access CIDRs are public addresses'],
    ),
    "the internet in /8 slices outside dev": (
        "aws",
        lambda d: (
            d.update({"ml-platform:environment": "staging", "ml-platform:scaling": {"amiVersion": "v20260714"}}),
            cluster(d, endpointAccess="public-and-private", publicAccessCidrs=[f"{i}.0.0.0/8" for i in (1, 2)]),
        ),
        ['cluster.publicAccessCidrs: got "2 blocks"; together open the API to 33554432 addresses, more than a /8'],
    ),
    "more public CIDRs than EKS takes": (
        "aws",
        lambda d: cluster(d, publicAccessCidrs=[f"203.0.{i}.0/24" for i in range(41)]),
        ['cluster.publicAccessCidrs: got "41 blocks"; at most 40 on aws'],
    ),
    "more path rules than a security group takes": (
        "aws",
        lambda d: cluster(d, apiAccess={"cidrs": [f"10.20.{i}.0/24" for i in range(61)]}),
        ['cluster.apiAccess: got "61 CIDRs and groups"; at most 60 on aws'],
    ),
    "a path inside the cluster's own new network": (
        "aws",
        lambda d: cluster(d, vpc={"cidr": "10.50.0.0/16"}, apiAccess={"cidrs": ["10.50.1.0/24"]}),
        ['cluster.apiAccess.cidrs[0]: got "10.50.1.0/24"; overlaps the cluster\'s own new network (vpc.cidr)'],
    ),
    "a misspelt latest": (
        "aws",
        lambda d: d.update({"ml-platform:environment": "dev", "ml-platform:scaling": {"amiVersion": "Latest"}}),
        ['scaling.amiVersion: got "Latest"; expected latest or an AMI release version such as v20260714'],
    ),
    "a path that does not parse": (
        "aws",
        lambda d: (d.update({"ml-platform:environment": "prod"}), cluster(d, apiAccess={"cidrs": "10.20.0.0/16"})),
        [
            'cluster.apiAccess.cidrs: got "10.20.0.0/16"; expected a list',
            'scaling.amiVersion: got "latest"; pin an AMI release outside dev (this stack is prod)',
        ],
    ),
    "an environment that does not parse": (
        "aws",
        lambda d: d.update({"ml-platform:environment": "Prod"}),
        ["environment: got \"Prod\"; expected 'dev', 'staging' or 'prod'"],
    ),
}


@pytest.mark.parametrize("case", list(EXACTLY))
def test_bad_input_gives_exactly_its_own_problems(case: str) -> None:
    cloud, mutate, expected = EXACTLY[case]
    doc = copy.deepcopy(BASE[cloud])
    mutate(doc)
    found = problems(doc)
    assert len(found) == len(expected), found
    for text in expected:
        assert sum(p.startswith("ml-platform:" + text) for p in found) == 1, (text, found)


def test_a_union_is_one_problem_without_pydantics_member_names() -> None:
    """pydantic tries each member of `int | dict` and names them in the location; the user wrote one key."""
    document = copy.deepcopy(BASE["aws"])
    document["ml-platform:teams"] = [{"name": "a", "gpuQuota": None}]
    assert problems(document) == [
        "ml-platform:teams[0].gpuQuota: got null; expected a valid integer or a mapping of keys to values"
    ]


@pytest.mark.parametrize(
    ("written", "quantity"),
    [(64, "64"), (0.5, "0.5"), (1e10, "10000000000"), ("1Ei", "1Ei"), ("250m", "250m"), ("2.5e2", "2.5e2")],
)
def test_team_quantities_written_as_yaml_numbers_or_any_kubernetes_spelling(written: Any, quantity: str) -> None:
    document = copy.deepcopy(BASE["aws"])
    document["ml-platform:teams"] = [{"name": "a", "resources": {"cpu": written, "memory": "1Gi"}}]
    assert load(document).teams[0].resources.cpu == quantity
