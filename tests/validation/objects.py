"""Validation of one object: a built-in kind (decided by API group), or a custom resource against
its pinned CRD (structural schema, then CEL rules).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from .builtin import BUILTIN_GROUPS, validate_builtin
from .cel import _blocks_cel, _cel_errors, _crd_cel_rules
from .crd import _CR_METADATA_VALIDATOR, SchemaUnavailable, _crd_validator, crd_schema_dir
from .errors import _format_errors, _sorted, _split_api_version
from .quantities_names import _metadata_errors


def validate_custom_resource(obj: Mapping[str, Any], crd_dir: pathlib.Path | None = None) -> list[str]:
    """All errors of a custom resource against its pinned CRD: OpenAPI schema, then CEL rules.

    CEL rules (``x-kubernetes-validations`` without ``oldSelf``) run as the API server runs them:
    on the object after structural defaulting, and only when the schema errors do not block them
    (a wrong type, enum, required field, maximum length/items/properties, unknown field; errors
    such as a pattern or minimum do not block). A blocked object gets no CEL errors, and no note
    saying so: fix the schema errors first. A failed rule reads ``<path>: <message> (CEL)``; a rule
    the engine cannot compile is an error too, never a silent pass (see unsupported_cel_rules).
    """
    crd_dir = crd_dir or crd_schema_dir()
    if crd_dir is None or not crd_dir.is_dir():
        raise SchemaUnavailable(
            f"no CRD directory ({crd_dir}): set CRD_SCHEMA_DIR to the directory of pinned "
            "upstream CRDs, e.g. CRD_SCHEMA_DIR=../shared/reference/crds"
        )
    split = _split_api_version(obj)
    if isinstance(split, str):
        return [split]
    group, version, kind = split
    validator, problem = _crd_validator(crd_dir.resolve(), group, version, kind)
    if validator is None:
        return [str(problem)]
    schema_errors = list(validator.iter_errors(obj))
    errors = _format_errors(schema_errors)
    errors += _format_errors(_CR_METADATA_VALIDATOR.iter_errors(obj.get("metadata", {})), ("metadata",))
    rules = _crd_cel_rules(crd_dir.resolve(), group, version, kind)
    if rules is not None and not any(_blocks_cel(error) for error in schema_errors):
        errors += _cel_errors(obj, *rules)
    return _sorted(errors + _metadata_errors(obj, "subdomain"))


def validate_object(obj: Mapping[str, Any], k8s_version: str, crd_dir: pathlib.Path | None = None) -> list[str]:
    """Validate a built-in object (decided by API group) or else a custom resource."""
    split = _split_api_version(obj)
    if isinstance(split, str):
        return [split]
    if split[0] in BUILTIN_GROUPS:
        return validate_builtin(obj, k8s_version)
    return validate_custom_resource(obj, crd_dir)
