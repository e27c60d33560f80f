"""Chats that change, over PostgreSQL: these tests of test_api_chat_changes.py, run
against the PostgreSQL server (see test_postgres_serve.py; a module of its own because
its fixtures share names with test_api_messages.py's)."""

from __future__ import annotations

from typing import Any

import pytest
from test_api_chat_changes import (  # noqa: F401
    four,
    room,
    test_a_deleted_message_is_in_no_response,
    test_a_removed_participant_loses_the_chat_at_once,
    test_add_participants_and_they_see_the_whole_history,
    test_events_replay_edits_with_the_latest_content_and_seq_is_the_chats,
    test_the_last_admin_leaving_hands_over_to_the_longest_standing,
    test_the_sender_edits_others_get_403_outsiders_404,
)


@pytest.fixture(scope="session")
def server(postgres_server: Any) -> Any:
    """For the tests of this module: the PostgreSQL server."""
    return postgres_server
