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
from yaml.composer import Composer

from rules import RULES, RULES_BY_ID, Finding, Settings, check_object, check_stack, describe, enforcement
from settings import load_settings

SUFFIXES = (".yaml", ".yml", ".json")  # kubectl applies JSON manifests too; JSON is YAML


class UnreadableInputError(Exception):
    pass


def manifest_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
            if not found:
                raise UnreadableInputError(f"{path}: no .yaml, .yml or .json files (nothing would be checked)")
            yield from found
        elif path.is_file():
            yield path
        else:
            raise UnreadableInputError(f"{path}: no such file or directory")


def _expand(doc: Mapping[str, Any], where: str, skipped: list[str]) -> Iterator[dict[str, Any]]:
    """A List (kubectl get -o yaml) holds objects in items, possibly Lists again."""
    if str(doc["kind"]).endswith("List"):
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise UnreadableInputError(f"{where}: {doc['kind']} items is not a list")
        for i, item in enumerate(items):
            if isinstance(item, Mapping) and isinstance(item.get("kind"), str) and item.get("kind"):
                yield from _expand(item, f"{where} items[{i}]", skipped)
            else:
                skipped.append(f"{where} items[{i}] (not a Kubernetes object)")
        return
    yield dict(doc)


# Far deeper than any manifest. Nesting this deep (`[[[...`, `- - - ...`) makes YAML readers crawl or crash:
# libyaml's C composer recurses per level (block sequences segfaulted it). So nodes are composed by PyYAML's Python
# composer, which counts the depth as it goes, from the events of libyaml's C parser (which nests nothing): one pass,
# faster than the C composer after a separate depth pass (docs/policies.md).
MAX_DEPTH = 200


class TooDeepError(Exception):
    pass


# libyaml's parser where PyYAML has it (several times faster on large manifests), with PyYAML's Python composer in
# front of libyaml's; else PyYAML's own loader, whose composer is already the Python one.
_LOADER_BASES: tuple[Any, ...] = (Composer, yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else (yaml.SafeLoader,)


class Loader(*_LOADER_BASES):  # type: ignore[misc]  # PyYAML ships no type hints
    """A safe loader that counts collection depth while it composes nodes."""

    def __init__(self, stream: Any) -> None:
        _LOADER_BASES[-1].__init__(self, stream)
        Composer.__init__(self)  # CSafeLoader does not run it: the Python composer's anchors
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        collection = bool(self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent))
        self.depth += collection
        try:
            if self.depth > MAX_DEPTH:
                raise TooDeepError
            return super().compose_node(parent, index)
        finally:
            self.depth -= collection


def read_objects(path: Path, ignore_other: bool = False, skipped: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every Kubernetes object of a file (Lists expanded), one document at a time: a large file is never held
    whole. Documents that are not objects are errors, or skipped and named in `skipped` with `ignore_other`."""
    skipped = [] if skipped is None else skipped
    try:
        with path.open(encoding="utf-8") as stream:
            for index, doc in enumerate(yaml.load_all(stream, Loader=Loader)):
                if doc is None:
                    continue
                where = f"{path} document {index + 1}"
                if not isinstance(doc, Mapping) or not isinstance(doc.get("kind"), str) or not doc.get("kind"):
                    if ignore_other:
                        skipped.append(f"{where} (not a Kubernetes object)")  # e.g. a Helm values.yaml
                        continue
                    raise UnreadableInputError(f"{where}: not a Kubernetes object (no kind)")
                yield from _expand(doc, where, skipped)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UnreadableInputError(f"{path}: cannot read YAML: {exc}") from None
    except TooDeepError:
        raise UnreadableInputError(f"{path}: nested more than {MAX_DEPTH} levels deep: not a manifest") from None
    except RecursionError:
        raise UnreadableInputError(f"{path}: nested too deeply to be a Kubernetes manifest") from None


def _stack_kinds(settings: Settings) -> set[str] | None:
    """The kinds the enabled stack rules read (None: every kind)."""
    kinds: set[str] = set()
    for rule in RULES:
        if rule.on_stack is not None and enforcement(rule, settings) != "disabled":
            if not rule.stack_kinds:
                return None
            kinds.update(rule.stack_kinds)
    return kinds


def run(
    paths: list[Path], settings: Settings, ignore_other: bool = False, skipped: list[str] | None = None
) -> tuple[list[tuple[str, Finding, str]], int]:
    """[(path, finding, enforcement)], exit code. What is skipped (documents that are not objects) is appended to
    `skipped`. Objects are checked as they are read; only those the stack rules read are kept for them."""
    results: list[tuple[str, Finding, str]] = []
    kept: list[tuple[str, dict[str, Any]]] = []
    kinds = _stack_kinds(settings)
    for path in manifest_files(paths):
        for obj in read_objects(path, ignore_other, skipped):
            if kinds is None or obj.get("kind") in kinds:
                kept.append((str(path), obj))
            results += [(str(path), f, enforcement(RULES_BY_ID[f.rule], settings)) for f in check_object(obj, settings)]
    # Stack rules see every object they read; a finding is reported at the file of the object it names.
    where = {describe(o): p for p, o in kept}
    for finding in check_stack([o for _, o in kept], settings):
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
    skipped: list[str] = []
    try:
        settings = load_settings(args.config) if args.config else Settings()
        results, code = run(args.paths, settings, args.ignore_non_kubernetes, skipped)
    except (UnreadableInputError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print("error: an object is nested too deeply to check", file=sys.stderr)
        return 2
    for what in skipped:
        print(f"skipped {what}", file=sys.stderr)
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
