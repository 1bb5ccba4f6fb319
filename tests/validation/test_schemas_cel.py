"""Tests of the CEL rules (x-kubernetes-validations) that tests/schemas.py evaluates offline."""

from __future__ import annotations

import copy
import pathlib
import time
from typing import Any

import pytest
import yaml

import schemas

# Rules of the pinned CRDs that the engine cannot compile: none. Every rule of the Karpenter,
# Kueue, Trainer and JobSet CRDs compiles with cel-expr-python plus the Kubernetes functions that
# schemas.py adds (the pinned rules need find, next to the engine's split, matches, ...).
UNSUPPORTED_CEL_RULES: dict[str, list[str]] = {"karpenter": [], "kueue": [], "trainer": [], "jobset": []}


@pytest.fixture
def crd_dir() -> pathlib.Path:
    directory = schemas.crd_schema_dir()
    if directory is None:
        pytest.skip("set CRD_SCHEMA_DIR=../shared/reference/crds to validate custom resources")
    return directory


# ---------------------------------------------------------------- Karpenter NodePool


def node_pool() -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu-spot"},
        "spec": {
            "template": {
                "metadata": {"labels": {"ml-platform.io/pool": "gpu-spot"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "x"},
                    "requirements": [
                        {
                            "key": "node.kubernetes.io/instance-type",
                            "operator": "In",
                            "values": ["g5.xlarge", "g5.2xlarge"],
                        },
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                    ],
                    "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                    "expireAfter": "720h",
                },
            },
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": "5m",
                "budgets": [{"nodes": "10%"}],
            },
            "limits": {"nvidia.com/gpu": "16"},
        },
    }


def test_valid_node_pool_passes_its_cel_rules(crd_dir: pathlib.Path) -> None:
    assert schemas.validate_custom_resource(node_pool(), crd_dir) == []
    assert schemas.validate_object(node_pool(), "1.35") == []


def test_node_pool_requirement_in_without_values(crd_dir: pathlib.Path) -> None:
    obj = node_pool()
    obj["spec"]["template"]["spec"]["requirements"][0]["values"] = []
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.template.spec.requirements: requirements with operator 'In' must have a value defined (CEL)"
    ]
    # Without values at all the rule cannot be evaluated: a runtime error fails it, as on the server.
    del obj["spec"]["template"]["spec"]["requirements"][0]["values"]
    errors = schemas.validate_custom_resource(obj, crd_dir)
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        "spec.template.spec.requirements: requirements with operator 'In' must have a value defined "
        "(CEL evaluation error: "
    ), errors
    assert "values" in errors[0], errors


def test_node_pool_restricted_label_domain(crd_dir: pathlib.Path) -> None:
    obj = node_pool()
    obj["spec"]["template"]["metadata"]["labels"]["karpenter.sh/foo"] = "x"
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        'spec.template.metadata.labels: label domain "karpenter.sh" is restricted (CEL)'
    ]
    # The rule allows the well-known karpenter.sh labels; find() decides on the domain.
    obj["spec"]["template"]["metadata"]["labels"] = {"karpenter.sh/capacity-type": "spot", "sub.karpenter.sh/x": "y"}
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        'spec.template.metadata.labels: label domain "karpenter.sh" is restricted (CEL)'
    ]
    del obj["spec"]["template"]["metadata"]["labels"]["sub.karpenter.sh/x"]
    assert schemas.validate_custom_resource(obj, crd_dir) == []


def test_node_pool_restricted_requirement_key(crd_dir: pathlib.Path) -> None:
    obj = node_pool()
    requirements = obj["spec"]["template"]["spec"]["requirements"]
    requirements.append({"key": "karpenter.k8s.aws/instance-foo", "operator": "Exists"})
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        'spec.template.spec.requirements[2].key: label domain "karpenter.k8s.aws" is restricted (CEL)'
    ]
    requirements[2]["key"] = "karpenter.k8s.aws/instance-gpu-count"
    assert schemas.validate_custom_resource(obj, crd_dir) == []


def test_node_pool_budget_schedule_needs_duration(crd_dir: pathlib.Path) -> None:
    obj = node_pool()
    obj["spec"]["disruption"]["budgets"].append({"nodes": "0", "schedule": "0 9 * * mon-fri"})
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.disruption.budgets: 'schedule' must be set with 'duration' (CEL)"
    ]
    obj["spec"]["disruption"]["budgets"][1]["duration"] = "8h"
    assert schemas.validate_custom_resource(obj, crd_dir) == []


