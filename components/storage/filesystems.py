"""The shared filesystem behind each team's ReadWriteMany volume: its cloud resources and its StorageClass.

- **efs** (AWS default): one encrypted EFS file system with elastic throughput and a mount target per private
  subnet; the EFS CSI driver (an EKS add-on, components/cluster/eks.py) makes an access point per volume, in a
  directory named after the team's namespace.
- **fsx-lustre** (AWS): each team's volume is its own FSx for Lustre file system, made by the FSx CSI driver
  (dynamic provisioning) in the first private subnet; a security group admits Lustre's ports from the nodes.
- **filestore** (GCP): each team's volume is a Filestore instance of the configured tier on the cluster's network.
- **existing**: the cluster owner's ReadWriteMany StorageClass; nothing is created.

Volumes outlive their claims (`reclaimPolicy: Retain`) where the cluster is protected (prod); elsewhere deleting a
claim deletes its data.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.cluster.handle import ClusterHandle, aws_info
from components.config.storage import SharedFilesystemConfig
from vocabulary.labels import MANAGED_BY
from vocabulary.storage import SHARED_STORAGE_CLASS

NFS_PORT = 2049
# The POSIX user and group every access point of the team volumes writes as.
EFS_POSIX_ID = "1000"
# Lustre: the LNet port, and the ports its clients connect from (FSx user guide, "File system access control").
LUSTRE_PORTS = ((988, 988), (1018, 1023))
# The Lustre version FSx offers for new file systems with the newest client support.
LUSTRE_VERSION = "2.15"


def storage_class(
    provisioner: str, parameters: dict[str, Any], retain: bool, mount_options: list[str] | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": SHARED_STORAGE_CLASS, "labels": dict(MANAGED_BY)},
        "provisioner": provisioner,
        "parameters": parameters,
        "reclaimPolicy": "Retain" if retain else "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": provisioner != "efs.csi.aws.com",
    }
    if mount_options:
        obj["mountOptions"] = mount_options
    return obj


def efs_storage_class(file_system_id: pulumi.Input[str], retain: bool) -> dict[str, Any]:
    return storage_class(
        "efs.csi.aws.com",
        {
            "provisioningMode": "efs-ap",
            "fileSystemId": file_system_id,
            "directoryPerms": "770",
            "basePath": "/teams",
            # One stable directory per team namespace and claim: a re-created claim finds its data again, owned by
            # the same POSIX user (the access point enforces it whatever the container runs as). No
            # reuseAccessPoint: the driver keys reuse on the claim's name alone, and every team's claim has the same.
            "subPathPattern": "${.PVC.namespace}/${.PVC.name}",
            "ensureUniqueDirectory": "false",
            "uid": EFS_POSIX_ID,
            "gid": EFS_POSIX_ID,
        },
        retain,
    )


def fsx_storage_class(
    config: SharedFilesystemConfig, subnet_id: pulumi.Input[str], security_group_id: pulumi.Input[str], retain: bool
) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "subnetId": subnet_id,
        "securityGroupIds": security_group_id,
        "deploymentType": config.fsx.deployment_type,
        "fileSystemTypeVersion": LUSTRE_VERSION,
        "dataCompressionType": "LZ4",
    }
    if config.fsx.deployment_type == "PERSISTENT_2":
        parameters["perUnitStorageThroughput"] = str(config.fsx.per_unit_storage_throughput)
    return storage_class("fsx.csi.aws.com", parameters, retain, ["flock"])


def filestore_storage_class(config: SharedFilesystemConfig, network: pulumi.Input[str], retain: bool) -> dict[str, Any]:
    return storage_class("filestore.csi.storage.gke.io", {"tier": config.filestore_tier, "network": network}, retain)


def aws_security_group(
    name: str,
    handle: ClusterHandle,
    ports: tuple[tuple[int, int], ...],
    what: str,
    opts: pulumi.ResourceOptions,
    among_servers: bool = False,
) -> Any:
    """A security group admitting `ports` from the cluster's nodes, and with `among_servers` from its own members
    too (Lustre servers of one file system talk to each other on the same ports)."""
    import pulumi_aws as aws

    info = aws_info(handle)
    group = aws.ec2.SecurityGroup(name, vpc_id=info.vpc_id, description=f"{what} from the cluster's nodes", opts=opts)
    sources: list[tuple[str, pulumi.Input[str], str]] = [
        ("", info.node_security_group_id, f"{what} from the cluster's nodes")
    ]
    if among_servers:
        sources.append(("-self", group.id, f"{what} within the file system"))
    for suffix, source, description in sources:
        for low, high in ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{low}{suffix}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=low,
                to_port=high,
                description=description,
                referenced_security_group_id=source,
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=group)),
            )
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-egress",
        security_group_id=group.id,
        ip_protocol="-1",
        cidr_ipv4="0.0.0.0/0",
        description="Replies and Lustre's own traffic",
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=group)),
    )
    return group


def efs_file_system(name: str, handle: ClusterHandle, protect: bool, opts: pulumi.ResourceOptions) -> Any:
    """The file system and its mount targets; returns the file system."""
    import pulumi_aws as aws

    info = aws_info(handle)
    on_aws = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=info.aws_provider))
    group = aws_security_group(f"{name}-efs", handle, ((NFS_PORT, NFS_PORT),), "NFS", on_aws)
    keep = pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
    file_system = aws.efs.FileSystem(
        f"{name}-shared",
        encrypted=True,
        # Throughput follows use (AWS's recommendation for spiky ML reads); idle costs storage only.
        throughput_mode="elastic",
        performance_mode="generalPurpose",
        lifecycle_policies=[
            aws.efs.FileSystemLifecyclePolicyArgs(transition_to_ia="AFTER_30_DAYS"),
            aws.efs.FileSystemLifecyclePolicyArgs(transition_to_primary_storage_class="AFTER_1_ACCESS"),
        ],
        tags={"Name": f"{name}-shared"},
        opts=pulumi.ResourceOptions.merge(on_aws, keep),
    )
    for i, subnet in enumerate(info.private_subnet_ids):
        aws.efs.MountTarget(
            f"{name}-shared-{i}",
            file_system_id=file_system.id,
            subnet_id=subnet,
            security_groups=[group.id],
            # Not children of the file system: a protected parent would protect (and retain) them too.
            opts=on_aws,
        )
    return file_system
