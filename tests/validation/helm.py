"""Helm values: every key path we set must exist in the chart's default values.yaml."""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Collection, Mapping
from typing import Any

import yaml

# Helm values whose keys are free-form or Kubernetes-typed: the chart's defaults show only an
# example of their keys, so only the key itself is checked, not what is below it.
FREE_FORM_KEYS = frozenset(
    [
        "nodeSelector",
        "annotations",
        "labels",
        "podAnnotations",
        "podLabels",
        "additionalLabels",
        "additionalAnnotations",
        "commonLabels",
        "extraArgs",
        "extraEnv",
        "env",
        "resources",
        "affinity",
        "tolerations",
        "securityContext",
        "podSecurityContext",
        "containerSecurityContext",
    ]
)


def chart_values_file(chart: str, version: str, reference_dir: pathlib.Path) -> pathlib.Path:
    """``reference_dir/chart-values/<chart>-<version>/values.yaml``; it must exist."""
    path = reference_dir / "chart-values" / f"{chart}-{version}" / "values.yaml"
    if not path.is_file():
        raise FileNotFoundError(
            f"no default values for chart {chart} {version}: {path} is "
            "missing (is the chart pinned in the reference VERSIONS.md?)"
        )
    return path


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        return {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
    return override if override is not None else base


def _load(path: pathlib.Path) -> Any:
    with path.open("rb") as stream:
        return yaml.load(stream, Loader=yaml.CSafeLoader)


@functools.cache
def _chart_defaults(path: pathlib.Path) -> Any:
    """The chart's values, with each vendored subchart's own defaults under its name (as Helm merges them): the
    parent's values for a subchart override the subchart's defaults."""
    values = _load(path) or {}
    for sub_values in sorted(path.parent.glob("charts/*/values.yaml")):
        chart_yaml = sub_values.parent / "Chart.yaml"
        name = (_load(chart_yaml) or {}).get("name") if chart_yaml.is_file() else sub_values.parent.name
        if isinstance(values, Mapping) and name:
            values = {**values, name: _merge(_load(sub_values) or {}, values.get(name))}
    return values


def unknown_helm_value_paths(
    values: Mapping[str, Any],
    chart_values_file: pathlib.Path,
    *,
    free_form_keys: Collection[str] = FREE_FORM_KEYS,
    known_elsewhere: Collection[str] = (),
) -> list[str]:
    """Dotted key paths in ``values`` that the chart's default values.yaml (with its vendored subcharts) does not have.

    A path is accepted below a key whose default is ``{}``, null or not a map (a list or scalar),
    or whose name is in ``free_form_keys``. An empty values.yaml means the chart takes no values.
    ``known_elsewhere`` lists paths checked against another source (a template that reads a commented-out key, a
    subchart whose values are not in the reference): they and what is below them are accepted.
    """
    unknown: list[str] = []

    def walk(ours: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str) -> None:
        for key, value in ours.items():
            path = f"{prefix}{key}"
            if path in known_elsewhere:
                continue
            if key not in defaults:
                unknown.append(path)
            elif (
                isinstance(defaults[key], Mapping)
                and defaults[key]
                and key not in free_form_keys
                and isinstance(value, Mapping)
            ):
                walk(value, defaults[key], f"{path}.")

    defaults = _chart_defaults(chart_values_file.resolve())
    walk(values, defaults if isinstance(defaults, Mapping) else {}, "")
    return unknown
