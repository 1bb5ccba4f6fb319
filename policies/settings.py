"""Policy config files (policies/config/<stack>.json) -> rule Settings, in Pulumi's policy-config format:
`{"all": <level>, "<rule-id>": <level> | {"enforcementLevel": <level>, <property>: <value>}}`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from rules import RULES, Enforcement, Settings

LEVELS = ("advisory", "mandatory", "remediate", "disabled")


def settings_from_config(config: Mapping[str, Any]) -> Settings:
    default = config.get("all")
    enforcement: dict[str, Enforcement] = {}
    properties: dict[str, Any] = {}
    for rule in RULES:
        entry = config.get(rule.id)
        level = entry.get("enforcementLevel") if isinstance(entry, Mapping) else entry
        chosen = level or default
        if chosen is not None:
            if chosen not in LEVELS:
                raise ValueError(f"{rule.id}: enforcement level {chosen!r}; allowed: {', '.join(LEVELS)}")
            # check.py cannot fix files: a rule the pack remediates is mandatory here.
            enforcement[rule.id] = cast(Enforcement, "mandatory" if chosen == "remediate" else chosen)
        if isinstance(entry, Mapping):
            properties.update({k: v for k, v in entry.items() if k != "enforcementLevel"})
    return Settings(
        shm_min_size=str(properties.get("shmMinSize", "8Gi")),
        environment=str(properties.get("environment", "dev")),
        enforcement=enforcement,
    )


def load_settings(path: Path) -> Settings:
    return settings_from_config(json.loads(path.read_text()))
