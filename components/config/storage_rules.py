"""Rules of `ml-platform:storage` that need the cloud: which filesystems exist where, their minimum sizes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from components.config.base import quantity_value
from components.config.errors import Problem, key_path
from components.config.platform import FILESYSTEMS_BY_CLOUD, PlatformConfig

GI = Decimal(2**30)
# The smallest volume each provisioner creates: FSx for Lustre SSD 1.2 TiB (the driver rounds up from there);
# Filestore per tier (Google's "Service tiers": basic HDD 1 TiB, basic SSD 2.5 TiB, zonal and enterprise 1 TiB).
FSX_MINIMUM_GI = 1200
FILESTORE_MINIMUM_GI = {"standard": 1024, "premium": 2560, "enterprise": 1024, "zonal": 1024}


def storage_rules(config: PlatformConfig) -> Iterator[Problem]:
    cloud = config.cluster.cloud
    shared = config.storage.shared_filesystem
    where = ["storage", "sharedFilesystem"]
    allowed = FILESYSTEMS_BY_CLOUD[cloud]
    if shared.type not in allowed:
        yield Problem(key_path([*where, "type"]), shared.type, f"on cloud {cloud}: " + " or ".join(allowed))
        return
    if shared.type == "existing" and shared.storage_class_name is None:
        yield Problem(
            key_path([*where, "storageClassName"]), None, "the cluster's ReadWriteMany StorageClass (type existing)"
        )
    if shared.type != "existing" and shared.storage_class_name is not None:
        yield Problem(
            key_path([*where, "storageClassName"]),
            shared.storage_class_name,
            f"unset: type {shared.type} makes its own StorageClass (storageClassName is for type existing)",
        )
    size_gi = quantity_value(shared.size or "0") / GI
    minimum = {"fsx-lustre": FSX_MINIMUM_GI, "filestore": FILESTORE_MINIMUM_GI[shared.filestore_tier]}.get(
        shared.type or ""
    )
    if minimum is not None and size_gi < minimum:
        what = "FSx for Lustre" if shared.type == "fsx-lustre" else f"Filestore tier {shared.filestore_tier}"
        yield Problem(key_path([*where, "size"]), shared.size, f"at least {minimum}Gi: the smallest {what} volume")
    if shared.type not in ("none", None) and size_gi < 1:
        yield Problem(key_path([*where, "size"]), shared.size, "at least 1Gi")
    if config.storage.checkpoints.enabled and cloud == "existing":
        yield Problem(
            key_path(["storage", "checkpoints", "enabled"]),
            True,
            "false on an existing cluster: the bucket and its per-team identities need a cloud (aws or gcp)",
        )
