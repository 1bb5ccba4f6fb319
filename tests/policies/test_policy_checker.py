"""policies/check.py as workload repositories run it, and the rules it applies."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import STACKS, plan_of
from tools.offline import PROJECT_DIR
from tools.plan import write_plan

CHECK = PROJECT_DIR / "policies" / "check.py"
LABEL = "ml-platform.io/team"
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


def test_github_format_annotates_the_line_each_object_starts_on(tmp_path: Path) -> None:
    """For the reusable workflow action: `::error` for mandatory findings, `::warning` for the rest, on the first
    line of the offending document, with GitHub's escaping of `:` and `,` in properties."""
    manifest = write(tmp_path / "jobs, v1.yaml", gpu_pod("good"), gpu_pod("bad", volumes=[]))
    result = run_check("--format", "github", str(manifest))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    bad_line = manifest.read_text().splitlines().index("---") + 2  # the second document's first line
    [error] = [line for line in lines if line.startswith("::error ")]
    escaped = str(manifest).replace(":", "%3A").replace(",", "%2C")
    assert error.startswith(f"::error file={escaped},line={bad_line},title=gpu-shm-memory-volume (mandatory)::")
    assert error.split("::", 2)[2].startswith("Pod/research/bad: container")
    assert all(line.startswith("::warning ") for line in lines if line != error)
    clean = run_check("--format", "github", str(write(tmp_path / "ok.yaml", gpu_pod("good"))))
    assert clean.returncode == 0 and clean.stdout == ""


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


# ---------------------------------------------------------------- adversarial inputs: bounded time, memory and exits


def alias_bomb(where: str) -> str:
    """A "billion laughs" manifest: `*a9` stands for 10**9 values in under 1 kB."""
    anchors = ["x-anchors:", "  a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    anchors += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    body = {
        "gpu": "metadata: {name: x}\nspec:\n  containers:\n  - name: c\n    resources: {limits: {nvidia.com/gpu: *a9}}",
        "name": "metadata: {name: *a9}\nspec: {}",
        "merge": "metadata:\n  <<: *a9\n  name: x",
    }[where]
    return "apiVersion: v1\nkind: Pod\n" + "\n".join(anchors) + "\n" + body + "\n"


@pytest.mark.parametrize("where", ["gpu", "name", "merge"])
def test_an_alias_bomb_is_refused_fast(tmp_path: Path, where: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(where))
    assert path.stat().st_size < 1_000
    started = time.monotonic()
    result = run_check(str(path))
    assert time.monotonic() - started < 10, "an alias bomb must fail at its first big alias, not be expanded"
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-500:]
    assert result.stderr.startswith(f"error: {path}: line ")
    assert "aliases expand to more than 100000 values" in result.stderr


def test_aliases_within_the_bound_read_as_written_out(tmp_path: Path) -> None:
    """Hand-written anchors (one mount list shared by two GPU containers) are read as if written out."""
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: train, namespace: research}\nspec:\n"
        "  containers:\n"
        "  - name: a\n    resources: &gpu {limits: {nvidia.com/gpu: 1}}\n    volumeMounts: &shm [{name: dshm, "
        "mountPath: /dev/shm}]\n"
        "  - name: b\n    resources: *gpu\n    volumeMounts: *shm\n"
        "  volumes: [{name: dshm, emptyDir: {}}]\n"
    )
    path = tmp_path / "pod.yaml"
    path.write_text(text)
    result = run_check(str(path))
    written_out = run_check(str(write(tmp_path / "expanded.yaml", yaml.safe_load(text))))
    assert result.returncode == written_out.returncode == 1
    assert result.stdout.replace("pod.yaml", "expanded.yaml") == written_out.stdout
    assert 'container "b"' in result.stdout


