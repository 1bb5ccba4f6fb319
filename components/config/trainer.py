"""`ml-platform:trainer`: Kubeflow Trainer v2 (TrainJob) and the platform's ClusterTrainingRuntimes."""

from __future__ import annotations

from pydantic import Field

from components.config.base import ConfigModel, ShmSize


class TrainingOperatorConfig(ConfigModel):
    enabled: bool = Field(
        False,
        description="Install the legacy Kubeflow Training Operator v1 (PyTorchJob, TFJob, ...) from its pinned "
        "standalone manifests, next to Trainer v2.",
    )


class TrainerConfig(ConfigModel):
    enabled: bool = Field(True, description="Install Kubeflow Trainer (with JobSet) and the torch-distributed runtime.")
    image: str = Field(
        "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime",
        min_length=1,
        max_length=512,
        description="Default image of the torch-distributed runtime (a TrainJob may name its own).",
    )
    shm_size: ShmSize = Field("16Gi", description="Memory /dev/shm of every training container.")
    max_restarts: int = Field(
        3,
        ge=0,
        le=100,
        description="Whole-job restarts after a failure; restarts after a spot interruption or node drain do not "
        "count.",
    )
    training_operator: TrainingOperatorConfig = Field(
        default_factory=TrainingOperatorConfig,
        description="The legacy Training Operator v1 for teams that still run PyTorchJobs.",
    )
