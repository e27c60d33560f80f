"""The README's curl walk-through, run as a reader would: every ```sh block of its sections
"The API with curl" and "Real time", in order, in one bash process, against a live
`chatcore serve` on a fresh database (in the directory where the README's default
`./chatcore.db` lives, so `chatcore createsuperuser` finds it as it would for a reader).

The conventions the README follows (and this file enforces):

- ```sh blocks run; ```json / ```text blocks right after one (blank lines between at
  most) show what it prints, and are compared with what it did print: JSON structurally
  (same keys, same values, except tokens and times, which only keep their type), text
  line by line. Any other block (```console for an interactive aside) is not run.
- `BASE=http://127.0.0.1:8000` in the first block is the one address; the test points it
  at its own server, here and in the shown outputs.
- `curl` answers 2xx unless the command announces otherwise at its end, `# -> 404`, and
  then it must answer exactly that. Here `curl` is a bash function shadowing the real
  one that records the status (the README's commands stay plain `curl -s`).

`CHATCORE_UPDATE_README=1` rewrites the shown outputs from the run instead (then read the
diff: the test cannot tell a right change from a wrong one).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTIONS = ("## The API with curl", "## Real time")
DEFAULT_BASE = "http://127.0.0.1:8000"
BASE_LINE = f"BASE={DEFAULT_BASE}"
RUNNABLE = "sh"
OUTPUT = ("json", "text")
MARKER = re.compile(r"#\s*->\s*(\d{3})\b")
# Values that differ from run to run: compared by type only.
VOLATILE = frozenset({"token", "timestamp", "date_joined", "created_at", "edited_at"})
DEADLINE = 180.0
UPDATE = os.environ.get("CHATCORE_UPDATE_README") == "1"
WIDTH = 96  # shown JSON: values that fit stay on one line

# Shadows curl: the real one's status goes to a file; a status other than the announced
# one (CURL_EXPECT, else any 2xx) is written down and fails the command, hence the script.
PRELUDE = r"""
set -euo pipefail
exec 2>&1
curl() {
    local want="${CURL_EXPECT:-2xx}" code rc=0
    command curl --max-time 30 "$@" -w '%{stderr}%{http_code}' 2>"$WALK_STATUS" || rc=$?
    code=$(<"$WALK_STATUS")
    if [[ $rc -ne 0 ]]; then
        printf 'curl exited %s: curl %s\n' "$rc" "$*" | tee -a "$WALK_FAILURES" >&2
        return 1
    fi
    if [[ ( $want == 2xx && $code == 2?? ) || $code == "$want" ]]; then
        return 0
    fi
    printf 'answered %s where the README announces %s: curl %s\n' "$code" "$want" "$*" \
        | tee -a "$WALK_FAILURES" >&2
    return 1
}
"""


@attrs.frozen
class Block:
    lang: str
    text: str
    line: int  # of the opening fence, 1-based


@attrs.frozen
class Step:
    """A runnable block, as it will run, and the output the README shows for it."""

    code: str
    line: int
    shown: Block | None


def fenced_blocks(markdown: str) -> list[tuple[Block, bool]]:
    """Every fenced block in the given sections, each with whether it directly follows
    the previous block (nothing but blank lines between them)."""
    blocks: list[tuple[Block, bool]] = []
    lines = markdown.split("\n")
    in_section = False
    gap_is_blank = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            in_section = line.startswith(SECTIONS)
            gap_is_blank = False
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence and in_section:
            end = lines.index("```", i + 1)
            block = Block(fence.group(1), "\n".join(lines[i + 1 : end]) + "\n", i + 1)
            blocks.append((block, gap_is_blank))
            gap_is_blank = True
            i = end + 1
            continue
        if line.strip():
            gap_is_blank = False
        i += 1
    return blocks


def announce(code: str) -> str:
    """`# -> NNN` at the end of a command becomes `CURL_EXPECT=NNN` before its `curl`."""
    lines = code.split("\n")
    for i, line in enumerate(lines):
        marker = MARKER.search(line)
        if not marker:
            continue
        start = i
        while start > 0 and lines[start - 1].rstrip().endswith("\\"):
            start -= 1
        head = lines[start]
        assert head.lstrip().startswith("curl "), f"a `# ->` marker on a non-curl command: {head}"
        indent = head[: len(head) - len(head.lstrip())]
        lines[start] = f"{indent}CURL_EXPECT={marker.group(1)} {head.lstrip()}"
    return "\n".join(lines)


def steps(markdown: str, base: str) -> list[Step]:
    result: list[Step] = []
    for block, follows in fenced_blocks(markdown):
        if block.lang == RUNNABLE:
            result.append(
                Step(announce(block.text.replace(BASE_LINE, f"BASE={base}")), block.line, None)
            )
        elif block.lang in OUTPUT and follows and result and result[-1].shown is None:
            result[-1] = attrs.evolve(result[-1], shown=block)
    return result


# --- comparing what was shown with what was printed ---------------------------------------


def items(text: str) -> list[Any]:
    """The JSON values and the other non-blank lines of an output, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text[i] in "[{":
            value, i = decoder.raw_decode(text, i)
            found.append(value)
        else:
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            found.append(("line", text[i:end].rstrip()))
            i = end
    return found