def test_node_pool_min_values(crd_dir: pathlib.Path) -> None:
    # minValues is an integer (3.0 from a wire format arrives as the int 3; see test_cel_mechanics).
    obj = node_pool()
    obj["spec"]["template"]["spec"]["requirements"][0]["minValues"] = 3.0
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.template.spec.requirements: requirements with 'minValues' must have at least that many values "
        "specified in the 'values' field (CEL)"
    ]
    obj["spec"]["template"]["spec"]["requirements"][0]["minValues"] = 2.0
    assert schemas.validate_custom_resource(obj, crd_dir) == []


def test_blocking_schema_errors_skip_cel(crd_dir: pathlib.Path) -> None:
    # An enum violation blocks the rules (as on the API server): only the schema error is reported.
    obj = node_pool()
    obj["spec"]["template"]["spec"]["requirements"][0]["values"] = []
    obj["spec"]["disruption"]["consolidationPolicy"] = "WhenIdle"
    errors = schemas.validate_custom_resource(obj, crd_dir)
    assert len(errors) == 1 and errors[0].startswith("spec.disruption.consolidationPolicy:"), errors
    # A pattern violation does not block them.
    obj["spec"]["disruption"]["consolidationPolicy"] = "WhenEmpty"
    obj["spec"]["template"]["spec"]["expireAfter"] = "30 days"
    errors = schemas.validate_custom_resource(obj, crd_dir)
    assert [e.split(":")[0] for e in errors] == ["spec.template.spec.expireAfter", "spec.template.spec.requirements"]
    assert errors[1].endswith("(CEL)"), errors


# ---------------------------------------------------------------- Karpenter EC2NodeClass


def ec2_node_class() -> dict[str, Any]:
    discovery = [{"tags": {"karpenter.sh/discovery": "ml-platform"}}]
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "x"},
        "spec": {
            "role": "x",
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": copy.deepcopy(discovery),
            "securityGroupSelectorTerms": copy.deepcopy(discovery),
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    "rootVolume": True,
                    "ebs": {"volumeSize": "200Gi", "volumeType": "gp3", "encrypted": True},
                }
            ],
            "instanceStorePolicy": "RAID0",
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1},
            "tags": {"ml-platform.io/pool": "x"},
        },
    }


def test_valid_ec2_node_class_passes_its_cel_rules(crd_dir: pathlib.Path) -> None:
    assert schemas.validate_custom_resource(ec2_node_class(), crd_dir) == []


def test_ec2_node_class_role_xor_instance_profile(crd_dir: pathlib.Path) -> None:
    obj = ec2_node_class()
    obj["spec"]["instanceProfile"] = "KarpenterNodeInstanceProfile"
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec: must specify exactly one of ['role', 'instanceProfile'] (CEL)"
    ]
    del obj["spec"]["role"]
    assert schemas.validate_custom_resource(obj, crd_dir) == []
    del obj["spec"]["instanceProfile"]
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec: must specify exactly one of ['role', 'instanceProfile'] (CEL)"
    ]


def test_ec2_node_class_alias_with_another_term(crd_dir: pathlib.Path) -> None:
    obj = ec2_node_class()
    obj["spec"]["amiSelectorTerms"].append({"tags": {"ml-platform.io/ami": "gpu"}})
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.amiSelectorTerms: 'alias' is mutually exclusive, cannot be set with a combination of other "
        "amiSelectorTerms (CEL)"
    ]
    obj["spec"]["amiSelectorTerms"] = [{"alias": "al2023@latest", "name": "my-ami"}]
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.amiSelectorTerms: 'alias' is mutually exclusive, cannot be set with a combination of other "
        "fields in amiSelectorTerms (CEL)"
    ]


def test_ec2_node_class_windows_alias_must_be_latest(crd_dir: pathlib.Path) -> None:
    obj = ec2_node_class()
    obj["spec"]["amiSelectorTerms"] = [{"alias": "windows2022@v1"}]
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.amiSelectorTerms[0].alias: windows families may only specify version 'latest' (CEL)"
    ]
    obj["spec"]["amiSelectorTerms"] = [{"alias": "windows2022@latest"}]
    assert schemas.validate_custom_resource(obj, crd_dir) == []
    obj["spec"]["amiSelectorTerms"] = [{"alias": "ubuntu@latest"}]
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.amiSelectorTerms[0].alias: family is not supported, must be one of the following: 'al2', "
        "'al2023', 'bottlerocket', 'windows2019', 'windows2022', 'windows2025' (CEL)"
    ]


