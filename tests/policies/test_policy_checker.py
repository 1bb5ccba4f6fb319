"""policies/check.py as workload repositories run it, and the rules it applies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import STACKS, plan_of
from tools.offline import PROJECT_DIR
from tools.plan import write_plan

CHECK = PROJECT_DIR / "policies" / "check.py"
LINE = re.compile(
    r"^(?P<path>[^:]+): (?P<object>[A-Za-z]+/(?:[a-z0-9.-]+/)?[a-z0-9.-]+): (?P<rule>[a-z0-9-]+): "
    r"(?P<message>.+) \((mandatory|advisory)\)$"
)


def gpu_pod(name: str = "train", **changes: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "research"},
        "spec": {
            "restartPolicy": "Never",
            "priorityClassName": "training-critical",
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "nodeSelector": {"ml-platform.io/gpu": "a100-80gb"},
            "containers": [
                {
                    "name": "trainer",
                    "image": "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
                    "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": 1}},
                    "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
                }
            ],
            "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}],
        },
    }
    pod["spec"].update(changes)
    return pod


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK), *args], capture_output=True, text=True, timeout=60, check=False)


def write(path: Path, *documents: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_a_clean_gpu_pod_passes_with_exit_0(tmp_path: Path) -> None:
    result = run_check(str(write(tmp_path / "pod.yaml", gpu_pod())))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_a_mandatory_failure_exits_1_with_one_line_per_finding(tmp_path: Path) -> None:
    bad = gpu_pod(volumes=[])
    path = write(tmp_path / "k8s" / "pod.yaml", bad)
    result = run_check(str(tmp_path / "k8s"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1, lines
    match = LINE.match(lines[0])
    assert match, lines[0]
    assert (
        match["path"] == str(path)
        and match["object"] == "Pod/research/train"
        and match["rule"] == "gpu-shm-memory-volume"
    )
    assert 'container "trainer"' in match["message"] and lines[0].endswith("(mandatory)")


def test_advisory_findings_alone_exit_0(tmp_path: Path) -> None:
    pod = gpu_pod()
    del pod["spec"]["priorityClassName"]
    result = run_check(str(write(tmp_path / "pod.yaml", pod)))
    assert result.returncode == 0
    assert ": Pod/research/train: gpu-priority-class: " in result.stdout and result.stdout.rstrip().endswith(
        "(advisory)"
    )


def test_prod_config_makes_advisory_rules_mandatory(tmp_path: Path) -> None:
    pod = gpu_pod()
    del pod["spec"]["priorityClassName"]
    path = write(tmp_path / "pod.yaml", pod)
    result = run_check("--config", str(PROJECT_DIR / "policies" / "config" / "prod.json"), str(path))
    assert result.returncode == 1 and "(mandatory)" in result.stdout
    dev = run_check(
        "--config",
        str(PROJECT_DIR / "policies" / "config" / "dev.json"),
        str(write(tmp_path / "b.yaml", gpu_pod(volumes=[]))),
    )
    assert dev.returncode == 0 and "gpu-shm-memory-volume" in dev.stdout and "(advisory)" in dev.stdout


def test_json_format_for_tools(tmp_path: Path) -> None:
    result = run_check("--format", "json", str(write(tmp_path / "pod.yaml", gpu_pod(volumes=[]))))
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["mandatoryFailures"] == 1
    [finding] = report["findings"]
    assert finding["rule"] == "gpu-shm-memory-volume" and finding["enforcement"] == "mandatory"
    assert finding["object"] == "Pod/research/train" and finding["container"] == "trainer" and finding["site"] == "spec"


def test_multi_document_files_and_directories_are_read_recursively(tmp_path: Path) -> None:
    write(tmp_path / "a" / "b" / "jobs.yml", gpu_pod("one"), gpu_pod("two", volumes=[]))
    (tmp_path / "a" / "notes.txt").write_text("not yaml: [")
    result = run_check(str(tmp_path))
    assert result.returncode == 1
    assert [LINE.match(x)["object"] for x in result.stdout.splitlines()] == ["Pod/research/two"]  # type: ignore[index]


@pytest.mark.parametrize(
    "content",
    ["apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n", "just a string\n", "- a\n- list\n", b"\xff\xfe\x00"],
)
def test_unreadable_input_exits_2(tmp_path: Path, content: str | bytes) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = run_check(str(path))
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_missing_path_exits_2() -> None:
    result = run_check("/no/such/manifests")
    assert result.returncode == 2 and "no such file" in result.stderr


def test_stack_rule_team_quota_over_all_files_read(tmp_path: Path) -> None:
    team = {"ml-platform.io/team": "x"}
    namespaces = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": team}}
        for n in ("research", "serving")
    ]
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": "research"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "8"}},
    }
    write(tmp_path / "ns.yaml", *namespaces)
    write(tmp_path / "quota.yaml", quota)
    result = run_check(str(tmp_path))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"{tmp_path / 'ns.yaml'}: Namespace/serving: team-namespace-gpu-quota: team namespace serving has no "
        "ResourceQuota limiting GPUs (hard requests.nvidia.com/gpu): one team can take every GPU (advisory)"
    ]


def test_checker_needs_only_the_rules_and_pyyaml(tmp_path: Path) -> None:
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(CHECK)!r}, sys.argv[1]]\n"
        "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "roots = ('pulumi', 'pulumi_policy', 'pydantic', 'components')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in roots))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(write(tmp_path / "pod.yaml", gpu_pod()))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


@pytest.mark.parametrize("stack", STACKS)
def test_the_platforms_own_manifests_pass(stack: str, tmp_path: Path) -> None:
    write_plan(plan_of(stack), tmp_path)
    config = PROJECT_DIR / "policies" / "config" / f"{stack}.json"
    result = run_check("--config", str(config), str(tmp_path / "manifests"))
    assert result.returncode == 0, result.stdout
    assert "(mandatory)" not in result.stdout


def test_numbers_and_strings_read_the_same(tmp_path: Path) -> None:
    node_class = {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": "gpu"},
        "spec": {"metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": "2"}},
    }
    result = run_check(str(write(tmp_path / "nc.yaml", node_class)))
    assert result.returncode == 0 and "httpPutResponseHopLimit is 2" in result.stdout


def test_a_remediate_level_counts_as_mandatory_in_the_checker(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"all": "advisory", "gpu-shm-memory-volume": "remediate"}))
    result = run_check("--config", str(config), str(write(tmp_path / "pod.yaml", gpu_pod(volumes=[]))))
    assert result.returncode == 1 and "(mandatory)" in result.stdout


@pytest.mark.parametrize("content", ["kind: 5\n", "kind: List\nitems: 3\n", "kind: List\nitems:\n"])
def test_malformed_objects_are_clear_errors_not_tracebacks(tmp_path: Path, content: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(content)
    result = run_check(str(path))
    if content == "kind: List\nitems:\n":
        assert result.returncode == 0  # an empty List is fine
    else:
        assert result.returncode == 2 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_whole_repositories_can_skip_other_yaml(tmp_path: Path) -> None:
    write(tmp_path / "k8s" / "pod.yaml", gpu_pod(volumes=[]))
    (tmp_path / "charts" / "values.yaml").parent.mkdir()
    (tmp_path / "charts" / "values.yaml").write_text("replicas: 2\nimage: {tag: v1}\n")
    assert run_check(str(tmp_path)).returncode == 2
    result = run_check("--ignore-non-kubernetes", str(tmp_path))
    assert result.returncode == 1 and "gpu-shm-memory-volume" in result.stdout


def test_json_findings_carry_the_remediation(tmp_path: Path) -> None:
    result = run_check("--format", "json", str(write(tmp_path / "pod.yaml", gpu_pod(volumes=[]))))
    [finding] = json.loads(result.stdout)["findings"]
    assert "medium: Memory" in finding["remediation"] and "/dev/shm" in finding["remediation"]


def node_pool(sharing: str, workload: str) -> dict[str, Any]:
    labels = {"ml-platform.io/sharing": sharing, "ml-platform.io/workload": workload}
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": f"{workload}-{sharing}"},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": {}}},
    }


@pytest.mark.parametrize(
    ("sharing", "workload", "environment", "flagged"),
    [
        ("time-slicing", "dev", "dev", False),
        ("time-slicing", "inference", "dev", True),
        ("time-slicing", "dev", "prod", True),
        ("mig", "inference", "prod", False),
    ],
)
def test_time_slicing_is_kept_out_of_production_and_inference(
    tmp_path: Path, sharing: str, workload: str, environment: str, flagged: bool
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"no-time-slicing-in-production": {"environment": environment}}))
    result = run_check("--config", str(config), str(write(tmp_path / "np.yaml", node_pool(sharing, workload))))
    assert ("no-time-slicing-in-production" in result.stdout) is flagged, result.stdout


# ---------------------------------------------------------------- a CI tool workload repositories can trust


@pytest.mark.parametrize("amount", [".nan", ".inf", "-.inf", '"1e999999999"', "1e28", '"9e99999999999"'])
def test_absurd_quantities_are_findings_not_tracebacks(tmp_path: Path, amount: str) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: ns}\nspec:\n  containers:\n  - name: c\n"
        f"    resources: {{requests: {{nvidia.com/gpu: {amount}}}, limits: {{nvidia.com/gpu: {amount}}}}}\n"
    )
    result = run_check(str(path))
    assert "Traceback" not in result.stderr
    assert result.returncode == 1 and "gpu-limits-match-requests" in result.stdout  # not a whole number of devices


def test_negative_gpu_amounts_are_findings(tmp_path: Path) -> None:
    pod = gpu_pod()
    pod["spec"]["containers"][0]["resources"] = {"requests": {"nvidia.com/gpu": -1}, "limits": {"nvidia.com/gpu": -1}}
    result = run_check(str(write(tmp_path / "pod.yaml", pod)))
    assert result.returncode == 1 and "gpu-limits-match-requests" in result.stdout


@pytest.mark.parametrize("depth", [5_000, 200_000])
@pytest.mark.parametrize("style", ["flow", "block", "mapping"])
def test_deep_nesting_is_refused_never_a_crash(tmp_path: Path, depth: int, style: str) -> None:
    body = {
        "flow": "[" * depth + "]" * depth,
        "block": "\n  " + "- " * depth + "x",  # segfaulted the C composer before the depth check
        "mapping": "{a: " * depth + "1" + "}" * depth,
    }[style]
    path = tmp_path / "deep.yaml"
    path.write_text("kind: Pod\nmetadata: {name: x}\nspec: " + body + "\n")
    result = run_check(str(path))
    assert result.returncode == 2 and "nested more than 200 levels deep" in result.stderr, result.stderr[-300:]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("[]", "not a list"),
        ('"mandatory"', "not a str"),
        ('{"gpu-shm-memroy-volume": "disabled"}', "'gpu-shm-memroy-volume' is not a rule id"),
        ('{"gpu-shm-size-limit": {"shmMinsize": "32Gi"}}', "unknown setting(s) shmMinsize"),
        ("{not json", "not JSON"),
    ],
)
def test_a_misspelt_config_is_an_error(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "c.json").write_text(config)
    result = run_check("--config", str(tmp_path / "c.json"), str(write(tmp_path / "pod.yaml", gpu_pod())))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_json_manifests_nested_lists_and_what_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "pod.JSON").write_text(json.dumps(gpu_pod("j", volumes=[])))
    nested = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"apiVersion": "v1", "kind": "List", "items": [gpu_pod("n", volumes=[])]}, 3],
    }
    write(tmp_path / "list.yaml", nested)
    (tmp_path / "values.yaml").write_text("replicas: 2\n")
    result = run_check("--ignore-non-kubernetes", str(tmp_path))
    objects = {LINE.match(x)["object"] for x in result.stdout.splitlines()}  # type: ignore[index]
    assert objects == {"Pod/research/j", "Pod/research/n"}
    assert "skipped" in result.stderr and "values.yaml document 1 (not a Kubernetes object)" in result.stderr
    assert "items[1] (not a Kubernetes object)" in result.stderr


def test_an_empty_directory_checks_nothing_and_says_so(tmp_path: Path) -> None:
    result = run_check(str(tmp_path))
    assert result.returncode == 2 and "nothing would be checked" in result.stderr


# ---------------------------------------------------------------- large files: streamed, one pass


def test_documents_are_read_one_at_a_time(tmp_path: Path) -> None:
    """A document is checked before the next is parsed: the first object comes out of a file whose end is not YAML."""
    from check import UnreadableInputError, read_objects

    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(gpu_pod("first")) + "---\n{unclosed: [\n")
    objects = read_objects(path)
    assert next(objects)["metadata"]["name"] == "first"
    with pytest.raises(UnreadableInputError, match="cannot read YAML"):
        next(objects)


def test_only_what_stack_rules_read_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import check
    from rules import Settings

    seen: list[list[str]] = []
    real = check.check_stack
    monkeypatch.setattr(
        check,
        "check_stack",
        lambda objects, settings: seen.append([o["kind"] for o in objects]) or real(objects, settings),
    )
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "t", "labels": {"ml-platform.io/team": "t"}},
    }
    path = write(tmp_path / "all.yaml", gpu_pod("a"), namespace, gpu_pod("b"))
    findings, _ = check.run([path], Settings())
    assert seen == [["Namespace"]]  # the pods were checked and dropped
    assert [f.rule for _, f, _ in findings] == ["team-namespace-gpu-quota"]


def test_without_libyaml_the_same_loader_is_pure_python(tmp_path: Path) -> None:
    """PyYAML built without libyaml has no CSafeLoader: check.py still reads manifests and refuses deep nesting."""
    path = write(tmp_path / "pod.yaml", gpu_pod("x"))
    (tmp_path / "deep.yaml").write_text("kind: Pod\nspec: " + "[" * 300 + "]" * 300 + "\n")
    script = (
        "import sys, yaml\n"
        "del yaml.CSafeLoader\n"
        f"sys.argv = ['check.py', {str(path)!r}]\n"
        f"sys.path[:0] = [{str(CHECK.parent)!r}]\n"
        "import check\n"
        "assert check.Loader.__mro__[1] is yaml.SafeLoader, check.Loader.__mro__\n"
        "assert check.main() == 0\n"
        f"assert check.main([{str(tmp_path / 'deep.yaml')!r}]) == 2\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "nested more than 200 levels deep" in result.stderr


@pytest.mark.parametrize("path", ["/dev/shm/", "//dev/shm", "/dev/shm//"])
def test_the_checker_reads_mount_paths_as_the_runtime_does(tmp_path: Path, path: str) -> None:
    pod = gpu_pod()
    pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = path
    assert run_check(str(write(tmp_path / "pod.yaml", pod))).returncode == 0
    pod["spec"]["volumes"][0]["emptyDir"] = {}
    result = run_check(str(write(tmp_path / "pod.yaml", pod)))
    assert (
        result.returncode == 1
        and 'mounts "dshm" at /dev/shm, an emptyDir volume that is not memory-backed' in result.stdout
    )