def differences(shown: Any, printed: Any, where: str = "") -> Iterator[str]:
    if isinstance(shown, dict) and isinstance(printed, dict):
        if set(shown) != set(printed):
            yield f"{where or 'top'}: keys {sorted(shown)} shown, {sorted(printed)} printed"
        for key in set(shown) & set(printed):
            at = f"{where}.{key}"
            if key in VOLATILE:
                if type(shown[key]) is not type(printed[key]):
                    yield f"{at}: {shown[key]!r} shown, {printed[key]!r} printed"
            else:
                yield from differences(shown[key], printed[key], at)
    elif isinstance(shown, list) and isinstance(printed, list):
        if len(shown) != len(printed):
            yield f"{where or 'top'}: {len(shown)} items shown, {len(printed)} printed"
        for n, (a, b) in enumerate(zip(shown, printed, strict=False)):
            yield from differences(a, b, f"{where}[{n}]")
    elif shown != printed or type(shown) is not type(printed):
        yield f"{where or 'top'}: {shown!r} shown, {printed!r} printed"


def compare(shown: str, printed: str, base: str) -> list[str]:
    expected, actual = items(shown.replace(DEFAULT_BASE, base)), items(printed)
    problems = [
        f"#{n}{d}"
        for n, pair in enumerate(zip(expected, actual, strict=False))
        for d in differences(*pair)
    ]
    if len(expected) != len(actual):
        problems.append(f"{len(expected)} outputs shown, {len(actual)} printed")
    return problems


# --- running ------------------------------------------------------------------------------


@attrs.frozen
class Run:
    returncode: int
    outputs: list[str]  # what each step printed, as far as the run got
    failures: str
    transcript: str