def test_ec2_node_class_ami_family_must_match_alias(crd_dir: pathlib.Path) -> None:
    obj = ec2_node_class()
    obj["spec"]["amiFamily"] = "Bottlerocket"
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec: if set, amiFamily must be 'AL2023' or 'Custom' when using an AL2023 alias (CEL)"
    ]
    obj["spec"]["amiFamily"] = "AL2023"
    assert schemas.validate_custom_resource(obj, crd_dir) == []


def test_ec2_node_class_restricted_tags(crd_dir: pathlib.Path) -> None:
    obj = ec2_node_class()
    obj["spec"]["tags"]["kubernetes.io/cluster/x"] = "owned"
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.tags: tag contains a restricted tag matching kubernetes.io/cluster/ (CEL)"
    ]
    obj["spec"]["tags"] = {"ml-platform.io/pool": "x", "karpenter.sh/nodepool": "gpu"}
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.tags: tag contains a restricted tag matching karpenter.sh/nodepool (CEL)"
    ]


def test_ec2_node_class_selector_terms(crd_dir: pathlib.Path) -> None:
    obj = ec2_node_class()
    obj["spec"]["subnetSelectorTerms"] = [{"tags": {"karpenter.sh/discovery": ""}}]
    obj["spec"]["securityGroupSelectorTerms"] = []
    # Upstream's "!self.all(...)" mutual-exclusion rules fail on an empty list too, as on the server.
    assert schemas.validate_custom_resource(obj, crd_dir) == [
        "spec.securityGroupSelectorTerms: 'id' is mutually exclusive, cannot be set with a combination of other "
        "fields in a security group selector term (CEL)",
        "spec.securityGroupSelectorTerms: 'name' is mutually exclusive, cannot be set with a combination of other "
        "fields in a security group selector term (CEL)",
        "spec.securityGroupSelectorTerms: securityGroupSelectorTerms cannot be empty (CEL)",
        "spec.subnetSelectorTerms[0].tags: empty tag keys or values aren't supported (CEL)",
    ]


# ---------------------------------------------------------------- Kueue, Trainer, JobSet


def test_kueue_cluster_queue_flavors_cover_resources(crd_dir: pathlib.Path) -> None:
    queue: dict[str, Any] = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ClusterQueue",
        "metadata": {"name": "team-a"},
        "spec": {
            "namespaceSelector": {},
            "resourceGroups": [
                {
                    "coveredResources": ["cpu", "nvidia.com/gpu"],
                    "flavors": [
                        {
                            "name": "gpu-spot",
                            "resources": [
                                {"name": "cpu", "nominalQuota": 64},
                                {"name": "nvidia.com/gpu", "nominalQuota": 8},
                            ],
                        }
                    ],
                }
            ],
        },
    }
    assert schemas.validate_custom_resource(queue, crd_dir) == []
    queue["spec"]["resourceGroups"][0]["flavors"][0]["resources"].pop()
    assert schemas.validate_custom_resource(queue, crd_dir) == [
        "spec.resourceGroups[0]: flavors must have the same number of resources as the coveredResources (CEL)"
    ]


def test_kueue_resource_flavor_tolerations(crd_dir: pathlib.Path) -> None:
    flavor: dict[str, Any] = {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "ResourceFlavor",
        "metadata": {"name": "gpu-spot"},
        "spec": {
            "nodeLabels": {"karpenter.sh/capacity-type": "spot"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        },
    }
    assert schemas.validate_custom_resource(flavor, crd_dir) == []
    flavor["spec"]["tolerations"][0]["value"] = "true"
    assert schemas.validate_custom_resource(flavor, crd_dir) == [
        "spec.tolerations: a value must be empty when 'operator' is 'Exists' (CEL)"
    ]


def test_trainer_train_job_name_is_a_dns_1035_label(crd_dir: pathlib.Path) -> None:
    job: dict[str, Any] = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "llama-ft", "namespace": "ml-team-a"},
        "spec": {"runtimeRef": {"name": "torch-distributed"}, "trainer": {"numNodes": 2}},
    }
    assert schemas.validate_custom_resource(job, crd_dir) == []
    job["metadata"] = {"generateName": "llama-ft-", "namespace": "ml-team-a"}  # the server names it first
    assert schemas.validate_custom_resource(job, crd_dir) == []
    job["metadata"] = {"name": "7b-llama", "namespace": "ml-team-a"}  # a DNS subdomain, not a DNS-1035 label
    assert schemas.validate_custom_resource(job, crd_dir) == [
        "(root): metadata.name must match RFC 1035 DNS label format (CEL)"
    ]


