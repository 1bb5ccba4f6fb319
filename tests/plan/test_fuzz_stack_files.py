"""Fuzzing the plan CLI with mutated stack files (issue 9).

Each example takes one of the four stack files (dev, gke, local, prod) and changes it at random:

- in the parsed YAML, at a path drawn from the document: a value replaced by one of another type or an extreme
  one (None, 2**64, negative numbers, nan and inf, text with unicode and control characters, empty and deeply
  nested lists and maps, a `secure:` value, the value as text, the value in a list) or by a plausible one (the
  value another stack file has for that key, a number a little or a lot larger), a key deleted, renamed or made
  non-text, an unknown key added, a list entry repeated (a copy, or the same node: YAML aliases), two values
  swapped, a value pointing back at its own parent (a recursive alias);
- in the text: cut short, bytes or YAML syntax inserted (non-UTF-8 bytes, tabs, tags, anchors, document
  markers), lines deleted, repeated or re-indented.

`tools/plan.py`'s `main()` then runs in this process (a subprocess costs seconds per example) with `--stack-file`
and `--out` in a fresh temporary folder, and the result must be one of:

- exit 0: the plan files in the output folder;
- exit 1, nothing written: either `error: <the file read>: ...` (a file the Pulumi CLI would not read), or
  `N problem(s) in <the file read>; nothing was deployed:` and N lines that each name a stack key path
  (`ml-platform:gpuPools[0].maxNodes: got ...; ...`) whose stack key is in the file or in the schema.

Never an exception (a traceback), a logged exception, a control character echoed from the file (a tab aside),
a broken plan invariant (the config validated but the plan
is wrong), an example that runs past EXAMPLE_SECONDS (a SIGALRM ends it; a faulthandler watchdog ends the whole
run if even that does not return), or a file written or changed outside the output folder (audit hooks record
every file the process opens for writing, creates, renames or removes; the temporary folder is also compared
before and after).

`make test` runs FUZZ_EXAMPLES examples (150) from seed FUZZ_SEED (9): about 25 s on 2 cores. A longer soak run, with
another seed (about 6 minutes per 2000 examples; hypothesis then shrinks the first failure and prints its file):

    FUZZ_EXAMPLES=2000 FUZZ_SEED=7 .venv/bin/python -m pytest tests/plan/test_fuzz_stack_files.py

Failures found by soak runs and fixed keep their minimal reproducer in FOUND below.
"""

from __future__ import annotations

import contextlib
import copy
import faulthandler
import gc
import io
import json
import logging
import math
import os
import re
import signal
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, currently_in_test_context, given, note, seed, settings
from hypothesis import strategies as st

import tools.plan
from components.config.platform import STACK_KEYS
from tools.offline import PROJECT_DIR, drain_event_loop
from tools.stack_file import read_stack_file

STACKS = ("dev", "gke", "local", "prod")
ORIGINALS = {stack: (PROJECT_DIR / f"Pulumi.{stack}.yaml").read_bytes() for stack in STACKS}

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SEED = int(os.environ.get("FUZZ_SEED", "9"))
# A plan of a valid stack takes under a second here (a few seconds for the first plan of a cloud: imports); one
# that runs for EXAMPLE_SECONDS is a hang.
EXAMPLE_SECONDS = 30
WATCHDOG_SECONDS = 90

KeyPath = tuple[Any, ...]


# ---------------------------------------------------------------- values


def deep(depth: int, kind: str, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1, 7, 2**31, 2**63, 2**64, -(2**64), 10**100]),
    st.integers(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.5, 1.5, 1e308, 5e-324, -1e-9]),
    st.floats(),
    st.sampled_from(
        [
            "",
            " ",
            "null",
            "~",
            "yes",
            "off",
            "NaN",
            ".inf",
            "1e400",
            "0x1F",
            "010",
            "1_000",
            "4 ",
            "-0",
            "2025-12-31",
            "caf\u00e9",
            "\u202eevil",
            "a\u0000b",
            "\t",
            "a\nb",
            "\u2028",
            "\ufeff",
            "\U0001f600",
            "ml-platform:cluster",
            "<secret ml-platform:x>",
            "{not json",
            "[1, 2",
            '{"a": 1}',
            "[]",
            "*",
            "&a",
            "!!set",
            "x" * 5000,
        ]
    ),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
)

