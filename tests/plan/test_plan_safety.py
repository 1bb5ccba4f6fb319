"""The plan CLI never deletes what it did not write, and reads stack files as the Pulumi CLI does: every odd file
ends in a clear message (exit 1), never a traceback, a hang or a deleted file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import tools.plan
from tools.offline import PROJECT_DIR
from tools.stack_file import StackFileError, read_stack_file

DEV = (PROJECT_DIR / "Pulumi.dev.yaml").read_text()


def plan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = tools.plan.main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.err


def test_an_out_folder_with_other_files_is_refused_and_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text("1,2")
    code, err = plan(capsys, "local", "--out", str(tmp_path))
    assert code == 1 and "not empty and not written by `make plan`" in err
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "sub" / "data.csv").is_file()
    assert not (tmp_path / "resources.json").exists()


def test_a_plan_folder_is_replaced_but_other_files_in_it_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert plan(capsys, "local", "--out", str(out))[0] == 0
    (out / "manifests" / "999-stale.yaml").write_text("kind: Stale\n")
    (out / "README.txt").write_text("kept")
    assert plan(capsys, "local", "--out", str(out))[0] == 0
    assert not (out / "manifests" / "999-stale.yaml").exists()
    assert (out / "README.txt").read_text() == "kept" and (out / "resources.json").is_file()


def test_the_stack_file_itself_is_never_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(DEV)
    code, _ = plan(capsys, "dev", "--stack-file", str(stack_file), "--out", str(tmp_path))
    assert code == 1 and stack_file.read_text() == DEV


@pytest.mark.parametrize("name", ["..", ".", "../x", "Dev", "a/b", "", "dev-", "x" * 64])
def test_stack_names_that_could_escape_build_are_refused(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = plan(capsys, name, "--stack-file", str(PROJECT_DIR / "Pulumi.dev.yaml"))
    assert code == 1 and "stack name" in err
    assert (PROJECT_DIR / ".git").is_dir() and (PROJECT_DIR / "Pulumi.yaml").is_file()


def test_out_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    code, err = plan(capsys, "local", "--out", str(target))
    assert code == 1 and "not a folder" in err and target.read_text() == "x"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.yaml").write_text("x: 1\n")
    out = tmp_path / "out"
    assert plan(capsys, "local", "--out", str(out))[0] == 0
    for old in (out / "manifests").iterdir():
        old.unlink()
    (out / "manifests").rmdir()
    (out / "manifests").symlink_to(elsewhere)
    code, err = plan(capsys, "local", "--out", str(out))
    assert code == 1 and (elsewhere / "keep.yaml").is_file()


# ---------------------------------------------------------------- stack files as the CLI reads them


def read(tmp_path: Path, text: str | bytes) -> dict[str, str]:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return read_stack_file("x", PROJECT_DIR, path).config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("config: [a, b]\n", "config: is a list"),
        ("config: 3\n", "config: is a int"),
        ("just text\n", "the document is a str"),
        ("config:\n  1: 2\n", "config key 1 is not text"),
        ("config:\n  ml-platform:environment: dev\n  ml-platform:environment: prod\n", "duplicate key"),
        ("config:\n  ml-platform:x: !!set {a, b}\n", "!!set is not a config value"),
        ("config: {}\n---\nconfig: {}\n", "2 YAML documents"),
        ("confg:\n  ml-platform:environment: dev\n", "unknown top-level key(s) confg"),
        ("config: {a: [1, 2\n", "not valid YAML"),
        (b"config:\n  ml-platform:x: caf\xe9\n", "not UTF-8"),
    ],
)
def test_odd_stack_files_are_clear_errors(tmp_path: Path, text: str | bytes, message: str) -> None:
    with pytest.raises(StackFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read(tmp_path, text)


def test_dates_and_binary_read_as_the_text_written(tmp_path: Path) -> None:
    config = read(
        tmp_path,
        "config:\n  ml-platform:a: 2025-12-31\n  ml-platform:b: {expires: 2025-12-31}\n"
        "  ml-platform:c: !!binary aGVsbG8=\n",
    )
    assert config == {
        "ml-platform:a": "2025-12-31",
        "ml-platform:b": '{"expires": "2025-12-31"}',
        "ml-platform:c": "aGVsbG8=",
    }


def test_booleans_are_yaml_1_2_ones_as_the_cli_reads_them(tmp_path: Path) -> None:
    """go-yaml v3 reads yes/no/on/off as text: a switch written `yes` must fail the plan as it fails `pulumi up`."""
    config = read(tmp_path, "config:\n  ml-platform:b: {a: yes, b: off, c: true, d: False, e: n}\n")
    assert json.loads(config["ml-platform:b"]) == {"a": "yes", "b": "off", "c": True, "d": False, "e": "n"}


def test_floats_are_yaml_1_2_ones_as_the_cli_reads_them(tmp_path: Path) -> None:
    """go-yaml v3 reads 1e3 and 2E+10 as numbers (YAML 1.1 needs a dot); text that only looks alike stays text."""
    config = read(tmp_path, "config:\n  ml-platform:b: {a: 1e3, b: 2E+10, c: 1.5, d: 1Gi, e: 1e, f: 250m}\n")
    assert json.loads(config["ml-platform:b"]) == {"a": 1000.0, "b": 2e10, "c": 1.5, "d": "1Gi", "e": "1e", "f": "250m"}


def test_an_alias_bomb_fails_fast(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    text = "config:\n  ml-platform:bomb:\n" + "\n".join("    " + line for line in lines) + "\n"
    started = time.perf_counter()
    with pytest.raises(StackFileError, match="aliases expand to more than"):
        read(tmp_path, text)
    assert time.perf_counter() - started < 5


def test_a_bad_stack_through_the_cli_names_the_file_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "Pulumi.mine.yaml"
    bad.write_text(DEV.replace("autoscaler: karpenter", "autoscaler: kerpenter"))
    code, err = plan(capsys, "dev", "--stack-file", str(bad))
    assert code == 1 and f"in {bad};" in err and "Pulumi.dev.yaml" not in err


def test_an_ipv6_vpc_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "Pulumi.v6.yaml"
    bad.write_text(DEV.replace("cidr: 10.40.0.0/16", "cidr: 2001:db8::/56"))
    code, err = plan(capsys, "v6", "--stack-file", str(bad))
    assert code == 1 and 'ml-platform:cluster.vpc.cidr: got "2001:db8::/56"; expected an IPv4 CIDR block' in err
