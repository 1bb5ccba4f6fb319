"""`Storage` (`ml-platform:storage`): the shared filesystem's StorageClass (and its cloud resources), and the
checkpoint bucket with each team's identity. The teams' claims, ServiceAccounts and ConfigMaps are namespace
objects: the Teams layer registers them (components/storage/team_objects.py), after this layer."""

from __future__ import annotations

from typing import Any

import pulumi

from components.cluster.handle import aws_info, gcp_info
from components.config.storage import StorageConfig
from components.kube import register
from components.layer import CHECKPOINT_BUCKET_URI, SHARED_STORAGE, Layer
from components.storage.filesystems import (
    LUSTRE_PORTS,
    aws_security_group,
    efs_file_system,
    efs_storage_class,
    filestore_storage_class,
    fsx_storage_class,
)


class Storage(Layer[StorageConfig]):
    TYPE = "ml-platform:storage:Storage"

    def build(self) -> dict[str, Any]:
        outputs: dict[str, Any] = {"sharedFilesystem": self.section.shared_filesystem.type, "checkpoints": None}
        if (storage_class := self.storage_class()) is not None:
            self.handle.provide(SHARED_STORAGE, register(storage_class, self.in_cluster()))
        if self.section.checkpoints.enabled:
            uri = self.checkpoint_bucket()
            self.handle.publish(CHECKPOINT_BUCKET_URI, uri)
            outputs["checkpoints"] = uri
        return outputs

    def storage_class(self) -> dict[str, Any] | None:
        shared, handle = self.section.shared_filesystem, self.handle
        name, retain = handle.name, handle.platform.protect
        match shared.type:
            case "efs":
                file_system = efs_file_system(name, handle, retain, pulumi.ResourceOptions(parent=self))
                return efs_storage_class(file_system.id, retain)
            case "fsx-lustre":
                info = aws_info(handle)
                on_aws = pulumi.ResourceOptions(parent=self, provider=info.aws_provider)
                group = aws_security_group(f"{name}-fsx", handle, LUSTRE_PORTS, "Lustre", on_aws, among_servers=True)
                return fsx_storage_class(shared, info.private_subnet_ids[0], group.id, retain)
            case "filestore":
                return filestore_storage_class(shared, gcp_info(handle).network, retain)
        # existing: the owner's class; none: no volumes.
        return None

    def checkpoint_bucket(self) -> pulumi.Output[str]:
        handle, config = self.handle, self.section.checkpoints
        facts, opts = handle.platform, pulumi.ResourceOptions(parent=self)
        if handle.cloud == "aws":
            from components.storage.s3_checkpoints import s3_checkpoints

            return s3_checkpoints(handle.name, config, aws_info(handle), facts.teams, facts.protect, opts)
        from components.storage.gcs_checkpoints import gcs_checkpoints

        return gcs_checkpoints(
            handle.name, handle.region or "", config, gcp_info(handle), facts.teams, facts.protect, opts
        )