def test_a_recursive_alias_and_a_deep_alias_chain_are_refused(tmp_path: Path) -> None:
    recursive = tmp_path / "recursive.yaml"
    recursive.write_text("apiVersion: v1\nkind: Pod\nmetadata: &m {name: x, self: *m}\n")
    result = run_check(str(recursive))
    assert result.returncode == 2 and "line 3: an alias inside the node it names" in result.stderr, result.stderr
    # 150 levels per anchor, each inside the next: shallow as written, 1,500 levels deep as read.
    chain = ["apiVersion: v1", "kind: Pod", "x:", "  a0: &a0 " + "[" * 150 + "]" * 150]
    chain += [f"  a{i}: &a{i} " + "[" * 150 + f"*a{i - 1}" + "]" * 150 for i in range(1, 10)]
    (tmp_path / "chain.yaml").write_text("\n".join([*chain, "metadata: {name: *a9}"]) + "\n")
    result = run_check(str(tmp_path / "chain.yaml"))
    assert result.returncode == 2 and "nested more than 200 levels deep" in result.stderr, result.stderr


def test_the_pure_python_loader_bounds_aliases_too(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb("gpu"))
    script = (
        "import sys, yaml\n"
        "del yaml.CSafeLoader\n"
        f"sys.path[:0] = [{str(CHECK.parent)!r}]\n"
        "import check\n"
        f"assert check.main([{str(path)!r}]) == 2\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-500:]
    assert "aliases expand to more than 100000 values" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("metadata: {name: x}\nspec: {replicas: " + "1" * 5000 + "}\n", "'1111111111111111111111111111111111111111'"),
        ("metadata: {name: !!timestamp 2024-13-45}\n", "'2024-13-45' is not a !!timestamp value"),
        ("metadata: {name: !!int abc}\n", "'abc' is not a !!int value"),
    ],
)
def test_values_yaml_cannot_build_are_named_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\n" + content)
    result = run_check(str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {path}: cannot read YAML: ") and message in result.stderr, result.stderr


@pytest.mark.parametrize(
    "amount",
    ["'1000000000000000000000000000000'", "'10000000000Ei'", "1000000000000000000000000000000", "'1e19'", "'99E'"],
)
def test_quantities_too_large_to_be_quantities_are_findings(tmp_path: Path, amount: str) -> None:
    """29 digits made `% 1` raise DivisionImpossible; no quantity reaches 10**19."""
    for resources in (f"{{limits: {{nvidia.com/gpu: {amount}}}}}", f"{{requests: {{nvidia.com/gpu: {amount}}}}}"):
        path = tmp_path / "pod.yaml"
        path.write_text(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: x, namespace: ns}\nspec:\n  containers:\n  - name: c\n"
            f"    resources: {resources}\n"
        )
        result = run_check(str(path))
        assert "Traceback" not in result.stderr, result.stderr[-800:]
        assert result.returncode == 1 and "gpu-limits-match-requests" in result.stdout


def test_quantity_bounds_every_spelling() -> None:
    from decimal import Decimal

    from rules.values import is_whole, quantity

    for value in ("1" + "0" * 30, "10000000000Ei", "1" + "0" * 1_000_000 + "Ei", 10**30, 1e30, "10e18", "0.1e19"):
        assert quantity(value) is None, value
    assert quantity("9999999999999999999") == Decimal("9999999999999999999")
    assert quantity("7Ei") == 7 * 2**60 and quantity("0e18") == 0 and quantity(10**4400) is None
    # Tiny amounts are no error either: subnormal, or below the smallest Decimal (zero).
    assert 0 < quantity("0." + "0" * 1_000_000 + "1n") < 1  # type: ignore[operator]
    assert quantity("0." + "0" * 1_000_020 + "1n") == 0
    assert is_whole(Decimal("9999999999999999999")) and not is_whole(Decimal("1.5"))