VALUES: st.SearchStrategy[Any] = st.one_of(
    SCALARS,
    st.sampled_from([[], {}, [None], [{}], {"": None}]).map(copy.deepcopy),  # fresh: later steps change them
    st.lists(SCALARS, max_size=4),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
    st.builds(deep, st.integers(2, 60), st.sampled_from(["list", "map"]), SCALARS),
    st.builds(lambda text: {"secure": text}, st.sampled_from(["v1:AAAA", "", "x" * 200])),
)

# Keys a typo or a copy-paste gives, besides random text.
KEY_NAMES: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(["", " ", "ml-platform:", "ml-platform:bogus", "aws:region", "config", "name", "secure", "<<"]),
    st.sampled_from(sorted(STACK_KEYS)),
    st.text(max_size=12),
    st.integers(-2, 2**64),
    st.none(),
    st.booleans(),
)


def vocabulary() -> dict[Any, list[Any]]:
    """Every value each key has in the four stack files: `gpu` -> l4, a100-40gb, h100-80gb, ...; `cloud` -> aws, gcp,
    existing. Another stack's value is usually a valid one, so these steps reach the program, not only the schema."""
    found: dict[Any, list[Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if value not in found.setdefault(key, []):
                    found[key].append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for content in ORIGINALS.values():
        walk(yaml.safe_load(content))
    return found


VOCABULARY = vocabulary()


def derived(old: Any, how: str) -> Any:
    """A value made from the one there: the same meaning in another type, or a neighbour."""
    if how == "list":
        return [old]
    if how == "map":
        return {"value": old}
    if how in ("text", "secure"):
        try:
            text = old if isinstance(old, str) else json.dumps(old)
        except ValueError:  # a recursive value
            text = "<recursive>"
        return text if how == "text" else {"secure": text}
    if isinstance(old, bool) or not isinstance(old, int | float):
        return old
    return {"negate": -old, "huge": old * 2**64 + 1, "half": old + 0.5, "float": float(old)}[how]


# ---------------------------------------------------------------- paths into a document


def paths(node: Any, prefix: KeyPath = (), seen: frozenset[int] = frozenset()) -> list[KeyPath]:
    if id(node) in seen:
        return [prefix]
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key), seen | {id(node)})
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += paths(value, (*prefix, index), seen | {id(node)})
    return out


def get(document: Any, path: KeyPath) -> Any:
    for part in path:
        document = document[part]
    return document


def put(document: Any, path: KeyPath, value: Any) -> Any:
    """The document with the value at path replaced (the root replaced when path is empty)."""
    if not path:
        return value
    get(document, path[:-1])[path[-1]] = value
    return document


def rename(container: dict[Any, Any], old: Any, new: Any) -> None:
    """Rename a key in place, keeping the order of the keys."""
    items = [(new if k == old else k, v) for k, v in container.items()]
    container.clear()
    container.update(items)


# ---------------------------------------------------------------- mutations


@dataclass
class Mutant:
    stack: str
    steps: list[str] = field(default_factory=list)
    content: bytes = b""

    def __repr__(self) -> str:
        return f"Mutant({self.stack}: {'; '.join(self.steps)})"


DEEP_MARKER = "@@deep@@"


def deep_text(depth: int, style: str) -> str:
    """Nesting too deep for PyYAML's recursive composer, in flow or block style."""
    if style == "flow-list":
        return "[" * depth + "]" * depth
    if style == "flow-map":
        return "{a: " * depth + "1" + "}" * depth
    return "\n" + "".join(" " * (2 * i + 6) + "-\n" for i in range(depth)) + " " * (2 * depth + 6) + "x"


# Operations on the parsed document, weighted: a recursive alias or deep nesting makes the whole file unreadable and
# would hide what the other steps do if drawn as often.
OPS = ["replace", "transplant"] * 4 + ["derive", "nudge", "delete", "add", "rename", "duplicate", "swap"] * 2
OPS += ["recurse", "deep"]


