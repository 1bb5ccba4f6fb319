"""Kueue names every layer agrees on: the cohort the teams' ClusterQueues share, the flavors, the queue users
submit to, and the labels Kueue reads on a job."""

from __future__ import annotations

# Every team's ClusterQueue is in this cohort: idle GPUs of one team are lent to the others and reclaimed.
COHORT = "ml-platform"
# CPU and memory of every workload are counted in this flavor (no node labels: any node).
CPU_FLAVOR = "default"
# The LocalQueue in each team's namespace. Kueue's LocalQueueDefaulting sends a job without a queue label to the
# namespace's LocalQueue of this name.
LOCAL_QUEUE = "default"
# What a job carries: the LocalQueue it is submitted to, and its WorkloadPriorityClass.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
WORKLOAD_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
