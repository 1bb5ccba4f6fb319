"""Built-in kinds: the strict schemas bundled in kubernetes-validate, with the API server's
Quantity grammar, plus the name, label and annotation checks.
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
from collections.abc import Mapping
from typing import Any

import jsonschema
import kubernetes_validate
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from .errors import _format_errors, _sorted, _split_api_version
from .quantities_names import QUANTITY_PATTERN, _metadata_errors

# API groups served by kube-apiserver itself (union over the schemas bundled for 1.25-1.37).
# Built-in-ness is decided by group, so a kind removed in some version is an error there,
# never silently treated as a custom resource.
BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "autoscaling",
        "batch",
        "extensions",
        "policy",
        *(
            f"{group}.k8s.io"
            for group in [
                "admission",
                "admissionregistration",
                "apiextensions",
                "apiregistration",
                "authentication",
                "authorization",
                "certificates",
                "coordination",
                "discovery",
                "events",
                "flowcontrol.apiserver",
                "imagepolicy",
                "internal.apiserver",
                "lifecycle",
                "networking",
                "node",
                "rbac.authorization",
                "resource",
                "scheduling",
                "storage",
                "storagemigration",
            ]
        ),
    }
)


_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_SCHEMA_ROOT = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"


def _schema_dir(k8s_version: str) -> pathlib.Path:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(\.\d+)?", k8s_version)
    path = _SCHEMA_ROOT / (f"v{match[1]}.{match[2]}.0-local-strict" if match else "-")
    if not path.is_dir():
        known = sorted(p.name for p in _SCHEMA_ROOT.glob("v*-local-strict"))
        raise ValueError(
            f"kubernetes-validate has no schemas for Kubernetes {k8s_version!r}; it has {', '.join(known)}"
        )
    return path


@functools.cache
def _builtin_registry(schema_dir: pathlib.Path) -> Registry[Any]:
    definitions = json.loads((schema_dir / "_definitions.json").read_text())
    # The bundled Quantity accepts any string; use the API server's grammar (the pattern
    # applies to strings only, so numbers such as 1 still pass).
    definitions["$defs"][_QUANTITY_DEF] = {"type": ["string", "number", "null"], "pattern": QUANTITY_PATTERN}
    return Resource.from_contents(definitions) @ Registry()


@functools.cache
def _builtin_validator(schema_dir: pathlib.Path, group: str, version: str, kind: str) -> Any:
    group_part = f"{group.split('.')[0]}-" if group else ""
    path = schema_dir / f"{kind.lower()}-{group_part}{version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    # File names keep only the first label of the group; make sure it is really this group.
    gvk = {"group": group, "version": version, "kind": kind}
    if gvk not in schema.get("x-kubernetes-group-version-kind", []):
        return None
    validator_class = jsonschema.validators.validator_for(schema, default=Draft202012Validator)
    return validator_class(schema, registry=_builtin_registry(schema_dir))


def validate_builtin(obj: Mapping[str, Any], k8s_version: str) -> list[str]:
    """All strict-schema, quantity and name errors of a built-in object for e.g. ``"1.35"``."""
    split = _split_api_version(obj)
    if isinstance(split, str):
        return [split]
    group, version, kind = split
    validator = _builtin_validator(_schema_dir(k8s_version), group, version, kind)
    if validator is None:
        return [
            (
                f"(root): Kubernetes {k8s_version} has no built-in kind {kind} in "
                f"{obj['apiVersion']} (unknown kind, or API version removed)"
            )
        ]
    # RBAC names are path segments (e.g. system:aggregate-to-edit), not DNS names.
    rule = (
        "path-segment"
        if group == "rbac.authorization.k8s.io"
        else {("", "Namespace"): "label", ("", "Service"): "dns1035"}.get((group, kind), "subdomain")
    )
    return _sorted(_format_errors(validator.iter_errors(obj)) + _metadata_errors(obj, rule))