def test_jobset_startup_policy_excludes_depends_on(crd_dir: pathlib.Path) -> None:
    def replicated_job(name: str) -> dict[str, Any]:
        pod = {"containers": [{"name": "c", "image": "busybox:1.37"}], "restartPolicy": "Never"}
        return {"name": name, "template": {"spec": {"template": {"spec": pod}}}}

    jobset: dict[str, Any] = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "train"},
        "spec": {"replicatedJobs": [replicated_job("launcher"), replicated_job("workers")]},
    }
    jobset["spec"]["replicatedJobs"][1]["dependsOn"] = [{"name": "launcher", "status": "Ready"}]
    assert schemas.validate_custom_resource(jobset, crd_dir) == []
    jobset["spec"]["startupPolicy"] = {"startupPolicyOrder": "InOrder"}
    assert schemas.validate_custom_resource(jobset, crd_dir) == [
        "spec: StartupPolicy and DependsOn APIs are mutually exclusive (CEL)"
    ]


# ---------------------------------------------------------------- rules the engine cannot compile


@pytest.mark.parametrize("project", sorted(UNSUPPORTED_CEL_RULES))
def test_unsupported_cel_rules_of_pinned_crds(crd_dir: pathlib.Path, project: str) -> None:
    folders = [p for p in crd_dir.iterdir() if p.is_dir() and p.name.startswith(f"{project}-v")]
    assert len(folders) == 1, f"expected one {project}-v* folder under {crd_dir}: {folders}"
    unsupported = schemas.unsupported_cel_rules(folders[0])
    reasons = []
    for entry in unsupported:
        with pytest.raises(schemas.CelError) as error:
            schemas.evaluate_cel(entry.split(": ", 1)[1], {"self": None})
        reasons.append(f"{entry}: {error.value}")
    assert unsupported == UNSUPPORTED_CEL_RULES[project], reasons


def test_every_pinned_crd_rule_compiles(crd_dir: pathlib.Path) -> None:
    assert schemas.unsupported_cel_rules() == []


# ---------------------------------------------------------------- a synthetic CRD: the mechanics

GADGET_SPEC: dict[str, Any] = {
    "type": "object",
    "required": ["replicas"],
    "x-kubernetes-validations": [
        {"rule": "type(self.replicas) == int", "message": "replicas is not an int"},
        {"rule": "!has(self.ratio) || type(self.ratio) == double", "message": "ratio is not a double"},
        {
            "rule": "self.mode == 'fast' || self.replicas <= 4",
            "message": "too many replicas",
            "messageExpression": "'replicas ' + string(self.replicas) + ' > 4 in mode ' + self.mode",
        },
        {"rule": "self.replicas != 3", "message": "three is not allowed", "fieldPath": ".replicas"},
        {"rule": "self.replicas >= oldSelf.replicas", "message": "cannot scale down"},  # transition rule
        {"rule": "!has(self.max__dash__surge) || self.max__dash__surge <= self.replicas", "message": "surge"},
        {"rule": "!has(self.__namespace__) || self.__namespace__ == self.namespace", "message": "escaped"},
    ],
    "properties": {
        "replicas": {"type": "integer"},
        "ratio": {"type": "number"},
        "mode": {"type": "string", "enum": ["safe", "fast"], "default": "safe"},
        "name": {"type": "string", "pattern": "^[a-z]+$"},
        "max-surge": {"type": "integer"},
        "namespace": {"type": "string"},
        "labels": {
            "type": "object",
            "additionalProperties": {
                "type": "string",
                "x-kubernetes-validations": [{"rule": "self != ''", "message": "empty label value"}],
            },
        },
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.port != 9999"}],
                "properties": {
                    "port": {
                        "type": "integer",
                        "x-kubernetes-validations": [{"rule": "self > 1024", "message": "privileged port"}],
                    }
                },
            },
        },
        "endpoint": {
            "type": "string",
            "x-kubernetes-validations": [{"rule": "url(self).getScheme() == 'https'", "message": "https only"}],
        },
        "optional": {
            "type": "object",
            "nullable": True,
            "x-kubernetes-validations": [{"rule": "self.a == 1", "message": "a must be 1"}],
            "properties": {"a": {"type": "integer"}},
        },
    },
}


