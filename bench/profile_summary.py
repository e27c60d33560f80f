"""Summarise a py-spy raw profile written by ``run.py --profile DIR``.

    .venv/bin/python bench/profile_summary.py DIR/fanout_chatcore_20x10x50.txt [--top N]

Prints the samples per thread, then the share of samples whose innermost frame is in
each source file, then the top functions (at file:line) by self and by inclusive
samples. With ``--gil`` recording (what run.py
does), every sample is time the thread held the interpreter lock.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?):(?P<line>\d+)\)$")


def where(frame: str) -> tuple[str, str]:
    """(source file, function at file:line) of one py-spy frame."""
    match = FRAME.match(frame)
    if match is None:
        return frame, frame
    file = match["file"].split("site-packages/")[-1]
    return Path(file).name, f"{match['func']} ({file}:{match['line']})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    threads: collections.Counter[str] = collections.Counter()
    by_file: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        if not line.strip():
            continue
        stack, count_text = line.rsplit(" ", 1)
        count = int(count_text)
        thread, *frames = stack.split(";")
        total += count
        threads[re.sub(r"^thread \(\d+\): ", "", thread)] += count
        if not frames:
            continue
        file, leaf = where(frames[-1])
        by_file[file] += count
        own[leaf] += count
        for name in {where(f)[1] for f in frames}:
            inclusive[name] += count
    if not total:
        print("no samples")
        return 1

    def show(title: str, counter: collections.Counter[str]) -> None:
        print(f"--- {title}")
        for name, count in counter.most_common(args.top):
            print(f"{100 * count / total:5.1f}%  {name}")

    print(f"{total} samples")
    show("by thread", threads)
    show("by source file of the innermost frame", by_file)
    show("functions, self", own)
    show("functions, inclusive", inclusive)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