@st.composite
def yaml_level(draw: st.DrawFn, stack: str) -> Mutant:
    mutant = Mutant(stack)
    document: Any = yaml.safe_load(ORIGINALS[stack])
    deep_value: str | None = None
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(document)
        path = draw(st.sampled_from(candidates))
        op = draw(st.sampled_from(OPS))
        parent: Any = get(document, path[:-1]) if path else None
        if op == "replace":
            value = draw(VALUES)
            document = put(document, path, value)
            mutant.steps.append(f"{list(path)} = {value!r:.80}")
        elif op == "derive":
            how = draw(st.sampled_from(["list", "map", "text", "secure", "negate", "huge", "half", "float"]))
            document = put(document, path, derived(get(document, path), how))
            mutant.steps.append(f"{list(path)} as {how}")
        elif op == "transplant" and path and path[-1] in VOCABULARY:
            value = copy.deepcopy(draw(st.sampled_from(VOCABULARY[path[-1]])))
            document = put(document, path, value)
            mutant.steps.append(f"{list(path)} = {value!r:.80} (another stack's)")
        elif op == "nudge" and isinstance(get(document, path), int) and not isinstance(get(document, path), bool):
            value = get(document, path) + draw(st.sampled_from([-2, -1, 1, 2, 8, 100, 10_000]))
            document = put(document, path, value)
            mutant.steps.append(f"{list(path)} = {value}")
        elif op == "delete" and path:
            del parent[path[-1]]
            mutant.steps.append(f"del {list(path)}")
        elif op == "add" and isinstance(get(document, path), dict | list):
            target = get(document, path)
            value = draw(VALUES)
            if isinstance(target, dict):
                key = draw(KEY_NAMES)
                target[key] = value
                mutant.steps.append(f"{list(path)}[{key!r}] added = {value!r:.60}")
            else:
                target.insert(draw(st.integers(0, len(target))), value)
                mutant.steps.append(f"{list(path)} inserted {value!r:.60}")
        elif op == "rename" and isinstance(parent, dict):
            old = path[-1]
            new = draw(
                st.one_of(
                    KEY_NAMES,
                    st.sampled_from(
                        [str(old).lower(), str(old).upper(), f"{old} ", str(old)[:-1], f"ml-platform:{old}"]
                        + ([str(old).partition(":")[2]] if ":" in str(old) else [])
                    ),
                )
            )
            if new not in parent:
                rename(parent, old, new)
                mutant.steps.append(f"{list(path)} renamed {new!r}")
        elif op == "duplicate" and isinstance(parent, list):
            entry = get(document, path)
            alias = draw(st.booleans())
            parent.insert(path[-1], entry if alias else copy.deepcopy(entry))
            mutant.steps.append(f"{list(path)} repeated{' (same node)' if alias else ''}")
        elif op == "swap" and path:
            other = draw(st.sampled_from(candidates))
            if other and other[: len(path)] != path and path[: len(other)] != other:
                a, b = get(document, path), get(document, other)
                put(document, path, b)
                put(document, other, a)
                mutant.steps.append(f"{list(path)} swapped with {list(other)}")
        elif op == "recurse" and path and isinstance(parent, dict | list):
            ancestor = get(document, path[: draw(st.integers(0, len(path) - 1))])
            put(document, path, ancestor)
            mutant.steps.append(f"{list(path)} = its ancestor (recursive alias)")
        elif op == "deep" and deep_value is None:
            deep_value = deep_text(
                draw(st.integers(100, 5000)), draw(st.sampled_from(["flow-list", "flow-map", "block"]))
            )
            document = put(document, path, DEEP_MARKER)
            mutant.steps.append(
                f"{list(path)} = nested {deep_value.count('[') or deep_value.count('-') or deep_value.count('{')} deep"
            )
    style = draw(st.sampled_from(["block", "flow", "json"]))
    try:
        if style == "json":
            text = json.dumps(document, ensure_ascii=False, indent=2)
        else:
            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=style == "flow")
    except ValueError:  # json: a recursive alias
        style = "block"
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if deep_value is not None:
        text = re.sub(rf"(['\"]){DEEP_MARKER}\1", lambda _: deep_value, text)
    mutant.steps.append(f"written as {style}")
    mutant.content = text.encode("utf-8", "surrogatepass")
    return mutant


