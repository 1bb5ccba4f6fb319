"""Names the storage layer, the teams' namespaces and the workload defaults share."""

from __future__ import annotations

# The StorageClass of the platform's shared filesystem (EFS, FSx for Lustre or Filestore).
SHARED_STORAGE_CLASS = "team-shared"
# In every team namespace: the ReadWriteMany volume for training data, and where the platform's runtimes mount it.
TEAM_VOLUME_CLAIM = "team-data"
TEAM_VOLUME_MOUNT = "/mnt/team-data"
# In every team namespace: the ServiceAccount whose pods reach the team's checkpoint prefix (EKS Pod Identity,
# GKE Workload Identity), and the ConfigMap that says where (CHECKPOINT_URI).
CHECKPOINT_SERVICE_ACCOUNT = "checkpoints"
CHECKPOINT_CONFIG = "checkpoints"
CHECKPOINT_URI_KEY = "CHECKPOINT_URI"
# Each team's objects live under teams/<team>/ in the stack's bucket.
CHECKPOINT_PREFIX = "teams/"