@pytest.fixture
def gadget_crd_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": GADGET_SPEC,
        },
    }
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}],
        },
    }
    (tmp_path / "gadgets.yaml").write_text(yaml.safe_dump(crd))
    return tmp_path


def gadget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec}


@pytest.mark.parametrize(
    "spec, errors",
    [
        ({"replicas": 2}, []),
        # Whole JSON numbers in integer fields are CEL ints; integers in number fields are doubles.
        ({"replicas": 2.0, "ratio": 1}, []),
        ({"replicas": 3}, ["spec.replicas: three is not allowed (CEL)"]),  # fieldPath
        # mode defaults to "safe" before the rules run; messageExpression makes the message.
        ({"replicas": 6}, ["spec: replicas 6 > 4 in mode safe (CEL)"]),
        ({"replicas": 6, "mode": "fast"}, []),
        # Property names are escaped as on the API server.
        ({"replicas": 2, "max-surge": 5}, ["spec: surge (CEL)"]),
        ({"replicas": 2, "namespace": "ml"}, []),
        # Rules on map values and list items run on each of them, with its own path.
        (
            {"replicas": 2, "labels": {"a": "x", "app.kubernetes.io/name": ""}},
            ["spec.labels['app.kubernetes.io/name']: empty label value (CEL)"],
        ),
        (
            {"replicas": 2, "ports": [{"port": 8080}, {"port": 80}, {"port": 9999}]},
            ["spec.ports[1].port: privileged port (CEL)", "spec.ports[2]: failed rule: self.port != 9999 (CEL)"],
        ),
        # Rules do not run on null values.
        ({"replicas": 2, "optional": None}, []),
        ({"replicas": 2, "optional": {"a": 2}}, ["spec.optional: a must be 1 (CEL)"]),
        # A schema error that does not block CEL (a pattern) is reported next to the rule errors.
        (
            {"replicas": 3, "name": "G1"},
            ["spec.name: 'G1' does not match '^[a-z]+$'", "spec.replicas: three is not allowed (CEL)"],
        ),
        # A blocking one (wrong type) is reported alone.
        ({"replicas": 3, "ratio": "high"}, ["spec.ratio: 'high' is not of type 'number'"]),
    ],
)
def test_cel_mechanics(gadget_crd_dir: pathlib.Path, spec: dict[str, Any], errors: list[str]) -> None:
    assert schemas.validate_custom_resource(gadget(**spec), gadget_crd_dir) == errors


def test_cel_runtime_errors_fail_the_rule(gadget_crd_dir: pathlib.Path) -> None:
    errors = schemas.validate_custom_resource(gadget(replicas=2, ports=[{}]), gadget_crd_dir)
    assert len(errors) == 1, errors
    assert errors[0].startswith("spec.ports[0]: failed rule: self.port != 9999 (CEL evaluation error: "), errors
    assert "port" in errors[0].split("(CEL evaluation error: ")[1], errors


def test_rules_the_engine_cannot_compile_never_pass(gadget_crd_dir: pathlib.Path) -> None:
    rule = "url(self).getScheme() == 'https'"
    assert schemas.unsupported_cel_rules(gadget_crd_dir) == [f"Gadget example.com/v1 spec.endpoint: {rule}"]
    errors = schemas.validate_custom_resource(gadget(replicas=2, endpoint="https://x"), gadget_crd_dir)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"spec.endpoint: rule cannot be evaluated offline: {rule} (CEL unsupported: "), errors
    assert "url" in errors[0], errors


def test_compiled_rules_are_cached(gadget_crd_dir: pathlib.Path) -> None:
    schemas.validate_custom_resource(gadget(replicas=2), gadget_crd_dir)
    before = schemas._cel_program.cache_info()
    for replicas in range(20):
        schemas.validate_custom_resource(gadget(replicas=replicas), gadget_crd_dir)
    after = schemas._cel_program.cache_info()
    assert after.misses == before.misses, (before, after)


# ---------------------------------------------------------------- the engine and the Kubernetes library


