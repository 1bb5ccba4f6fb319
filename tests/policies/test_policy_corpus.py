"""One corpus, three front ends: check.py, the admission CEL and the policy pack must agree on every case.

tests/policy_corpus/cases/ holds good and bad manifests of every GPU workload kind, expected.yaml their
verdicts (rule ids that fail, by default enforcement).
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.admission import validation_expression
from schemas import crd_schema_dir, evaluate_cel, validate_object
from tools.offline import PROJECT_DIR
from vocabulary.policy_rules import LIMITS_RULE, SHM_RULE
from vocabulary.workloads import WORKLOAD_KINDS

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict[str, list[str]]] = yaml.safe_load((CORPUS / "expected.yaml").read_text())
CASES = sorted(EXPECTED)
ADMISSION_KINDS = {k.kind for k in WORKLOAD_KINDS}


@cache
def case(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CORPUS / "cases" / name).read_text())
    return document


def test_every_case_file_has_an_expectation_and_every_kind_is_covered() -> None:
    assert sorted(p.name for p in (CORPUS / "cases").glob("*.yaml")) == CASES
    kinds = {case(c)["kind"] for c in CASES}
    assert kinds >= ADMISSION_KINDS
    for kind in ADMISSION_KINDS:
        verdicts = [EXPECTED[c]["mandatory"] for c in CASES if case(c)["kind"] == kind]
        assert [] in verdicts and any(verdicts), f"{kind} needs a good and a bad case"


@pytest.mark.parametrize("name", CASES)
def test_cases_are_valid_kubernetes_objects(name: str) -> None:
    obj = case(name)
    if "/" in obj["apiVersion"] and crd_schema_dir() is None and "." in obj["apiVersion"].split("/")[0]:
        pytest.skip("set CRD_SCHEMA_DIR=../shared/reference/crds to validate custom resources")
    assert validate_object(obj, "1.35") == []


def checker_verdict(name: str) -> dict[str, list[str]]:
    from check import run
    from rules import Settings

    findings, _ = run([CORPUS / "cases" / name], Settings())
    verdict: dict[str, list[str]] = {"mandatory": [], "advisory": []}
    for _, finding, level in findings:
        verdict[level].append(finding.rule)
    return {level: sorted(set(rules)) for level, rules in verdict.items()}


@pytest.mark.parametrize("name", CASES)
def test_checker_verdict(name: str) -> None:
    assert checker_verdict(name) == EXPECTED[name]


def admission_request(obj: dict[str, Any], old: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the API server binds for a CREATE (or, with `old`, an UPDATE)."""
    return {"object": obj, "request": {"operation": "UPDATE" if old else "CREATE"}, "oldObject": old}


def admission_verdict(obj: dict[str, Any]) -> list[str]:
    """The mandatory rules the deployed ValidatingAdmissionPolicy expressions reject, evaluated offline."""
    if obj["kind"] not in ADMISSION_KINDS:
        return []
    return sorted(
        rule
        for rule in (SHM_RULE, LIMITS_RULE)
        if evaluate_cel(
            validation_expression(obj["kind"], rule),
            {"object": obj, "request": {"operation": "CREATE"}, "oldObject": None},
        )
        is not True
    )


@pytest.mark.parametrize("name", CASES)
def test_admission_cel_agrees_with_the_checker(name: str) -> None:
    assert admission_verdict(case(name)) == checker_verdict(name)["mandatory"] == EXPECTED[name]["mandatory"]


def test_stack_rule_on_the_corpus_stack() -> None:
    from check import run
    from rules import Settings

    expected = yaml.safe_load((CORPUS / "stack-expected.yaml").read_text())["findings"]
    findings, code = run([CORPUS / "stack"], Settings())
    assert code == 0
    assert [{"rule": f.rule, "object": f.object} for _, f, _ in findings] == expected


def test_checker_cli_on_the_whole_corpus() -> None:
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "policies" / "check.py"), str(CORPUS / "cases")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1  # the bad cases fail mandatory rules
    lines = result.stdout.splitlines()
    # One line per finding: each expected rule id appears at least once per case, and nothing unexpected.
    for name in CASES:
        rules = {line.split(": ")[2] for line in lines if line.startswith(str(CORPUS / "cases" / name) + ":")}
        assert rules == set(EXPECTED[name]["mandatory"] + EXPECTED[name]["advisory"]), name
    good = [str(CORPUS / "cases" / c) for c in CASES if not EXPECTED[c]["mandatory"] and not EXPECTED[c]["advisory"]]
    clean = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "policies" / "check.py"), *good],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (clean.returncode, clean.stdout) == (0, "")


def test_updates_of_objects_that_already_failed_are_not_blocked() -> None:
    """Ratcheting: controllers must still update (finalizers, scale-down) objects admitted before the policy."""
    bad, good = case("pytorchjob-worker-no-shm.yaml"), case("pytorchjob-good.yaml")
    expression = validation_expression("PyTorchJob", SHM_RULE)
    assert evaluate_cel(expression, admission_request(bad)) is False  # CREATE: denied
    assert evaluate_cel(expression, admission_request(bad, old=bad)) is True  # UPDATE of a failing object
    assert evaluate_cel(expression, admission_request(bad, old=good)) is False  # UPDATE that breaks a good one