TOKENS = [
    b"\xff",
    b"\xc3(",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\t",
    b"\x00",
    b"\r",
    b"\x85",
    b"\xe2\x80\xa8",
    b": ",
    b"- ",
    b"&a ",
    b"*a",
    b"!!set ",
    b"!!binary ",
    b"!!timestamp ",
    b"!!python/object/apply:os.system ",
    b"!!float ",
    b"!!int ",
    b"!!str ",
    b"!!map ",
    b"!!seq ",
    b"!!null ",
    b"!local ",
    b"? ",
    b"<<: ",
    b"---\n",
    b"...\n",
    b"%YAML 1.1\n---\n",
    b"%TAG ! tag:x,2000:\n---\n",
    b"{",
    b"}",
    b"[",
    b"]",
    b"'",
    b'"',
    b"#",
    b"|\n",
    b">-\n",
    b"@",
    b"%",
    b",",
    b"\\",
]


@st.composite
def text_level(draw: st.DrawFn, content: bytes) -> tuple[bytes, str]:
    op = draw(st.sampled_from(["truncate", "bytes", "token", "tab", "delete-line", "repeat-line", "indent"]))
    lines = content.splitlines(keepends=True)
    if op in ("tab", "delete-line", "repeat-line", "indent") and lines:
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        if op == "tab":
            stripped = line.lstrip(b" ")
            lines[i] = b"\t" * draw(st.integers(1, 2)) + stripped if stripped != line else b"\t" + line
        elif op == "delete-line":
            del lines[i]
        elif op == "repeat-line":
            lines.insert(i, line)
        else:
            shift = draw(st.sampled_from([-2, -1, 1, 2]))
            lines[i] = b" " * shift + line if shift > 0 else line[-shift:] if line[:-shift].isspace() else line
        return b"".join(lines), f"line {i + 1} {op}"
    pos = draw(st.integers(0, len(content)))
    if op == "truncate":
        return content[:pos], f"cut at byte {pos}"
    insert = draw(st.binary(min_size=1, max_size=8)) if op == "bytes" else draw(st.sampled_from(TOKENS))
    return content[:pos] + insert + content[pos:], f"{insert!r} inserted at byte {pos}"


@st.composite
def mutants(draw: st.DrawFn) -> Mutant:
    stack = draw(st.sampled_from(STACKS))
    level = draw(st.sampled_from(["yaml", "yaml", "yaml", "yaml+text", "text"]))
    mutant = Mutant(stack, content=ORIGINALS[stack]) if level == "text" else draw(yaml_level(stack))
    if level != "yaml":
        for _ in range(draw(st.integers(1, 2))):
            mutant.content, step = draw(text_level(mutant.content))
            mutant.steps.append(step)
    return mutant


# ---------------------------------------------------------------- running the CLI and checking what it did


class ExampleTimeoutError(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise ExampleTimeoutError(f"a plan ran for more than {EXAMPLE_SECONDS}s")


@contextlib.contextmanager
def time_limit() -> Iterator[None]:
    """SIGALRM ends an example that runs past EXAMPLE_SECONDS; should it hang where a signal cannot reach (inside C
    code), the faulthandler watchdog prints every thread's stack and ends the test run instead of hanging it."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, EXAMPLE_SECONDS)
    faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


# Every file this process creates, changes or removes while a plan runs (PEP 578 audit events): besides the
# snapshot of the temporary folder, this catches a write anywhere (build/, the project, /tmp) even while another
# process, a developer's `make plan`, writes there too.
WRITE_EVENTS = {
    "os.chmod",
    "os.chown",
    "os.link",
    "os.mkdir",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "shutil.copyfile",
    "shutil.copymode",
    "shutil.copystat",
    "shutil.move",
    "shutil.rmtree",
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_writes: list[tuple[str, Path]] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _writes is None or not (event == "open" or event in WRITE_EVENTS):
        return
    if event == "open":
        path, mode, flags = args
        if mode is None:  # os.open
            writing = isinstance(flags, int) and bool(flags & WRITE_FLAGS)
        else:
            writing = bool(set(str(mode)) & set("wax+"))
        if not writing:
            return
        targets = [path]
    else:
        targets = [a for a in args[:2] if isinstance(a, str | bytes | os.PathLike)][: 2 if event == "os.rename" else 1]
    for target in targets:
        if isinstance(target, str | bytes | os.PathLike):
            _writes.append((event, Path(os.path.abspath(os.fsdecode(target)))))


sys.addaudithook(_audit)


@contextlib.contextmanager
def writes_recorded() -> Iterator[list[tuple[str, Path]]]:
    global _writes
    recorded: list[tuple[str, Path]] = []
    _writes = recorded
    try:
        yield recorded
    finally:
        _writes = None


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file and folder under root (but skip): size and modification time."""
    found: dict[str, tuple[int, int]] = {}
    if not root.exists():
        return found
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if skip is None or Path(folder, d) != skip]
        for name in dirs + files:
            path = Path(folder, name)
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size if name in files else 0, stat.st_mtime_ns)
    return found


