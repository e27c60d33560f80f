"""The domain is a library: importing it pulls in no web, SQL, crypto or server code."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = [
    "starlette",
    "sqlite3",
    "sqlite_utils",
    "argon2",
    "uvicorn",
    "websockets",
    "apispec",
    "redis",
    "adapters",
    "entrypoints",
]


def test_importing_chatcore_loads_no_adapter_library() -> None:
    probe = "import sys, json, chatcore; print(json.dumps(sorted(sys.modules)))"
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", probe])))
    assert "chatcore" in loaded
    assert loaded.isdisjoint(FORBIDDEN), loaded & set(FORBIDDEN)


def test_importing_chatcore_reads_no_data_file() -> None:
    probe = "import chatcore.rules as r; print(r.common_passwords.cache_info().currsize)"
    assert subprocess.check_output([sys.executable, "-c", probe]).strip() == b"0"
