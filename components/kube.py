"""Registering what in-cluster layers build: Kubernetes objects as plain dicts, and pinned Helm charts.

- `register(obj, opts)`: one object dict as a Pulumi resource, named by `logical_name` (one scheme for every
  layer), as the typed pulumi-kubernetes class of its kind (custom resources as `CustomResource`).
- `helm_release(name, chart, values, opts)`: a chart from `components/versions.py` with the settings every
  release shares.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
from collections.abc import Iterable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.versions import HelmChart
from vocabulary.namespaces import KUBERNETES_SYSTEM_NAMESPACES

# Short prefixes of the logical names (kubectl's short names where it has one); other kinds use the lowercase kind.
SHORT_KIND = {
    "Namespace": "ns",
    "StorageClass": "sc",
    "ValidatingAdmissionPolicy": "vap",
    "ValidatingAdmissionPolicyBinding": "vapb",
    "MutatingAdmissionPolicy": "map",
    "MutatingAdmissionPolicyBinding": "mapb",
}
# Groups without a dot that pulumi-kubernetes has a module for; dotted built-in groups end in .k8s.io.
_BUILTIN_GROUPS = ("apps", "autoscaling", "batch", "policy")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
# The provider plugin a custom resource registered without the SDK's class must ask for (the SDK's own version).
_PROVIDER_VERSION = importlib.metadata.version("pulumi_kubernetes")


def logical_name(obj: dict[str, Any]) -> str:
    """`<short kind>-<name>`, or `<short kind>-<namespace>/<name>` for namespaced objects: stable, unique per kind
    and namespace ('/' never appears in either name), readable in a plan."""
    meta = obj["metadata"]
    kind = SHORT_KIND.get(obj["kind"], obj["kind"].lower())
    namespace = meta.get("namespace")
    return f"{kind}-{namespace}/{meta['name']}" if namespace else f"{kind}-{meta['name']}"


@functools.cache
def _typed_class(api_version: str, kind: str) -> type[pulumi.CustomResource] | None:
    """pulumi-kubernetes' class for a built-in kind (`storage.k8s.io/v1` StorageClass -> k8s.storage.v1)."""
    group, _, version = api_version.rpartition("/")
    if group == "":
        module = "core"
    elif group in _BUILTIN_GROUPS:
        module = group
    elif group.endswith(".k8s.io"):
        module = group.split(".")[0]
    else:
        return None
    try:
        cls = getattr(importlib.import_module(f"pulumi_kubernetes.{module}.{version}"), kind, None)
    except ImportError:
        return None
    return cls if isinstance(cls, type) and issubclass(cls, pulumi.CustomResource) else None


def register(obj: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """One object dict as a Pulumi resource. Top-level fields become the class's arguments (camelCase to
    snake_case); nested dicts go as written (Kubernetes field names)."""
    fields = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    cls = _typed_class(obj["apiVersion"], obj["kind"])
    if cls is None:
        if set(fields) <= {"metadata", "spec"}:
            return k8s.apiextensions.CustomResource(
                logical_name(obj), api_version=obj["apiVersion"], kind=obj["kind"], **fields, opts=opts
            )
        return _CustomResourceWithFields(obj, opts)
    return cls(logical_name(obj), **{_CAMEL.sub("_", k).lower(): v for k, v in fields.items()}, opts=opts)


class _CustomResourceWithFields(k8s.apiextensions.CustomResource):
    """A custom resource with top-level fields besides spec (a WorkloadPriorityClass's `value`): the Python
    `CustomResource` takes only `spec`, the provider takes any field (the Node SDK's `otherFields`)."""

    def __init__(self, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        typ = f"kubernetes:{obj['apiVersion']}:{obj['kind']}"
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=_PROVIDER_VERSION))
        pulumi.CustomResource.__init__(self, typ, logical_name(obj), dict(obj), opts)


def register_all(objects: Iterable[dict[str, Any]], opts: pulumi.ResourceOptions) -> list[pulumi.CustomResource]:
    return [register(obj, opts) for obj in objects]


def release_args(chart: HelmChart) -> dict[str, Any]:
    """Chart, version and a fixed release name (Pulumi would otherwise add a random suffix)."""
    args: dict[str, Any] = {
        "name": chart.name,
        "chart": chart.chart_ref,
        "version": chart.version,
        "namespace": chart.namespace,
        # The platform creates the namespaces it labels (Pod Security) itself; a chart's own namespace Helm creates.
        "create_namespace": chart.namespace not in KUBERNETES_SYSTEM_NAMESPACES,
        # A failed install is removed and a failed upgrade rolled back, so the next `pulumi up` starts clean.
        "atomic": True,
        "cleanup_on_fail": True,
        "timeout": 600,
        # Helm keeps one Secret per revision; Pulumi's default keeps them all.
        "max_history": 10,
    }
    if not chart.is_oci:
        args["repository_opts"] = k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository)
    return args


def helm_release(
    name: str, chart: HelmChart, values: dict[str, Any], opts: pulumi.ResourceOptions, **settings: Any
) -> k8s.helm.v3.Release:
    """A pinned chart from `components/versions.py`; `settings` override or add Release arguments (skip_crds, ...)."""
    return k8s.helm.v3.Release(name, **{**release_args(chart), **settings}, values=values, opts=opts)
