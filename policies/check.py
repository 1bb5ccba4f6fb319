"""Check Kubernetes manifests against the ml-platform GPU policies, for workload repositories and CI.

    python policies/check.py [--format text|json|github] [--config policies/config/prod.json] FILE_OR_DIR...

Reads YAML files (multi-document; directories recursively), prints one line per finding
`path: Kind/name: policy-id: message` (`--format github`: GitHub Actions annotations on the line each object's
document starts at), and exits 1 when a mandatory rule fails, 0 otherwise, 2 with one `error:`
line when an input or the config cannot be read or checked (never a traceback). Needs only the rule modules next
to it, the repository's `vocabulary/` package and PyYAML.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The rules live next to this file; the names they share with the Pulumi program in ../vocabulary.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import yaml
from yaml.composer import Composer

from rules import RULES, RULES_BY_ID, Finding, Settings, check_object, check_stack, describe, enforcement
from settings import ConfigError, load_settings

SUFFIXES = (".yaml", ".yml", ".json")  # kubectl applies JSON manifests too; JSON is YAML


class UnreadableInputError(Exception):
    pass


def _mode(path: Path) -> int:
    """The file type bits of `path` (links followed); UnreadableInputError when it cannot be looked at."""
    try:
        return path.stat().st_mode
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            broken = " (a symbolic link to nothing)" if path.is_symlink() else ""
            raise UnreadableInputError(f"{path}: no such file or directory{broken}") from None
        raise UnreadableInputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _manifests_under(root: Path, skipped: list[str]) -> list[Path]:
    """Every .yaml, .yml and .json regular file under `root`, sorted. A directory that cannot be listed is an error
    (rglob would skip it silently); a FIFO, socket or device of that name is skipped and said (reading a FIFO waits
    for a writer forever). Links to directories are not followed (no loops)."""

    def unreadable(exc: OSError) -> None:
        raise UnreadableInputError(f"{exc.filename}: cannot read directory: {exc.strerror or exc}")

    found: list[Path] = []
    for directory, _, names in os.walk(root, onerror=unreadable):
        for name in names:
            path = Path(directory, name)
            if path.suffix.lower() not in SUFFIXES:
                continue
            if stat.S_ISREG(_mode(path)):
                found.append(path)
            else:
                skipped.append(f"{path} (not a regular file)")
    return sorted(found)


def manifest_files(paths: list[Path], skipped: list[str] | None = None) -> Iterator[Path]:
    """Each file once, however many of `paths` reach it (`k8s/ k8s/job.yaml`: one set of findings)."""
    skipped = [] if skipped is None else skipped
    seen: set[Path] = set()

    def first_time(path: Path) -> bool:
        key = path.resolve()
        new = key not in seen
        seen.add(key)
        return new

    for path in paths:
        mode = _mode(path)
        if stat.S_ISDIR(mode):
            found = _manifests_under(path, skipped)
            if not found:
                raise UnreadableInputError(f"{path}: no .yaml, .yml or .json files (nothing would be checked)")
            yield from (f for f in found if first_time(f))
        elif stat.S_ISREG(mode):
            if first_time(path):
                yield path
        else:
            raise UnreadableInputError(
                f"{path}: not a regular file or directory (a FIFO, socket or device is not read)"
            )


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
# faster than the C composer after a separate depth pass (docs/policies.md). An alias counts as deep as the node it
# names, where it stands.
MAX_DEPTH = 200
# Values aliases may add to a file, far more than hand-written anchors share, far fewer than a "billion laughs" alias
# bomb expands to: a 1 kB file whose `*a9` stands for 10**9 values exhausts memory once a rule reads it. Counted as
# nodes are composed (an alias adds every value of the node it names, aliases within it included), so a bomb fails
# at its first big alias, before anything is built. Tools do not write aliases (kubectl, Helm, kustomize expand them).
MAX_ALIAS_VALUES = 100_000


class TooDeepError(Exception):
    pass


class AliasBombError(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class RecursiveAliasError(AliasBombError):
    pass


# libyaml's parser where PyYAML has it (several times faster on large manifests), with PyYAML's Python composer in
# front of libyaml's; else PyYAML's own loader, whose composer is already the Python one.
_LOADER_BASES: tuple[Any, ...] = (Composer, yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else (yaml.SafeLoader,)


class Loader(*_LOADER_BASES):  # type: ignore[misc]  # PyYAML ships no type hints
    """A safe loader that counts collection depth, and the values aliases stand for, while it composes nodes."""

    def __init__(self, stream: Any) -> None:
        _LOADER_BASES[-1].__init__(self, stream)
        Composer.__init__(self)  # CSafeLoader does not run it: the Python composer's anchors
        self.depth = 0
        self.deepest = 0  # the deepest level reached in the node being composed
        self.values = 0  # values composed in this file, those aliases stand for included
        self.aliased = 0  # of which aliases added
        self.sizes: dict[str, tuple[int, int]] = {}  # anchor of this document: (values, height) of its node

    def compose_document(self) -> Any:
        self.sizes = {}  # anchors are the document's
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        kind, anchor = type(event), event.anchor
        if kind is yaml.AliasEvent:
            self._expand(event)
            return super().compose_node(parent, index)
        self.values += 1
        if kind is yaml.ScalarEvent and anchor is None:  # most nodes: nothing more to count
            return super().compose_node(parent, index)
        collection = kind is not yaml.ScalarEvent
        self.depth += collection
        try:
            if self.depth > MAX_DEPTH:
                raise TooDeepError
            if anchor is None:
                self.deepest = max(self.deepest, self.depth)
                return super().compose_node(parent, index)
            # An anchored node: measure what an alias to it will stand for (values, levels below its parent).
            values, outer = self.values - 1, max(self.deepest, self.depth)
            self.deepest = self.depth
            node = super().compose_node(parent, index)
            self.sizes[anchor] = (self.values - values, self.deepest - (self.depth - collection))
            self.deepest = max(outer, self.deepest)
            return node
        finally:
            self.depth -= collection

    def _expand(self, event: Any) -> None:
        """Count what the alias stands for; the composer itself reports an undefined one."""
        if event.anchor not in self.anchors:
            return
        line = event.start_mark.line + 1
        if event.anchor not in self.sizes:  # still being composed: the alias is inside the node it names
            raise RecursiveAliasError(line)
        values, height = self.sizes[event.anchor]
        self.values += values
        self.aliased += values
        if self.aliased > MAX_ALIAS_VALUES:
            raise AliasBombError(line)
        self.deepest = max(self.deepest, self.depth + height)
        if self.deepest > MAX_DEPTH:
            raise TooDeepError

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ArithmeticError, LookupError, TypeError, ValueError):
            # `!!int abc`, `!!timestamp 2024-13-45`, a 5000-digit integer: PyYAML's constructors fail with Python
            # errors, not YAML ones.
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            value = node.value if isinstance(node.value, str) else ""
            shown = repr(value) if len(value) <= 60 else f"{value[:40]!r}... ({len(value)} characters)"
            raise yaml.constructor.ConstructorError(
                None, None, f"{shown} is not a {tag} value", node.start_mark
            ) from None


def _documents(stream: Any) -> Iterator[tuple[Any, int]]:
    """Each YAML document of a stream with the line (1-based) it starts at."""
    loader = Loader(stream)
    try:
        while loader.check_data():
            event = loader.peek_event()
            # an explicit `---` stands on its own line: the document's content starts below it
            line = event.start_mark.line + 1 + (1 if getattr(event, "explicit", False) else 0)
            yield loader.get_data(), line
    finally:
        loader.dispose()


@dataclass
class Lines:
    """Where findings go in `--format github`: the line of the object last read, the first line of each object by
    file and name (stack findings name an object), and the line of each result, in order."""

    current: int = 1
    first: dict[str, int] = field(default_factory=dict)
    of_results: list[int] = field(default_factory=list)


def read_objects(
    path: Path,
    ignore_other: bool = False,
    skipped: list[str] | None = None,
    lines: Lines | None = None,
) -> Iterator[dict[str, Any]]:
    """Every Kubernetes object of a file (Lists expanded), one document at a time: a large file is never held
    whole. Documents that are not objects are errors, or skipped and named in `skipped` with `ignore_other`. With
    `lines`, records the line each object's document starts at."""
    skipped = [] if skipped is None else skipped
    try:
        with path.open(encoding="utf-8") as stream:
            for index, (doc, line) in enumerate(_documents(stream)):
                if doc is None:
                    continue
                where = f"{path} document {index + 1}"
                if not isinstance(doc, Mapping) or not isinstance(doc.get("kind"), str) or not doc.get("kind"):
                    if ignore_other:
                        skipped.append(f"{where} (not a Kubernetes object)")  # e.g. a Helm values.yaml
                        continue
                    raise UnreadableInputError(f"{where}: not a Kubernetes object (no kind)")
                for obj in _expand(doc, where, skipped):
                    if lines is not None:
                        lines.current = line
                        lines.first.setdefault(f"{path}\0{describe(obj)}", line)
                    yield obj
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UnreadableInputError(f"{path}: cannot read YAML: {exc}") from None
    except TooDeepError:
        raise UnreadableInputError(f"{path}: nested more than {MAX_DEPTH} levels deep: not a manifest") from None
    except RecursiveAliasError as exc:
        raise UnreadableInputError(
            f"{path}: line {exc.line}: an alias inside the node it names (a recursive value): not a manifest"
        ) from None
    except AliasBombError as exc:
        raise UnreadableInputError(
            f"{path}: line {exc.line}: its aliases expand to more than {MAX_ALIAS_VALUES} values (a YAML alias bomb?)"
        ) from None
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


