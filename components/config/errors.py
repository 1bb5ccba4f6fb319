"""Config problems: where (stack key path), what was there, what is allowed; all of them in one error."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from components.config.base import NAMESPACE


class _Missing:
    def __repr__(self) -> str:
        return "missing"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Problem:
    """One config problem: where (stack key path), what was there, what is allowed."""

    path: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        if self.value is MISSING:
            got = "missing"
        elif "kubeconfig" in self.path.lower() and self.value is not None:
            got = "got [secret]"  # error output lands in CI logs: never echo credentials
        else:
            text = json.dumps(self.value, default=str)
            got = f"got {text if len(text) <= 120 else text[:117] + '...'}"
        return f"{self.path}: {got}; {self.allowed}"


class ConfigError(Exception):
    def __init__(self, problems: Iterable[Problem], stack_file: str = "the stack file") -> None:
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problem(s) in {stack_file}; nothing was deployed:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


def key_path(loc: Iterable[int | str]) -> str:
    """('gpuPools', 1, 'maxNodes') -> 'ml-platform:gpuPools[1].maxNodes'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return f"{NAMESPACE}:{text}"
