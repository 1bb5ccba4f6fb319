"""Custom resource definitions: the pinned CRDs (CRD_SCHEMA_DIR), loading and lookup by kind, their
OpenAPI v3 schemas converted to closed JSON Schema (fieldValidation=Strict) and the structural
validators, including ObjectMeta for custom resources.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator

from .quantities_names import _go_regex_to_python

# CRD schemas leave metadata open; the API server validates it as ObjectMeta.
_OBJECT_META_TYPES = {
    "string": ["name", "generateName", "namespace", "uid", "resourceVersion", "selfLink"],
    "array": ["finalizers", "ownerReferences", "managedFields"],
    "object": ["labels", "annotations"],
    "integer": ["generation", "deletionGracePeriodSeconds"],
    "string|null": ["creationTimestamp", "deletionTimestamp"],
}
_CR_METADATA_VALIDATOR = Draft202012Validator(
    {
        "type": "object",
        "additionalProperties": False,
        # additionalProperties applies only to the object-typed fields: labels and annotations.
        "properties": {
            field: {"type": type_.split("|"), "additionalProperties": {"type": "string"}}
            for type_, fields in _OBJECT_META_TYPES.items()
            for field in fields
        },
    }
)


class SchemaUnavailable(Exception):  # noqa: N818 - the name is the agreed API
    """A custom resource cannot be validated because no CRD directory is configured."""


def crd_schema_dir() -> pathlib.Path | None:
    """The directory of pinned upstream CRDs from ``CRD_SCHEMA_DIR``, if it is a directory."""
    value = os.environ.get("CRD_SCHEMA_DIR")
    return pathlib.Path(value) if value and pathlib.Path(value).is_dir() else None


def openapi_to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a CRD's OpenAPI v3 schema (with Kubernetes extensions) to strict JSON Schema."""
    out = {k: v for k, v in schema.items() if k != "description"}
    for key in ("properties", "patternProperties"):
        if key in out:
            out[key] = {k: openapi_to_json_schema(v) for k, v in out[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), Mapping):
            out[key] = openapi_to_json_schema(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [openapi_to_json_schema(s) for s in out[key]]
    if out.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)  # the [integer, string] pair; a single type gives clearer errors
        out["type"] = ["integer", "string"]
    if out.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if out.get("x-kubernetes-embedded-resource"):
        out["properties"] = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **out.get("properties", {}),
        }
        out["required"] = sorted({*out.get("required", []), "apiVersion", "kind"})
    if "required" in out:  # the API server applies defaults before it validates
        props = out.get("properties", {})
        out["required"] = [r for r in out["required"] if "default" not in props.get(r, {})]
    if isinstance(out.get("pattern"), str):
        out["pattern"] = _go_regex_to_python(out["pattern"])
    if out.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False  # unknown fields are rejected (fieldValidation=Strict)
    return out


def _list_map_keys(
    validator: Any, keys: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(instance, list):
        return
    item_props = schema.get("items", {}).get("properties", {})
    seen: dict[str, int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, Mapping):
            continue
        key = json.dumps([item.get(k, item_props.get(k, {}).get("default")) for k in keys])
        if key in seen:
            yield jsonschema.ValidationError(
                f"items [{seen[key]}] and [{index}] have the same list-map key "
                f"{dict(zip(keys, json.loads(key), strict=True))}"
            )
        seen.setdefault(key, index)


_CRDValidator = jsonschema.validators.extend(Draft202012Validator, {"x-kubernetes-list-map-keys": _list_map_keys})


@functools.cache
def _load_crds(path: pathlib.Path) -> tuple[dict[str, Any], ...]:
    with path.open("rb") as stream:
        docs = yaml.load_all(stream, Loader=yaml.CSafeLoader)
        return tuple(d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")


def _mentions(text: str, key: str, value: str) -> bool:
    # Cheap pre-filter so only candidate files (not all ~10 MB of CRDs) are parsed as YAML.
    pattern = rf"^[\s-]*[\"']?{key}[\"']?\s*:\s*[\"']?{re.escape(value)}[\"']?\s*,?\s*$"
    return re.search(pattern, text, re.MULTILINE) is not None


@functools.cache
def _crd_schema(crd_dir: pathlib.Path, group: str, version: str, kind: str) -> tuple[dict[str, Any] | None, str]:
    """The served version's openAPIV3Schema of the one pinned CRD for the kind, or a problem."""
    matches = [
        (path, crd)
        for path in sorted(crd_dir.rglob("*.yaml"))
        if _mentions(text := path.read_text(), "group", group) and _mentions(text, "kind", kind)
        for crd in _load_crds(path)
        if crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    ]
    if not matches:
        return None, f"(root): no CRD for kind {kind} in group {group!r} under {crd_dir}"
    schemas = {}
    for path, crd in matches:
        versions = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
        if version not in versions:
            return None, (
                f"apiVersion: {group}/{version} is not served by the {kind} CRD in "
                f"{path}; served: {', '.join(sorted(versions))}"
            )
        schemas[path] = versions[version].get("schema", {}).get("openAPIV3Schema", {})
    # The same CRD may be pinned twice (prometheus-operator and kube-prometheus-stack).
    if any(s != next(iter(schemas.values())) for s in schemas.values()):
        return None, (
            f"(root): {len(schemas)} different {kind} CRDs under {crd_dir} "
            f"({', '.join(map(str, schemas))}); point the CRD directory at one"
        )
    return next(iter(schemas.values())), ""


@functools.cache
def _crd_validator(crd_dir: pathlib.Path, group: str, version: str, kind: str) -> tuple[Any, str | None]:
    schema, problem = _crd_schema(crd_dir, group, version, kind)
    if schema is None:
        return None, problem
    return _CRDValidator(openapi_to_json_schema(schema)), None