@pytest.mark.parametrize(
    "expression, value",
    [
        # Kubernetes regex library (added in schemas.py)
        ("'abc 123 def 456'.find('[0-9]+')", "123"),
        ("'abc'.find('[0-9]+')", ""),
        ("'karpenter.sh/foo'.find('^([^/]+)')", "karpenter.sh"),
        ("'a1b22c333'.findAll('[0-9]+')", ["1", "22", "333"]),
        ("'a1b22c333'.findAll('[0-9]+', 2)", ["1", "22"]),
        ("'a1'.findAll('[0-9]', 0)", []),
        # Kubernetes lists library (added in schemas.py)
        ("[1, 2, 2].isSorted()", True),
        ("['b', 'a'].isSorted()", False),
        ("[1, 2, 3].sum()", 6),
        ("[1.5, 2.5].sum()", 4.0),
        ("[3, 1, 2].min()", 1),
        ("['b', 'c', 'a'].max()", "c"),
        ("[1, 2, 1].indexOf(1)", 0),
        ("[1, 2, 1].lastIndexOf(1)", 2),
        ("[true, 1].indexOf(1)", 1),
        ("[1, 2].indexOf(3)", -1),
        # the engine's strings extension and standard library
        ("'al2023@latest'.split('@')", ["al2023", "latest"]),
        ("'AbC'.lowerAscii() + 'd'.upperAscii()", "abcD"),
        ("'aXa'.replace('a', 'b')", "bXb"),
        ("'abcb'.indexOf('b') + 'abcb'.lastIndexOf('b')", 4),
        ("['a', 'b'].join('-')", "a-b"),
        ("' x '.trim() + 'abc'.substring(1)", "xbc"),
        ("'g5.xlarge'.matches('^g[0-9]') && 'ab'.startsWith('a') && 'ab'.endsWith('b')", True),
        ("size('abc') + [1, 2].size()", 5),
        ("[1, 2].exists_one(x, x == 1) && [1, 2].all(x, x > 0) && [1, 2].exists(x, x > 1)", True),
        ("[1, 2, 3].filter(x, x > 1).map(x, x * 2)", [4, 6]),
        ("int('12') + 1", 13),
        ("string(12)", "12"),
    ],
)
def test_cel_functions(expression: str, value: Any) -> None:
    assert schemas.evaluate_cel(expression, {}) == value


@pytest.mark.parametrize("expression", ["[].min()", "'a'.find('[')", "['a', 1].isSorted()", "{}.a", "quantity('1')"])
def test_cel_errors_raise(expression: str) -> None:
    with pytest.raises(schemas.CelError):
        schemas.evaluate_cel(expression, {})


def test_admission_policy_style_expression() -> None:
    # How a ValidatingAdmissionPolicy validation will be checked: object and variables bound.
    expression = (
        "variables.containers.all(c, !has(c.resources.limits) || !('nvidia.com/gpu' in c.resources.limits) "
        "|| c.resources.limits['nvidia.com/gpu'] == c.resources.requests['nvidia.com/gpu'])"
    )

    def bindings(request: str) -> dict[str, Any]:
        container = {
            "name": "w",
            "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": request}},
        }
        obj = {"spec": {"template": {"spec": {"containers": [container]}}}}
        return {"object": obj, "variables": {"containers": obj["spec"]["template"]["spec"]["containers"]}}

    assert schemas.evaluate_cel(expression, bindings("1")) is True
    assert schemas.evaluate_cel(expression, bindings("2")) is False
    assert schemas.evaluate_cel("object.spec.template.spec.containers[0].name", bindings("1")) == "w"


# ---------------------------------------------------------------- speed


def test_speed_of_50_custom_resources_with_cel(crd_dir: pathlib.Path) -> None:
    objects = []
    for i in range(25):
        pool = node_pool()
        pool["metadata"]["name"] = f"gpu-{i}"
        pool["spec"]["template"]["metadata"]["labels"][f"ml-platform.io/team-{i}"] = "x"
        pool["spec"]["limits"]["nvidia.com/gpu"] = str(i + 1)
        node_class = ec2_node_class()
        node_class["metadata"]["name"] = f"gpu-{i}"
        node_class["spec"]["tags"][f"team-{i}"] = "x"
        objects += [pool, node_class]
    for obj in objects[:2]:  # warm-up: load the CRDs, build the validators, compile the rules
        schemas.validate_custom_resource(obj, crd_dir)
    start = time.perf_counter()
    results = [schemas.validate_custom_resource(obj, crd_dir) for obj in objects]
    elapsed = time.perf_counter() - start
    assert results == [[]] * 50
    assert elapsed < 2, f"{elapsed:.2f}s for 50 custom resources"
