"""Mount paths as the container runtime reads them, and the volumes mounts name.

The API server keeps a `mountPath` as written (it only rejects an exact duplicate in one container), the kubelet
passes it on unchanged (a relative path gets a leading "/"), and the container runtime compares mount destinations
after Go's `filepath.Clean` (containerd's and CRI-O's `mountSet[filepath.Clean(...)]`): `/dev/shm/`, `/dev/shm//`,
`//dev/shm`, `/dev/./shm` and `dev/shm` all replace the runtime's 64 MB /dev/shm.

A path with a `..` segment is not resolved: the admission CEL cannot (no fold over segments), and both layers must
agree. Such a path that names both `dev` and `shm` may be /dev/shm: it must then be memory-backed like a /dev/shm
mount, but never counts as one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from vocabulary.policy_rules import SHM_PATH

from .values import get, mapping

ShmPath = Literal["shm", "maybe", "other"]
SHM_SEGMENTS = SHM_PATH.strip("/").split("/")


def clean_path(path: str) -> str:
    """Go's path.Clean of a mount path made absolute as the kubelet does: the runtime's view of it."""
    parts: list[str] = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


def shm_path(path: Any) -> ShmPath:
    """ "shm" when `path` is /dev/shm for the runtime, "maybe" for an unresolved `..` path that may be, else "other"."""
    if not isinstance(path, str):
        return "other"
    parts = path.split("/")
    if ".." in parts:
        return "maybe" if all(s in parts for s in SHM_SEGMENTS) else "other"
    return "shm" if [p for p in parts if p not in ("", ".")] == SHM_SEGMENTS else "other"


def mount_path(mount: Any) -> Any:
    return mapping(mount).get("mountPath")


def volumes_named(volumes: Sequence[Any], name: Any) -> list[Mapping[str, Any]]:
    """Every volume called `name` (the API server rejects duplicates, but a template may still have them)."""
    if not isinstance(name, str) or not name:
        return []
    return [mapping(v) for v in volumes if mapping(v).get("name") == name]


def is_memory_backed(volume: Mapping[str, Any] | None) -> bool:
    return volume is not None and get(volume, "emptyDir", "medium") == "Memory"


def volume_kind(volume: Mapping[str, Any]) -> str:
    """The volume source's field (emptyDir, hostPath, ...): how a finding names it."""
    return next((str(k) for k in volume if k != "name"), "unknown")