def test_an_unforeseen_decimal_error_names_the_file_and_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import decimal

    import check

    def broken(obj: Any, settings: Any) -> Any:
        raise decimal.InvalidOperation([decimal.DivisionImpossible])

    monkeypatch.setattr(check, "check_object", broken)
    path = write(tmp_path / "pod.yaml", gpu_pod())
    assert check.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: Pod/research/train: a number cannot be checked (") and "Traceback" not in err


def test_anything_unforeseen_is_an_internal_error_naming_the_file_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import check

    def broken(obj: Any, settings: Any) -> Any:
        raise KeyError("surprise")

    first = write(tmp_path / "a.yaml", gpu_pod("a"))
    second = write(tmp_path / "b.yaml", gpu_pod("b"))
    calls: list[str] = []
    real = check.check_object
    monkeypatch.setattr(
        check,
        "check_object",
        lambda o, s: calls.append(o["metadata"]["name"]) or (real if calls == ["a"] else broken)(o, s),
    )
    assert check.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: internal error while checking {second}: KeyError: 'surprise'\n"
    assert first != second
    # And outside run() (the output, say): still exit 2 with a message.
    monkeypatch.setattr(check, "run", lambda *args: (_ for _ in ()).throw(RuntimeError("boom")))
    assert check.main([str(first)]) == 2
    assert capsys.readouterr().err == f"error: internal error while checking {first}: RuntimeError: boom\n"


def gpu_pod_with_mounts(n: int, same_name: bool) -> dict[str, Any]:
    pod = gpu_pod()
    names = ["dshm"] * n if same_name else [f"dshm-{i}" for i in range(n)]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": x, "mountPath": "/dev/shm"} for x in names]
    pod["spec"]["volumes"] = [{"name": x, "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}} for x in names]
    return pod


@pytest.mark.parametrize("same_name", [False, True])
def test_many_mounts_and_volumes_are_checked_in_linear_time(same_name: bool) -> None:
    """10,000 /dev/shm mounts of 10,000 volumes (1.2 MB) took 59 s: every mount scanned every volume, in several
    rules. The volumes are indexed by name once per pod spec."""
    from rules import check_object

    pod = gpu_pod_with_mounts(10_000, same_name)
    started = time.monotonic()
    findings = check_object(pod)
    assert time.monotonic() - started < 5
    # Every volume is judged once: its sizeLimit is below 8Gi (and duplicates are all memory-backed: no mandatory).
    assert [f.rule for f in findings] == ["gpu-shm-size-limit"] * 10_000


def test_many_mounts_through_check_py(tmp_path: Path) -> None:
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(gpu_pod_with_mounts(10_000, False)))
    started = time.monotonic()
    result = run_check(str(path))
    assert time.monotonic() - started < 10
    assert result.returncode == 0 and result.stdout.count("gpu-shm-size-limit") == 10_000


# ---------------------------------------------------------------- --config: every problem named, before any manifest


def config_map() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"gpu-shm-size-limit": {"shmMinSize": "lots"}}', 'gpu-shm-size-limit: shmMinSize "lots" is not a size'),
        ('{"gpu-shm-size-limit": {"shmMinSize": null}}', "gpu-shm-size-limit: shmMinSize null is not a size"),
        ('{"gpu-shm-size-limit": {"shmMinSize": 1e400}}', "gpu-shm-size-limit: shmMinSize Infinity is not a size"),
        ('{"gpu-shm-size-limit": {"shmMinSize": 8}}', "gpu-shm-size-limit: shmMinSize 8 is not a size"),
        ('{"gpu-shm-size-limit": {"shmMinSize": "8Gi\\n"}}', "shmMinSize"),
        ('{"gpu-shm-size-limit": {"shmMinSize": "99999999999999999999Ei"}}', "shmMinSize"),
        ('{"no-time-slicing-in-production": {"environment": "Prod"}}', 'environment "Prod"; allowed: "dev"'),
        ('{"no-time-slicing-in-production": {"environment": ["prod"]}}', 'environment ["prod"]; allowed: "dev"'),
        ('{"no-time-slicing-in-production": {"environment": null}}', "environment null; allowed"),
        ('{"all": {"enforcementLevel": "strict"}}', 'all: enforcement level "strict"; allowed: advisory'),
        ('{"all": {"shmMinSize": "8Gi"}}', "all: unknown setting(s) shmMinSize; allowed: enforcementLevel"),
        ('{"all": ["mandatory"]}', 'all: expected an enforcement level or an object, got ["mandatory"]'),
        ('{"gpu-shm-size-limit": null}', "gpu-shm-size-limit: expected an enforcement level or an object, got null"),
        ('{"gpu-shm-size-limit": {"enforcementLevel": ""}}', 'gpu-shm-size-limit: enforcement level ""'),
        ('{"gpu-shm-size-limit": {"enforcementLevel": null}}', "gpu-shm-size-limit: enforcement level null"),
        ('{"all": "advisory", "all": "disabled"}', 'key "all" appears more than once'),
        ('{"gpu-shm-size-limit": {"shmMinSize": "8Gi", "shmMinSize": "1"}}', 'key "shmMinSize" appears more than once'),
        ('{"gpu-shm-size-limit": {"shmMinSize": NaN}}', "not JSON: NaN is not JSON"),
        ("[" * 100_000 + "]" * 100_000, "the policy config file is nested too deeply"),
    ],
)
def test_config_values_are_checked_before_any_manifest(tmp_path: Path, config: str, message: str) -> None:
    """No GPU pod needs to exist for a bad setting to be an error (shmMinSize was only parsed for a compliant one;
    an environment of "Prod" silently turned the production rule off)."""
    path = tmp_path / "c.json"
    path.write_text(config)
    result = run_check("--config", str(path), str(write(tmp_path / "cm.yaml", config_map())))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-500:]
    assert result.stderr.startswith(f"error: {path}: ") and message in result.stderr, result.stderr[-500:]