PROBLEM = re.compile(
    r"  - ml-platform:(?P<head>[A-Za-z0-9_-]+|\[\"(?:[^\"\\]|\\.)*\"\])"
    r"(?:\.[A-Za-z0-9_-]+|\[\d+\]|\[\"(?:[^\"\\]|\\.)*\"\])*: (?:missing|got \S)"
)


def problem_heads(stack_path: Path, stack: str) -> set[str]:
    """The stack keys a config problem may name: those in the file read and those of the schema."""
    config = read_stack_file(stack, PROJECT_DIR, stack_path).config
    keys = {key.partition(":")[2] for key in config if key.partition(":")[0] == "ml-platform"}
    return {json.dumps(key) if not re.fullmatch(r"[A-Za-z0-9_-]+", key) else key for key in keys | set(STACK_KEYS)}


def check_exit_1(err: str, stack_path: Path, stack: str) -> None:
    if err.startswith("error: "):
        assert err.startswith(f"error: {stack_path}: "), f"a file-level error that does not name the file read:\n{err}"
        return
    header, *lines = err.rstrip("\n").split("\n")
    match = re.fullmatch(rf"(\d+) problem\(s\) in {re.escape(str(stack_path))}; nothing was deployed:", header)
    assert match, f"exit 1 without config problems or a file error:\n{err}"
    assert int(match[1]) == len(lines) > 0, f"{match[1]} problems announced, {len(lines)} listed:\n{err}"
    heads = problem_heads(stack_path, stack)
    for line in lines:
        problem = PROBLEM.match(line)
        assert problem, f"a problem that names no key path:\n{line}\nin\n{err}"
        head = problem["head"].removeprefix("[").removesuffix("]")
        assert head in heads, f"a problem names a stack key that is neither in the file nor in the schema:\n{line}"


def say(text: str) -> None:
    """A note printed with a falsifying example (run_plan also serves plain tests)."""
    if currently_in_test_context():
        note(text)


