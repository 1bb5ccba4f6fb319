"""Ids of the rules that the policy pack, check.py and the cluster's admission policies all enforce."""

from __future__ import annotations

SHM_RULE = "gpu-shm-memory-volume"
LIMITS_RULE = "gpu-limits-match-requests"
SHM_PATH = "/dev/shm"