def run_steps(story: list[Step], workdir: Path) -> Run:
    """All steps in one bash, each after a sentinel line, with the venv's bin first on
    PATH (its `chatcore`, and `python3` with `websockets`) and no CHATCORE_* settings."""
    sentinel = f"@@step-{uuid.uuid4().hex}@@"
    script = PRELUDE + "".join(f"printf '\\n{sentinel}\\n'\n{step.code}" for step in story)
    script_path = workdir / "walkthrough.sh"
    script_path.write_text(script)
    failures = workdir / "failures.txt"
    failures.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["WALK_STATUS"] = str(workdir / "status.txt")
    env["WALK_FAILURES"] = str(failures)
    process = subprocess.Popen(
        ["bash", str(script_path)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that a hang is ended with all its children
    )
    try:
        transcript, _ = process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        transcript, _ = process.communicate()
        pytest.fail(f"the walk-through did not finish within {DEADLINE:.0f}s:\n{transcript}")
    outputs = transcript.split(f"\n{sentinel}\n")[1:]
    return Run(process.returncode, outputs, failures.read_text(), transcript)


def check(story: list[Step], run: Run, base: str) -> list[str]:
    """Everything wrong with a run, by README line: failed steps, then wrong outputs."""
    if run.returncode != 0 or run.failures:
        failed = story[len(run.outputs) - 1] if run.outputs else story[0]
        printed = run.outputs[-1] if run.outputs else run.transcript
        why = "" if run.failures in printed else run.failures
        return [
            f"the step at README.md:{failed.line} failed (bash exit {run.returncode}):\n"
            f"{why}{printed}"
        ]
    problems = []
    for step, printed in zip(story, run.outputs, strict=True):
        if step.shown is None:
            continue
        for problem in compare(step.shown.text, printed, base):
            problems.append(f"README.md:{step.shown.line}: {problem}\nprinted:\n{printed}")
    return problems


# --- rewriting the shown outputs -----------------------------------------------------------


def spread(value: Any, indent: str = "") -> str:
    """JSON for reading: what fits in WIDTH on one line, the rest one member a line."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= WIDTH or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        members = [f"{inner}{json.dumps(k)}: {spread(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    members = [f"{inner}{spread(v, inner)}" for v in value]
    return "[\n" + ",\n".join(members) + f"\n{indent}]"


def rewrite_outputs(markdown: str, story: list[Step], run: Run, base: str) -> str:
    lines = markdown.split("\n")
    for step, printed in reversed(list(zip(story, run.outputs, strict=True))):
        if step.shown is None:
            continue
        found = items(printed.replace(base, DEFAULT_BASE))
        text = [x[1] if isinstance(x, tuple) else spread(x) for x in found]
        lang = "text" if any(isinstance(x, tuple) for x in found) else "json"
        start = step.shown.line - 1
        end = lines.index("```", start + 1)
        lines[start : end + 1] = [f"```{lang}", *"\n".join(text).split("\n"), "```"]
    return "\n".join(lines)


# --- the tests ----------------------------------------------------------------------------


def test_the_readme_walkthrough_runs_top_to_bottom(server_factory: Any, tmp_path: Path) -> None:
    markdown = README.read_text()
    assert markdown.count(BASE_LINE) == 1, f"the walk-through sets {BASE_LINE} once"
    server = server_factory(db=tmp_path / "chatcore.db")
    story = steps(markdown, server.url)
    assert len(story) > 10, "the walk-through's blocks were not found"
    assert all(step.shown is not None for step in story[1:]), [
        step.line for step in story[1:] if step.shown is None
    ]
    run = run_steps(story, tmp_path)
    if UPDATE and run.returncode == 0 and not run.failures:
        README.write_text(rewrite_outputs(markdown, story, run, server.url))
        return
    problems = check(story, run, server.url)
    assert not problems, "\n\n".join(problems) + f"\n\nserver log:\n{server.output()}"


# The harness itself can fail: a story that breaks itself, and one that announces a
# failure that does not happen, are both caught; an announced failure passes.
BROKEN = {
    "logout, then the token is used again unannounced": """
```sh
BASE=http://127.0.0.1:8000
T=$(curl -s -X POST $BASE/api/register/ -H 'Content-Type: application/json' \\
  -d '{"username": "dora", "password": "quiet meadow 4", "password_confirm": "quiet meadow 4"}' \\
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
curl -s -X POST $BASE/api/logout/ -H "Authorization: Token $T"
curl -s $BASE/api/me/ -H "Authorization: Token $T"
```
""",
    "a 404 announced that answers 200": """
```sh
BASE=http://127.0.0.1:8000
curl -s $BASE/api/schema/ -o /dev/null       # -> 404
```
""",
    "a failing curl inside a command substitution": """
```sh
BASE=http://127.0.0.1:8000
X=$(curl -s $BASE/api/me/)
echo "not reached"
```
""",
    "an output that differs from the one shown": """
```sh
BASE=http://127.0.0.1:8000
curl -s $BASE/api/me/ -H 'Authorization: Token nope'       # -> 401
```

```json
{"detail": "Not the message the server sends."}
```
""",
}


@pytest.mark.parametrize("name", BROKEN)
def test_the_harness_catches_a_broken_story(name: str, server_factory: Any, tmp_path: Path) -> None:
    server = server_factory(db=tmp_path / "chatcore.db")
    story = steps("## The API with curl\n" + BROKEN[name], server.url)
    problems = check(story, run_steps(story, tmp_path), server.url)
    assert problems, name
    assert "not reached" not in "".join(problems)


def test_the_harness_passes_an_announced_failure(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory(db=tmp_path / "chatcore.db")
    markdown = """## The API with curl
```sh
BASE=http://127.0.0.1:8000
curl -s $BASE/api/me/ \\
  -H 'Authorization: Token nope'       # -> 401
```

```json
{"detail": "Invalid token."}
```
"""
    story = steps(markdown, server.url)
    run = run_steps(story, tmp_path)
    assert check(story, run, server.url) == []
