"""The EKS managed add-ons the cluster installs, in the order nodes need them (no pulumi import: config rules
read the names)."""

from __future__ import annotations

# Add-ons that must run before nodes can become Ready, and those that need nodes to schedule on.
ADDONS_BEFORE_NODES = ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
# metrics-server (an EKS community add-on) serves the metrics API: KServe's HPAs and `kubectl top` need it, and EKS
# has none by default.
ADDONS_AFTER_NODES = ("coredns", "aws-ebs-csi-driver", "metrics-server")
# The CSI driver of the shared filesystem (storage.sharedFilesystem.type): add-on, the controller's ServiceAccount
# (which gets a role through Pod Identity) and the AWS-managed policy the driver's docs attach to it. FSx's driver
# creates and deletes file systems (dynamic provisioning): AWS documents AmazonFSxFullAccess for it.
STORAGE_ADDONS: dict[str, tuple[str, str, str]] = {
    "efs": ("aws-efs-csi-driver", "efs-csi-controller-sa", "service-role/AmazonEFSCSIDriverPolicy"),
    "fsx-lustre": ("aws-fsx-csi-driver", "fsx-csi-controller-sa", "AmazonFSxFullAccess"),
}
EKS_MANAGED_ADDONS = (*ADDONS_BEFORE_NODES, *ADDONS_AFTER_NODES, *(a for a, _, _ in STORAGE_ADDONS.values()))

# Add-on configuration (its JSON schema: `aws eks describe-addon-configuration`). The VPC CNI enforces
# NetworkPolicies only with its network policy agent on (off by default): the teams' isolation depends on it.
ADDON_CONFIGURATION: dict[str, dict[str, str]] = {"vpc-cni": {"enableNetworkPolicy": "true"}}
