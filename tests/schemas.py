"""Offline validation of Kubernetes objects and Helm values for the ml-platform tests.

Built-in kinds use the strict schemas bundled in kubernetes-validate plus the checks they lack
(quantities, DNS-1123 names, labels). Custom resources use the pinned upstream CRDs
(CRD_SCHEMA_DIR), converted to closed JSON Schema as with fieldValidation=Strict, and then their
CEL rules (x-kubernetes-validations, except transition rules on oldSelf) with the cel-expr-python
engine plus the Kubernetes CEL library functions it lacks. Helm values: every key path we set must
exist in the chart's default values.yaml.

The code lives in the package tests/validation/, one module per concern (see its __init__); this
module re-exports the names the tests import from it.
"""

from __future__ import annotations

from validation import (
    BUILTIN_GROUPS,
    CelError,
    SchemaUnavailable,
    chart_values_file,
    crd_schema_dir,
    evaluate_cel,
    unknown_helm_value_paths,
    unsupported_cel_rules,
    validate_builtin,
    validate_custom_resource,
    validate_object,
)
from validation.cel import _cel_program  # the tests read its cache statistics

__all__ = [
    "BUILTIN_GROUPS",
    "CelError",
    "SchemaUnavailable",
    "_cel_program",
    "chart_values_file",
    "crd_schema_dir",
    "evaluate_cel",
    "unknown_helm_value_paths",
    "unsupported_cel_rules",
    "validate_builtin",
    "validate_custom_resource",
    "validate_object",
]