def run_plan(mutant: Mutant) -> tuple[int, str, list[tuple[str, Path]]]:
    """Plan the mutant, check what the plan did; exit code, stderr and the files written."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = Path(tmp)
        stack_path = root / f"Pulumi.{mutant.stack}.yaml"
        stack_path.write_bytes(mutant.content)
        out = root / "out"
        before = snapshot(root)
        stdout, stderr, records = io.StringIO(), io.StringIO(), Records()
        logging.getLogger().addHandler(records)
        started = time.perf_counter()
        try:
            with (
                writes_recorded() as writes,
                time_limit(),
                contextlib.redirect_stdout(stdout),
                contextlib.redirect_stderr(stderr),
            ):
                code = tools.plan.main([mutant.stack, "--stack-file", str(stack_path), "--out", str(out)])
        finally:
            drain_event_loop()
            # "exception was never retrieved" is logged now, for this example, not for a later one; what survives is
            # frozen, so the next collection scans only the next example's objects (a full one takes a second).
            gc.collect()
            gc.freeze()
            logging.getLogger().removeHandler(records)
        say(f"exit {code} after {time.perf_counter() - started:.2f}s\nstdout:\n{stdout.getvalue()}")
        say(f"stderr:\n{stderr.getvalue()}")
        out_text, err = stdout.getvalue(), stderr.getvalue()
        assert "Traceback" not in out_text + err
        # Messages quote what they echo: no control character from the file (but a tab) reaches a terminal or CI log.
        controls = {c for c in out_text + err if unicodedata.category(c) == "Cc"} - {"\n", "\t"}
        assert not controls, f"control characters {sorted(controls)} in the output:\n{err!r}"
        logged = [r for r in records.records if r.exc_info or "Traceback" in r.getMessage()]
        assert not logged, "an exception was logged:\n" + "\n".join(r.getMessage() for r in logged)
        outside = sorted({f"{event} {path}" for event, path in writes if not path.is_relative_to(out)})
        assert not outside, "written outside the output folder:\n" + "\n".join(outside)
        assert snapshot(root, skip=out) == before, "files written or changed beside the output folder"
        assert stack_path.read_bytes() == mutant.content
        assert code in (0, 1), f"exit {code}"
        if code == 0:
            assert json.loads((out / "resources.json").read_text()), "an empty plan"
            assert (out / "manifests").is_dir() and "Offline plan of stack" in out_text
            return code, err, writes
        assert not out.exists() and not writes, "a failed plan wrote files"
        assert "platform invariant(s) broken" not in err, f"the config validated but the plan is wrong:\n{err}"
        check_exit_1(err, stack_path, mutant.stack)
        return code, err, writes


@pytest.fixture(autouse=True, scope="module")
def _unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=EXAMPLE_SECONDS),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(mutants())
def test_mutated_stack_files_plan_or_fail_cleanly(mutant: Mutant) -> None:
    note("file:\n" + mutant.content.decode("utf-8", "backslashreplace"))
    run_plan(mutant)


def test_the_checks_see_a_plan_write_its_files() -> None:
    """The write recorder is not blind: an unchanged stack file plans, and every file it writes is recorded."""
    code, _, writes = run_plan(Mutant("local", content=ORIGINALS["local"]))
    assert code == 0
    assert {path.name for event, path in writes if event == "open"} >= {"resources.json", ".ml-platform-plan"}


# What soak runs found, fixed in tools/stack_file.py and components/config/errors.py.
FOUND = [
    # A recursive alias: RecursionError in the reader.
    ("&a\nconfig: *a\n", "line 1: an alias inside the node it names (a recursive alias)"),
    ("config:\n  ml-platform:teams: &t [{name: a, gpuQuota: 1, pools: *t}]\n", "(a recursive alias)"),
    # A value its tag cannot hold: ValueError, IndexError or KeyError from PyYAML's constructors.
    ('{\n!!int   "config": {}}\n', "'config' is not a !!int value"),
    ('config:\n  ml-platform:environment: !!int ""\n', "'' is not a !!int value"),
    ("config:\n  ml-platform:environment: !!bool maybe\n", "'maybe' is not a !!bool value"),
    ("config:\n  ml-platform:environment: !!float x\n", "'x' is not a !!float value"),
    # A key with no name: a problem named `ml-platform:` alone.
    ('config:\n  "": dev\n', "config key '' has no name"),
    ("config:\n  'ml-platform:': dev\n", "config key 'ml-platform:' has no name"),
    # Two spellings of one key: one silently replaced the other.
    ("config:\n  teams: []\n  ml-platform:teams: []\n", "'teams' and 'ml-platform:teams' are both ml-platform:teams"),
    # Text that opens like JSON but is not: the only problem shown, in "the stack file" instead of the file read.
    (
        'config:\n  ml-platform:teams: "[1, 2"\n  ml-platform:autoscaler: x\n',
        'ml-platform:teams: got "[1, 2"; not valid',
    ),
    ('config:\n  ml-platform:teams: "[1, 2"\n  ml-platform:autoscaler: x\n', "ml-platform:autoscaler: got"),
    # An unknown key that is not a plain name is quoted, as nested keys are.
    ("config:\n  ml-platform:gpu pools: []\n", 'ml-platform:["gpu pools"]: got []; unknown key'),
]


@pytest.mark.parametrize(("text", "message"), FOUND)
def test_what_fuzzing_found(text: str, message: str) -> None:
    code, err, _ = run_plan(Mutant("dev", ["found by fuzzing"], text.encode()))
    assert code == 1 and message in err, err


def test_a_stack_file_of_many_values_is_refused_in_seconds() -> None:
    """Found while measuring: a 1 MB list of small values took half a minute to read (PyYAML's Python parser, twice)
    and was called an alias bomb. libyaml's parser reads it once."""
    text = "config:\n  ml-platform:teams: [" + "1, " * 330_000 + "]\n"
    started = time.perf_counter()
    code, err, _ = run_plan(Mutant("dev", ["330000 values"], text.encode()))
    assert code == 1 and "more than 100000 values; no stack file needs that many" in err, err
    assert time.perf_counter() - started < 15