def test_every_valid_setting_is_still_accepted(tmp_path: Path) -> None:
    from settings import settings_from_config

    settings = settings_from_config(
        {
            "all": {"enforcementLevel": "mandatory"},  # the engine reads "all" as an object too
            "gpu-priority-class": "disabled",
            "gpu-shm-size-limit": {"enforcementLevel": "advisory", "shmMinSize": "0.5Ti"},
            "no-time-slicing-in-production": {"environment": "staging"},
        }
    )
    assert settings.enforcement["gpu-shm-memory-volume"] == "mandatory"
    assert settings.enforcement["gpu-priority-class"] == "disabled"
    assert settings.enforcement["gpu-shm-size-limit"] == "advisory"
    assert settings.shm_min_size == "0.5Ti" and settings.environment == "staging"
    config = tmp_path / "all.json"
    config.write_text('{"all": {"enforcementLevel": "mandatory"}}')
    pod = gpu_pod()
    del pod["spec"]["priorityClassName"]
    result = run_check("--config", str(config), str(write(tmp_path / "pod.yaml", pod)))
    assert result.returncode == 1 and "gpu-priority-class" in result.stdout and "(mandatory)" in result.stdout


def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    manifest = str(write(tmp_path / "cm.yaml", config_map()))
    (tmp_path / "latin1.json").write_bytes(b'{"all": "advisory"} \xe9')
    result = run_check("--config", str(tmp_path / "latin1.json"), manifest)
    assert (
        result.returncode == 2
        and result.stderr
        == f"error: {tmp_path / 'latin1.json'}: not UTF-8 text (byte 20)" + (", not a policy config\n")
    )
    (tmp_path / "huge.json").write_text(" " * 1_000_001 + "{}")
    result = run_check("--config", str(tmp_path / "huge.json"), manifest)
    assert result.returncode == 2 and "larger than 1000000 bytes" in result.stderr
    result = run_check("--config", str(tmp_path / "missing.json"), manifest)
    assert result.returncode == 2 and "missing.json: cannot read the policy config: No such file" in result.stderr
    result = run_check("--config", str(tmp_path), manifest)
    assert result.returncode == 2 and f"{tmp_path}: a directory, not a policy config" in result.stderr


