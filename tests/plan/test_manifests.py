"""Every Kubernetes object and custom resource a stack declares passes strict schema validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import plan_of
from schemas import BUILTIN_GROUPS, crd_schema_dir, validate_builtin, validate_custom_resource
from tools.plan import write_plan


def _is_builtin(obj: dict[str, object]) -> bool:
    api_version = str(obj["apiVersion"])
    return (api_version.split("/")[0] if "/" in api_version else "") in BUILTIN_GROUPS


def test_every_manifest_written_by_the_plan_validates_strictly(stack: str, tmp_path: Path) -> None:
    plan = plan_of(stack)
    version = json.loads(plan.stack.config["ml-platform:cluster"]).get("kubernetesVersion", "1.35")
    files = write_plan(plan, tmp_path)
    assert files, "every stack declares at least the platform namespace"
    assert json.loads((tmp_path / "resources.json").read_text())
    custom = []
    for path in files:
        obj = yaml.safe_load(path.read_text())
        if _is_builtin(obj):
            assert validate_builtin(obj, version) == [], path.name
        else:
            custom.append((path, obj))
    if custom and crd_schema_dir() is None:
        pytest.skip("set CRD_SCHEMA_DIR=../shared/reference/crds (make test does) to validate custom resources")
    for path, obj in custom:
        assert validate_custom_resource(obj) == [], path.name


def test_manifests_carry_no_secret_values(stack: str, tmp_path: Path) -> None:
    files = write_plan(plan_of(stack), tmp_path)
    resources = (tmp_path / "resources.json").read_text()
    assert "4dabf18193072939515e22adb298388d" not in resources  # Pulumi's secret signature
    for path in files:
        assert "4dabf18193072939515e22adb298388d" not in path.read_text()


def test_eks_gets_an_encrypted_gp3_default_storage_class(tmp_path: Path) -> None:
    files = write_plan(plan_of("dev"), tmp_path)
    classes = [yaml.safe_load(p.read_text()) for p in files if "-storageclass-gp3" in p.name]
    assert len(classes) == 1
    sc = classes[0]
    assert sc["provisioner"] == "ebs.csi.aws.com" and sc["parameters"]["encrypted"] == "true"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
