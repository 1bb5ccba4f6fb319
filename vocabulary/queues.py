"""Kueue names every layer agrees on: the cohort the teams' ClusterQueues share, the flavors, the queue users
submit to, and the labels Kueue reads on a job."""

from __future__ import annotations

# Every team's ClusterQueue is in this cohort: idle GPUs of one team are lent to the others and reclaimed.
COHORT = "ml-platform"
# The ClusterQueue that holds the GPUs no team is promised, with no LocalQueue: it only lends them to the cohort,
# so idle capacity is there to borrow. No team may take its name (a team's ClusterQueue is named after the team).
SPARE_QUEUE = "ml-platform-spare"
# CPU and memory of every workload are counted in this flavor (no node labels: any node).
CPU_FLAVOR = "default"
# The LocalQueue in each team's namespace. Kueue's LocalQueueDefaulting sends a job without a queue label to the
# namespace's LocalQueue of this name.
LOCAL_QUEUE = "default"
# What a job carries: the LocalQueue it is submitted to, and its WorkloadPriorityClass.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
WORKLOAD_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
# On a job Kueue admits as an elastic workload: a RayCluster whose autoscaler adds and removes workers.
ELASTIC_JOB_ANNOTATION = "kueue.x-k8s.io/elastic-job"
