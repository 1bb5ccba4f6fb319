"""`ml-platform:storage`: a shared filesystem with a ReadWriteMany volume per team, and the checkpoint bucket."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from components.config.base import (
    DNS_SUBDOMAIN,
    QUANTITY,
    QUANTITY_LIMIT,
    ConfigModel,
    number_as_quantity,
    quantity_value,
)

FilesystemType = Literal["efs", "fsx-lustre", "filestore", "existing", "none"]
FsxDeploymentType = Literal["PERSISTENT_2", "SCRATCH_2"]
FilestoreTier = Literal["standard", "premium", "enterprise", "zonal"]


class FsxSettings(ConfigModel):
    deployment_type: FsxDeploymentType = Field(
        "PERSISTENT_2",
        description="PERSISTENT_2 (replicated, survives a server failure) or SCRATCH_2 (cheaper, not replicated).",
    )
    per_unit_storage_throughput: Literal[125, 250, 500, 1000] = Field(
        125, description="MB/s per TiB (PERSISTENT_2 only)."
    )


class SharedFilesystemConfig(ConfigModel):
    type: FilesystemType | None = Field(
        None,
        description="efs (aws default), fsx-lustre (aws), filestore (gcp default), existing (a ReadWriteMany "
        "StorageClass of the cluster's owner; `existing` clusters) or none.",
    )
    size: str | None = Field(
        None,
        pattern=QUANTITY,
        description="Each team's volume. Defaults: efs 100Gi (nominal: EFS grows and bills by use), fsx-lustre "
        "1200Gi (its minimum), filestore 1Ti, existing 100Gi.",
    )
    storage_class_name: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="type existing: the cluster's ReadWriteMany StorageClass.",
    )
    fsx: FsxSettings = Field(default_factory=FsxSettings, description="FSx for Lustre settings (type fsx-lustre).")
    filestore_tier: FilestoreTier = Field(
        "standard", description="Filestore tier (type filestore); each team's volume is one instance."
    )

    @field_validator("size", mode="before")
    @classmethod
    def _size_number(cls, value: Any) -> Any:
        return number_as_quantity(value)

    @field_validator("size")
    @classmethod
    def _size_bounds(cls, value: str | None) -> str | None:
        if value is not None and re.fullmatch(QUANTITY, value) and quantity_value(value) >= QUANTITY_LIMIT:
            raise ValueError("too large for a Kubernetes quantity (under 2^63)")
        return value


class CheckpointsConfig(ConfigModel):
    enabled: bool | None = Field(
        None, description="A checkpoint bucket for the stack (default: on for aws and gcp; existing: off)."
    )
    noncurrent_version_days: int = Field(
        30, ge=1, le=3650, description="Days an overwritten or deleted checkpoint's old version is kept."
    )
    newer_noncurrent_versions: int = Field(
        3, ge=0, le=100, description="Old versions of an object kept regardless of age (0: none beyond the days)."
    )


class StorageConfig(ConfigModel):
    shared_filesystem: SharedFilesystemConfig = Field(
        default_factory=SharedFilesystemConfig, description="Training data: a ReadWriteMany volume per team."
    )
    checkpoints: CheckpointsConfig = Field(
        default_factory=CheckpointsConfig,
        description="Checkpoints: a versioned, encrypted bucket; each team reaches its prefix only.",
    )