def test_fifos_are_never_read_and_say_so(tmp_path: Path) -> None:
    """Reading a FIFO waits for a writer forever; it was reported as "no such file or directory"."""
    os.mkfifo(tmp_path / "pipe.yaml")
    result = run_check(str(tmp_path / "pipe.yaml"))
    assert result.returncode == 2 and "pipe.yaml: not a regular file or directory" in result.stderr
    result = run_check("--config", str(tmp_path / "pipe.yaml"), str(write(tmp_path / "k8s" / "cm.yaml", config_map())))
    assert result.returncode == 2 and "pipe.yaml: not a regular file" in result.stderr
    result = run_check(str(tmp_path))  # in a directory: skipped, and said
    assert result.returncode == 0 and f"skipped {tmp_path / 'pipe.yaml'} (not a regular file)" in result.stderr
    (tmp_path / "k8s" / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")  # a manifest that cannot be read
    result = run_check(str(tmp_path))
    assert result.returncode == 2 and result.stderr == (
        f"error: {tmp_path / 'k8s' / 'gone.yaml'}: no such file or directory (a symbolic link to nothing)\n"
    )


def test_a_directory_that_cannot_be_listed_is_an_error_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """pathlib's rglob skipped a directory it may not list, and its manifests were never checked."""
    import check

    write(tmp_path / "ok" / "pod.yaml", gpu_pod())
    write(tmp_path / "locked" / "pod.yaml", gpu_pod(volumes=[]))
    real = os.scandir

    def scandir(path: Any) -> Any:
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert check.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'locked'}: cannot read directory: Permission denied\n"


def test_a_quota_or_namespace_named_by_a_list_is_no_traceback(tmp_path: Path) -> None:
    """An unhashable namespace made the team-quota rule raise TypeError; it names no namespace, so limits none."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "gpus", "namespace": ["research"]},
        "spec": {"hard": {"requests.nvidia.com/gpu": "8"}},
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ["research"], "labels": {LABEL: "x"}}}
    result = run_check(str(write(tmp_path / "all.yaml", quota, namespace)))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-500:]
    assert result.stdout.count("team-namespace-gpu-quota") == 1


def test_nothing_from_a_manifest_starts_a_line_of_its_own_on_stderr(tmp_path: Path) -> None:
    """A runner reads workflow commands from stderr too: a kind or a file name with line breaks stays one line."""
    manifest = tmp_path / "inject.yaml"
    manifest.write_text('kind: "x\\n::add-mask::x\\n::error title=spoofed::fine List"\nitems: 5\n')
    result = run_check("--format", "github", str(manifest))
    assert result.returncode == 2
    assert not [line for line in result.stderr.splitlines() if line.startswith("::")], result.stderr


def test_checking_nothing_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    result = run_check(str(empty))
    assert result.returncode == 0 and "warning: no Kubernetes object found" in result.stderr


def test_a_file_reached_twice_is_checked_once(tmp_path: Path) -> None:
    manifest = write(tmp_path / "k8s" / "pod.yaml", gpu_pod(volumes=[]))
    once = run_check(str(manifest)).stdout.splitlines()
    twice = run_check(str(tmp_path / "k8s"), str(manifest)).stdout.splitlines()
    assert once and twice == once


def test_two_objects_of_one_name_in_a_file_each_annotate_their_own_line(tmp_path: Path) -> None:
    manifest = write(tmp_path / "dup.yaml", gpu_pod("same"), gpu_pod("same", volumes=[]))
    result = run_check("--format", "github", str(manifest))
    [error] = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    second = manifest.read_text().splitlines().index("---") + 2
    assert f",line={second}," in error
