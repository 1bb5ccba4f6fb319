"""Rules of `ml-platform:storage` that need the cloud: which filesystems exist where, their minimum sizes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

from components.config.base import QUANTITY_LIMIT, byte_quantity, quantity_value
from components.config.errors import Problem, key_path
from components.config.platform import FILESYSTEMS_BY_CLOUD, PlatformConfig

GI = Decimal(2**30)
# The smallest volume each provisioner creates: FSx for Lustre SSD 1.2 TiB (the driver rounds up from there);
# Filestore per tier (Google's "Service tiers": basic HDD 1 TiB, basic SSD 2.5 TiB, zonal and enterprise 1 TiB).
FSX_MINIMUM_GI = 1200
FILESTORE_MINIMUM_GI = {"standard": 1024, "premium": 2560, "enterprise": 1024, "zonal": 1024}
# Bucket names the clouds refuse, from the start of the name the cluster's name begins (S3's reserved prefixes; GCS
# refuses "goog" at the start and "google" or a close misspelling anywhere).
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
GCS_FORBIDDEN = re.compile(r"^goog|g[o0][o0]gle")


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
    yield from _settings_of_another_type(config)
    yield from _bucket_name_rules(config)
    if shared.type not in ("none", None) and shared.size is not None:
        for i, team in enumerate(config.teams):
            total = quantity_value(team.resources.storage) + quantity_value(shared.size)
            if total >= QUANTITY_LIMIT:
                yield Problem(
                    key_path(["teams", i, "resources", "storage"]),
                    team.resources.storage,
                    f"at most {byte_quantity(QUANTITY_LIMIT - quantity_value(shared.size) - 1)}: the team volume "
                    f"({shared.size}) comes on top, and the sum must stay under 2^63",
                )
    if config.storage.checkpoints.enabled and cloud == "existing":
        yield Problem(
            key_path(["storage", "checkpoints", "enabled"]),
            True,
            "false on an existing cluster: the bucket and its per-team identities need a cloud (aws or gcp)",
        )


def _settings_of_another_type(config: PlatformConfig) -> Iterator[Problem]:
    """Settings of a filesystem the stack does not use would be silently ignored: say so."""
    shared = config.storage.shared_filesystem
    where = ["storage", "sharedFilesystem"]
    given = shared.model_fields_set
    if "fsx" in given and shared.type != "fsx-lustre":
        yield Problem(
            key_path([*where, "fsx"]), "set", f"unset: FSx settings apply to type fsx-lustre, not {shared.type}"
        )
    if "filestore_tier" in given and shared.type != "filestore":
        yield Problem(
            key_path([*where, "filestoreTier"]),
            shared.filestore_tier,
            f"unset: it applies to type filestore, not {shared.type}",
        )
    if "size" in given and shared.type == "none":
        yield Problem(key_path([*where, "size"]), shared.size, "unset: type none makes no volumes")
    fsx = shared.fsx
    if "per_unit_storage_throughput" in fsx.model_fields_set and fsx.deployment_type != "PERSISTENT_2":
        yield Problem(
            key_path([*where, "fsx", "perUnitStorageThroughput"]),
            fsx.per_unit_storage_throughput,
            f"unset: deployment type {fsx.deployment_type} has no per-unit throughput (PERSISTENT_2 only)",
        )


def _bucket_name_rules(config: PlatformConfig) -> Iterator[Problem]:
    """The checkpoint bucket's name begins with the cluster's name: one the cloud refuses fails at `pulumi up`."""
    if not config.storage.checkpoints.enabled:
        return
    name, cloud = config.cluster.name, config.cluster.cloud
    if cloud == "aws" and name.startswith(S3_RESERVED_PREFIXES):
        yield Problem(
            key_path(["cluster", "name"]),
            name,
            "a name that does not begin with " + ", ".join(S3_RESERVED_PREFIXES) + " (it begins the S3 checkpoint "
            "bucket's name, and S3 reserves these), or storage.checkpoints.enabled false",
        )
    if cloud == "gcp" and GCS_FORBIDDEN.search(name):
        yield Problem(
            key_path(["cluster", "name"]),
            name,
            'a name without "google" (or a look-alike) and not beginning with "goog": it begins the GCS checkpoint '
            "bucket's name, which Cloud Storage refuses otherwise; or storage.checkpoints.enabled false",
        )


def workload_warnings(config: PlatformConfig) -> list[str]:
    """Allowed, but worth a line in the plan."""
    warnings = []
    kserve = config.kserve
    if kserve.enabled and config.cluster.cloud == "existing":
        warnings.append(
            "ml-platform:kserve: installs cert-manager (release cert-manager in namespace cert-manager, with its "
            "CRDs); if the cluster already runs cert-manager, the install fails on its CRDs: set kserve.enabled "
            "false, or remove the other first"
        )
    if kserve.enabled and not kserve.runtimes:
        warnings.append(
            "ml-platform:kserve.runtimes: empty: every ClusterServingRuntime is disabled, so InferenceServices need "
            "a ServingRuntime of their own"
        )
    return warnings
