"""The GPU catalogue: the facts the config rules, the cluster layer and the docs share."""

from __future__ import annotations

import pytest

from components.catalog import CATALOG, GPU_MODELS


def test_aws_sells_a100_only_as_8_gpu_p4d_p4de() -> None:
    assert CATALOG.gpu_counts("aws", "a100-40gb") == [8]
    assert CATALOG.gpu_counts("aws", "a100-80gb") == [8]
    assert CATALOG.shape("aws", "a100-40gb", 8).instance_type == "p4d.24xlarge"  # type: ignore[union-attr]
    assert CATALOG.shape("aws", "a100-80gb", 8).instance_type == "p4de.24xlarge"  # type: ignore[union-attr]


def test_aws_h100_is_p5_4xlarge_or_48xlarge() -> None:
    assert CATALOG.gpu_counts("aws", "h100-80gb") == [1, 8]
    assert CATALOG.shape("aws", "h100-80gb", 1).instance_type == "p5.4xlarge"  # type: ignore[union-attr]
    assert CATALOG.shape("aws", "h100-80gb", 8).instance_type == "p5.48xlarge"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("gpu", "family", "accelerator"),
    [
        ("a100-40gb", "a2-highgpu", "nvidia-tesla-a100"),
        ("a100-80gb", "a2-ultragpu", "nvidia-a100-80gb"),
        ("h100-80gb", "a3-highgpu", "nvidia-h100-80gb"),
    ],
)
def test_gcp_a2_a3_machine_types_in_1_2_4_8(gpu: str, family: str, accelerator: str) -> None:
    assert CATALOG.gpu_counts("gcp", gpu) == [1, 2, 4, 8]
    for n in (1, 2, 4, 8):
        shape = CATALOG.shape("gcp", gpu, n)
        assert shape is not None
        assert shape.instance_type == f"{family}-{n}g"
        assert shape.accelerator_type == accelerator


def test_cheap_dev_gpus_exist() -> None:
    assert "l4" in CATALOG.gpus_on("aws") and "l4" in CATALOG.gpus_on("gcp")
    assert "a10g" in CATALOG.gpus_on("aws") and "a10g" not in CATALOG.gpus_on("gcp")
    assert "t4" in CATALOG.gpus_on("aws") and "t4" in CATALOG.gpus_on("gcp")


def test_mig_profiles_differ_by_exact_model() -> None:
    a100_40 = {p.name for p in GPU_MODELS["a100-40gb"].mig_profiles}
    a100_80 = {p.name for p in GPU_MODELS["a100-80gb"].mig_profiles}
    h100 = {p.name for p in GPU_MODELS["h100-80gb"].mig_profiles}
    assert "1g.5gb" in a100_40 and "1g.5gb" not in a100_80
    assert "7g.80gb" in a100_80 and "7g.80gb" not in a100_40
    assert a100_80 == h100
    assert not GPU_MODELS["l4"].supports_mig and not GPU_MODELS["t4"].supports_mig


def test_mig_resource_names_and_slices() -> None:
    profile = GPU_MODELS["a100-80gb"].mig_profile("1g.10gb")
    assert profile is not None and profile.resource_name == "nvidia.com/mig-1g.10gb" and profile.per_gpu == 7
    assert GPU_MODELS["a100-40gb"].mig_profile("3g.20gb").per_gpu == 2  # type: ignore[union-attr]


def test_every_shape_is_unique_and_names_a_known_gpu() -> None:
    keys = [(s.cloud, s.gpu, s.gpus_per_node) for s in CATALOG.shapes]
    assert len(keys) == len(set(keys))
    assert all(s.gpu in GPU_MODELS and s.instance_types for s in CATALOG.shapes)
    assert all(s.accelerator_type for s in CATALOG.shapes if s.cloud == "gcp")


def test_existing_clusters_accept_any_catalogued_gpu() -> None:
    assert CATALOG.gpus_on("existing") == sorted(GPU_MODELS)
    assert CATALOG.shape("existing", "h100-80gb", 4) is not None
    assert CATALOG.shape("existing", "h100-80gb", 3) is None