class InternalError(Exception):
    """Something the checker did not foresee while checking `where`: reported as exit 2, never a traceback."""

    def __init__(self, where: str, cause: BaseException) -> None:
        super().__init__(where, cause)
        self.where = where
        self.cause = cause

    def __str__(self) -> str:
        detail = f"{type(self.cause).__name__}: {self.cause}"
        return f"internal error while checking {self.where}: {detail[:300]}"


def _check(path: Path, obj: Mapping[str, Any], settings: Settings) -> list[Finding]:
    try:
        return check_object(obj, settings)
    except ArithmeticError as exc:
        # Rules compare quantities only within bounds (rules/values.py quantity()); a decimal error that still
        # escapes is this object's, never a traceback.
        raise UnreadableInputError(f"{path}: {describe(obj)}: a number cannot be checked ({exc!r:.200})") from None
    except RecursionError:
        raise UnreadableInputError(f"{path}: {describe(obj)}: nested too deeply to check") from None


def run(
    paths: list[Path],
    settings: Settings,
    ignore_other: bool = False,
    skipped: list[str] | None = None,
    lines: Lines | None = None,
) -> tuple[list[tuple[str, Finding, str]], int]:
    """[(path, finding, enforcement)], exit code. What is skipped (documents that are not objects) is appended to
    `skipped`. Objects are checked as they are read; only those the stack rules read are kept for them.
    UnreadableInputError for an input that cannot be checked, InternalError for anything unforeseen."""
    results: list[tuple[str, Finding, str]] = []
    kept: list[tuple[str, dict[str, Any]]] = []
    kinds = _stack_kinds(settings)
    where = ", ".join(map(str, paths))
    try:
        for path in manifest_files(paths, skipped):
            where = str(path)
            for obj in read_objects(path, ignore_other, skipped, lines):
                if kinds is None or obj.get("kind") in kinds:
                    kept.append((str(path), obj))
                found_here = [
                    (str(path), f, enforcement(RULES_BY_ID[f.rule], settings)) for f in _check(path, obj, settings)
                ]
                results += found_here
                if lines is not None:
                    lines.of_results += [lines.current] * len(found_here)
        # Stack rules see every object they read; a finding is reported at the file of the object it names.
        where = ", ".join(sorted({p for p, _ in kept})) or where
        found = {describe(o): p for p, o in kept}
        for finding in check_stack([o for _, o in kept], settings):
            at = found.get(finding.object, "<stack>")
            results.append((at, finding, enforcement(RULES_BY_ID[finding.rule], settings)))
            if lines is not None:
                lines.of_results.append(lines.first.get(f"{at}\0{finding.object}", 1))
    except UnreadableInputError:
        raise
    except Exception as exc:
        raise InternalError(where, exc) from exc
    failed = any(level == "mandatory" for _, _, level in results)
    return results, 1 if failed else 0


