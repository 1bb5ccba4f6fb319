"""Labels and taints every layer and every policy agrees on.

Workloads select the portable labels, so a job spec moves unchanged between EKS, GKE and on-prem clusters.
"""

from __future__ import annotations

LABEL_GPU = "ml-platform.io/gpu"
LABEL_POOL = "ml-platform.io/pool"
LABEL_CAPACITY = "ml-platform.io/capacity"
LABEL_WORKLOAD = "ml-platform.io/workload"
# none | time-slicing | mig: what a GPU node's device plugin does (policies check time-slicing placement).
LABEL_SHARING = "ml-platform.io/sharing"
LABEL_ROLE = "ml-platform.io/role"
# The role of the Karpenter CPU pool's nodes (Ray CPU workers, preprocessing).
CPU_WORKER_ROLE = "cpu-workers"
# On a Namespace: the team it belongs to (quotas, cost showback).
LABEL_TEAM = "ml-platform.io/team"
# On a team's Namespace: the PriorityClass its pods get when they name none (Kubernetes >= 1.36).
LABEL_DEFAULT_PRIORITY = "ml-platform.io/default-priority"

# GPU nodes are tainted so that only pods that tolerate `nvidia.com/gpu` (operator Exists) land there.
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
# GKE adds `nvidia.com/gpu=present:NoSchedule` to every GPU node itself; a second taint with the same
# key and effect is rejected by the API server, so on GKE we declare GKE's own.
GKE_GPU_TAINT_VALUE = "present"

MANAGED_BY = {"app.kubernetes.io/managed-by": "ml-platform"}

# Labels the NVIDIA GPU Operator reads on a node: the device-plugin config it selects (time-slicing), the MIG layout
# the MIG manager applies (and reports in .state: pending, rebooting, success, failed), and
# `nvidia.com/gpu.deploy.<operand>=false` to keep an operand off the node.
NVIDIA_DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
NVIDIA_MIG_CONFIG_LABEL = "nvidia.com/mig.config"
NVIDIA_MIG_CONFIG_STATE_LABEL = "nvidia.com/mig.config.state"
NVIDIA_DEPLOY_LABEL = "nvidia.com/gpu.deploy"

# Where platform controllers run (every cloud's system node group carries the role label; existing clusters label
# theirs, docs/configuration.md).
SYSTEM_NODE_SELECTOR = {"kubernetes.io/os": "linux", LABEL_ROLE: "system"}
