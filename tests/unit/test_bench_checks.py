"""The benchmark's stream checks (bench/loadgen.py) catch what they claim to: a figure of
"0 lost, 0 duplicated, 0 misordered" is only worth something if the checker can fail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BENCH = str(Path(__file__).resolve().parents[2] / "bench")
sys.path.insert(0, BENCH)  # the harness's modules import each other by name
try:
    import loadgen
finally:
    sys.path.remove(BENCH)


def message(seq: int, mid: int, content: str, kind: str = "message") -> dict[str, Any]:
    sender = {"id": 7, "username": "u", "user_type": "student"}
    body = {"id": mid, "chat": 1, "sender": sender, "content": content}
    return {"type": kind, "chat_id": 1, "seq": seq, "message": body}


def deleted(seq: int, mid: int) -> dict[str, Any]:
    return {"type": "message_deleted", "chat_id": 1, "seq": seq, "message_id": mid}


LIVE = [
    message(1, 10, "first"),
    message(2, 11, "second"),
    message(3, 10, "first, edited", "message_edited"),
    deleted(4, 11),
]
# The same seqs as GET .../events/?since=0 renders them afterwards.
REPLAY = [
    message(1, 10, "first, edited"),
    deleted(2, 11),
    message(3, 10, "first, edited", "message_edited"),
    deleted(4, 11),
]


def test_a_clean_stream_has_no_faults() -> None:
    assert loadgen.stream_faults(LIVE, 1) == {"duplicated": 0, "misordered": 0, "gaps": 0}


def test_duplicates_misorders_and_gaps_are_counted() -> None:
    stream = [LIVE[0], LIVE[2], LIVE[1], LIVE[1]]  # 1, 3, 2, 2; 4 never came
    assert loadgen.stream_faults(stream, 1) == {"duplicated": 1, "misordered": 1, "gaps": 0}
    assert loadgen.stream_faults([LIVE[0], LIVE[3]], 1)["gaps"] == 2
    assert loadgen.stream_faults([LIVE[2]], 1)["gaps"] == 2  # it should have started at 1


def test_a_live_stream_renders_as_its_replay() -> None:
    assert loadgen.rendered(LIVE) == loadgen.rendered(REPLAY)
    assert loadgen.rendered(REPLAY) == [
        ("message", 1, 10, 7, "first, edited"),
        ("message_deleted", 2, 11),
        ("message_edited", 3, 10, 7, "first, edited"),
        ("message_deleted", 4, 11),
    ]


def test_a_stream_unlike_its_replay_is_told_apart() -> None:
    assert loadgen.rendered(LIVE[:3]) != loadgen.rendered(REPLAY)  # the delete was missed
    wrong = [*LIVE[:2], message(3, 10, "another edit", "message_edited"), LIVE[3]]
    assert loadgen.rendered(wrong) != loadgen.rendered(REPLAY)