def one_line(text: str) -> str:
    """Text from file names and manifests on one line: a runner reads workflow commands (`::...`) from stderr too,
    so a line break inside a name must not start a line of its own."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def checked(lines: Lines, results: list[tuple[str, Finding, str]]) -> bool:
    """Whether any object was read (every object read records its line)."""
    return bool(lines.first) or bool(results)


def _escape(text: str, property: bool = False) -> str:
    """GitHub's workflow-command escaping (`%`, CR, LF; in properties also `:` and `,`)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property else text


def github_annotation(path: str, line: int, finding: Finding, level: str) -> str:
    """A finding as a GitHub Actions annotation on the line its object's document starts: an error when the rule is
    mandatory, a warning otherwise."""
    command = "error" if level == "mandatory" else "warning"
    properties = f"file={_escape(path, True)},line={line},title={_escape(finding.rule + ' (' + level + ')', True)}"
    return f"::{command} {properties}::{_escape(finding.object + ': ' + finding.message)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="YAML files or directories")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text")
    parser.add_argument("--config", type=Path, help="policy config, e.g. policies/config/prod.json")
    parser.add_argument(
        "--ignore-non-kubernetes",
        action="store_true",
        help="skip YAML documents that are not Kubernetes objects instead of exiting 2 (for whole repositories)",
    )
    args = parser.parse_args(argv)
    skipped: list[str] = []
    where = str(args.config)
    try:
        settings = load_settings(args.config) if args.config else Settings()
        where = ", ".join(map(str, args.paths))
        lines = Lines()
        results, code = run(args.paths, settings, args.ignore_non_kubernetes, skipped, lines)
    except (UnreadableInputError, InternalError, ConfigError) as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # the last resort (run() names the file it was reading): exit 2, never a traceback
        print(f"error: {one_line(str(InternalError(where, exc)))}", file=sys.stderr)
        return 2
    for what in skipped:
        print(f"skipped {one_line(what)}", file=sys.stderr)
    if not checked(lines, results):
        print("warning: no Kubernetes object found in " + one_line(", ".join(map(str, args.paths))), file=sys.stderr)
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
    elif args.format == "github":
        for (path, finding, level), line in zip(results, lines.of_results, strict=True):
            print(github_annotation(path, line, finding, level))
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
