"""PriorityClass names: serving is never evicted for an experiment."""

from __future__ import annotations

from typing import Literal, get_args

PriorityClassName = Literal["production-serving", "training-critical", "development"]
PRIORITY_CLASS_NAMES: tuple[PriorityClassName, ...] = get_args(PriorityClassName)
