"""Check Kubernetes manifests against the ml-platform GPU policies, for workload repositories and CI.

    python policies/check.py [--format text|json] [--config policies/config/prod.json] FILE_OR_DIR...

Reads YAML files (multi-document; directories recursively), prints one line per finding
`path: Kind/name: policy-id: message`, and exits 1 when a mandatory rule fails, 0 otherwise, 2 when an input
cannot be read. Needs only the rule modules next to it, the repository's `vocabulary/` package and PyYAML.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

# The rules live next to this file; the names they share with the Pulumi program in ../vocabulary.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import yaml

from rules import RULES_BY_ID, Finding, Settings, check_object, check_stack, describe, enforcement
from settings import load_settings

SUFFIXES = (".yaml", ".yml")


class UnreadableInputError(Exception):
    pass


def manifest_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise UnreadableInputError(f"{path}: no such file or directory")


def read_objects(path: Path, ignore_other: bool = False) -> list[dict[str, Any]]:
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UnreadableInputError(f"{path}: cannot read YAML: {exc}") from None
    objects: list[dict[str, Any]] = []
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, Mapping) or not isinstance(doc.get("kind"), str) or not doc.get("kind"):
            if ignore_other:
                continue  # e.g. a Helm values.yaml or a CI workflow in the same tree
            raise UnreadableInputError(f"{path}: a document is not a Kubernetes object (no kind)")
        if doc["kind"].endswith("List"):
            # A List (kubectl get -o yaml) holds objects in items.
            items = doc.get("items") or []
            if not isinstance(items, list):
                raise UnreadableInputError(f"{path}: {doc['kind']} items is not a list")
            objects += [dict(i) for i in items if isinstance(i, Mapping)]
        else:
            objects.append(dict(doc))
    return objects


def run(
    paths: list[Path], settings: Settings, ignore_other: bool = False
) -> tuple[list[tuple[str, Finding, str]], int]:
    """[(path, finding, enforcement)], exit code."""
    results: list[tuple[str, Finding, str]] = []
    every: list[tuple[str, dict[str, Any]]] = []
    for path in manifest_files(paths):
        for obj in read_objects(path, ignore_other):
            every.append((str(path), obj))
            results += [(str(path), f, enforcement(RULES_BY_ID[f.rule], settings)) for f in check_object(obj, settings)]
    # Stack rules see every object read; a finding is reported at the file of the object it names.
    where = {describe(o): p for p, o in every}
    for finding in check_stack([o for _, o in every], settings):
        results.append(
            (where.get(finding.object, "<stack>"), finding, enforcement(RULES_BY_ID[finding.rule], settings))
        )
    failed = any(level == "mandatory" for _, _, level in results)
    return results, 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="YAML files or directories")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--config", type=Path, help="policy config, e.g. policies/config/prod.json")
    parser.add_argument(
        "--ignore-non-kubernetes",
        action="store_true",
        help="skip YAML documents that are not Kubernetes objects instead of exiting 2 (for whole repositories)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config) if args.config else Settings()
        results, code = run(args.paths, settings, args.ignore_non_kubernetes)
    except (UnreadableInputError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        report = [
            {"path": p, "enforcement": level, **asdict(f), "remediation": RULES_BY_ID[f.rule].remediation}
            for p, f, level in results
        ]
        print(
            json.dumps(
                {"findings": report, "mandatoryFailures": sum(r["enforcement"] == "mandatory" for r in report)},
                indent=2,
            )
        )
    else:
        for path, finding, level in results:
            print(f"{path}: {finding.object}: {finding.rule}: {finding.message} ({level})")
        if results:
            print(
                f"{len(results)} finding(s), {sum(level == 'mandatory' for _, _, level in results)} mandatory",
                file=sys.stderr,
            )
    return code


if __name__ == "__main__":
    sys.exit(main())
