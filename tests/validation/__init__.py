"""Offline validation of Kubernetes objects and Helm values for the ml-platform tests.

One module per concern: quantities_names (Kubernetes names, labels, quantities), errors (error
paths and messages), builtin (built-in kinds), crd (pinned CRDs and their structural schemas), cel
(CEL environment and CRD rules), objects (validating one object) and helm (chart values).
tests/schemas.py re-exports what the tests import.
"""

from .builtin import BUILTIN_GROUPS, validate_builtin
from .cel import CelError, evaluate_cel, unsupported_cel_rules
from .crd import SchemaUnavailable, crd_schema_dir, openapi_to_json_schema
from .helm import FREE_FORM_KEYS, chart_values_file, unknown_helm_value_paths
from .objects import validate_custom_resource, validate_object
from .quantities_names import QUANTITY_PATTERN

__all__ = [
    "BUILTIN_GROUPS",
    "FREE_FORM_KEYS",
    "QUANTITY_PATTERN",
    "CelError",
    "SchemaUnavailable",
    "chart_values_file",
    "crd_schema_dir",
    "evaluate_cel",
    "openapi_to_json_schema",
    "unknown_helm_value_paths",
    "unsupported_cel_rules",
    "validate_builtin",
    "validate_custom_resource",
    "validate_object",
]
