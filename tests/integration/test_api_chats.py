"""Chats over HTTP: creation by ids and usernames, validation, visibility, the chat list
and its pages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters.sqlite import SqliteStorage


@pytest.fixture
def trio(client: httpx.Client, api: Any) -> list[tuple[dict[str, Any], str]]:
    """Three fresh users as (user, token)."""
    return [api.register(client) for _ in range(3)]


def _ids(chat: dict[str, Any]) -> set[int]:
    return {user["id"] for user in chat["participants"]}


def test_create_by_ids_answers_201_chat_with_the_creator_in(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (alice, token), (bob, _), (carol, _) = trio
    response = client.post(
        "/api/chats/",
        json={"name": "by ids", "participant_ids": [bob["id"], carol["id"]]},
        headers=api.auth(token),
    )
    assert response.status_code == 201, response.text
    chat = api.assert_json(response)
    api.assert_chat(chat)
    assert chat["name"] == "by ids"
    assert chat["last_message"] is None
    assert _ids(chat) == {alice["id"], bob["id"], carol["id"]}
    by_id = {user["id"]: user for user in chat["participants"]}
    for user in (alice, bob, carol):
        assert by_id[user["id"]] == {k: user[k] for k in ("id", "username", "user_type")}


def test_create_by_usernames_and_by_both_ignoring_duplicates(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (alice, token), (bob, _), (carol, _) = trio
    by_names = api.create_chat(client, token, usernames=[bob["username"], carol["username"]])
    assert _ids(by_names) == {alice["id"], bob["id"], carol["id"]}

    both = api.create_chat(
        client,
        token,
        ids=[bob["id"], bob["id"], alice["id"]],
        usernames=[bob["username"], carol["username"], carol["username"], alice["username"]],
    )
    assert _ids(both) == {alice["id"], bob["id"], carol["id"]}
    assert len(both["participants"]) == 3

    alone = api.create_chat(client, token, ids=[alice["id"]])
    assert [u["id"] for u in alone["participants"]] == [alice["id"]]
    only_creator = api.create_chat(client, token, ids=[])
    assert [u["id"] for u in only_creator["participants"]] == [alice["id"]]


def test_every_participant_sees_the_new_chat(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (_, alice_token), (bob, bob_token), (_, carol_token) = trio
    chat = api.create_chat(client, alice_token, ids=[bob["id"]])
    for token in (alice_token, bob_token):
        response = client.get(f"/api/chats/{chat['id']}/", headers=api.auth(token))
        assert response.status_code == 200, response.text
        assert api.assert_json(response) == chat
    api.assert_detail(client.get(f"/api/chats/{chat['id']}/", headers=api.auth(carol_token)), 404)


def test_an_unknown_participant_id_is_a_400_naming_it(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (_, token), (bob, _), _ = trio
    missing = 987654321
    response = client.post(
        "/api/chats/",
        json={"name": "x", "participant_ids": [bob["id"], missing]},
        headers=api.auth(token),
    )
    body = api.assert_field_error(response, "participant_ids")
    assert str(missing) in " ".join(body["participant_ids"]), body


def test_an_unknown_participant_username_is_a_400_naming_it(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (_, token), (bob, _), _ = trio
    missing = api.unique("ghost")
    response = client.post(
        "/api/chats/",
        json={"name": "x", "participant_usernames": [bob["username"], missing]},
        headers=api.auth(token),
    )
    body = api.assert_field_error(response, "participant_usernames")
    assert missing in " ".join(body["participant_usernames"]), body


def test_unknown_participants_create_nothing(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (_, token), (bob, bob_token), _ = trio
    response = client.post(
        "/api/chats/",
        json={
            "name": "never",
            "participant_ids": [bob["id"], 987654321],
            "participant_usernames": [api.unique("ghost")],
        },
        headers=api.auth(token),
    )
    api.assert_field_error(response, "participant_ids", "participant_usernames")
    for who in (token, bob_token):
        chats = client.get("/api/chats/", headers=api.auth(who)).json()
        assert all(chat["name"] != "never" for chat in chats)


@pytest.mark.parametrize("name", ["", "   ", "\t\n", "x" * 256, " " + "x" * 256 + " "])
def test_bad_chat_names_are_400_on_name(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]], name: str
) -> None:
    (_, token), _, _ = trio
    response = client.post(
        "/api/chats/", json={"name": name, "participant_ids": []}, headers=api.auth(token)
    )
    api.assert_field_error(response, "name")


def test_a_missing_name_is_400_on_name(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (_, token), (bob, _), _ = trio
    response = client.post(
        "/api/chats/", json={"participant_ids": [bob["id"]]}, headers=api.auth(token)
    )
    api.assert_field_error(response, "name")


def test_names_are_measured_after_trimming(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (_, token), _, _ = trio
    longest = api.create_chat(client, token, name="n" * 255)
    assert longest["name"] == "n" * 255
    padded = api.create_chat(client, token, name="  " + "p" * 255 + "\n ")
    assert padded["name"].strip() == "p" * 255
    one = api.create_chat(client, token, name=" a ")
    assert one["name"].strip() == "a"
    unicode_name = api.create_chat(client, token, name="\u00e9quipe \U0001f680")
    assert unicode_name["name"] == "\u00e9quipe \U0001f680"


def test_chat_list_holds_only_the_callers_chats_most_recent_activity_first(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (alice, alice_token), (bob, bob_token), (carol, carol_token) = trio
    first = api.create_chat(client, alice_token, name="first", ids=[bob["id"]])
    second = api.create_chat(client, alice_token, name="second", ids=[bob["id"]])
    theirs = api.create_chat(client, carol_token, name="not alice's", ids=[bob["id"]])

    def listed(token: str) -> list[dict[str, Any]]:
        response = client.get("/api/chats/", headers=api.auth(token))
        assert response.status_code == 200, response.text
        chats = api.assert_json(response)
        assert isinstance(chats, list)
        for chat in chats:
            api.assert_chat(chat)
        return chats

    assert [c["id"] for c in listed(alice_token)] == [second["id"], first["id"]]
    assert [c["id"] for c in listed(carol_token)] == [theirs["id"]]
    assert {c["id"] for c in listed(bob_token)} == {first["id"], second["id"], theirs["id"]}
    assert all(c["last_message"] is None for c in listed(alice_token))

    message = api.send(client, bob_token, first["id"], "bump the first chat")
    chats = listed(alice_token)
    assert [c["id"] for c in chats] == [first["id"], second["id"]]
    assert chats[0]["last_message"] == message
    assert chats[1]["last_message"] is None

    latest = api.send(client, alice_token, second["id"], "now the second")
    chats = listed(alice_token)
    assert [c["id"] for c in chats] == [second["id"], first["id"]]
    assert chats[0]["last_message"] == latest
    assert chats[1]["last_message"] == message
    bob_chats = listed(bob_token)
    assert bob_chats[0]["id"] == second["id"]

    one = client.get(f"/api/chats/{second['id']}/", headers=api.auth(alice_token)).json()
    assert one["last_message"] == latest
    assert alice["id"] in _ids(one)
    assert carol["id"] not in _ids(one)


def test_a_chat_that_does_not_exist_and_one_you_are_not_in_look_the_same(
    client: httpx.Client, api: Any, trio: list[tuple[dict[str, Any], str]]
) -> None:
    (_, alice_token), (bob, _), (_, carol_token) = trio
    chat = api.create_chat(client, alice_token, ids=[bob["id"]])
    hidden = client.get(f"/api/chats/{chat['id']}/", headers=api.auth(carol_token))
    absent = client.get("/api/chats/987654321/", headers=api.auth(carol_token))
    api.assert_detail(hidden, 404)
    api.assert_detail(absent, 404)
    assert hidden.json() == absent.json()


# --- the chat list in pages ---------------------------------------------------------------

MANY = 250


def crowd(server: Any, api: Any) -> tuple[str, list[int], str]:
    """A user a stranger put in MANY chats, as (token, chat ids most recent activity
    first, the stranger's token). The chats are written straight into the server's file
    (another process on one SQLite file, as the adapter allows): through the API, the
    limits on chat creation and registration would decide how fast this can be built."""
    with server.client() as client:
        return _crowd(server, api, client)


def _crowd(server: Any, api: Any, client: httpx.Client) -> tuple[str, list[int], str]:
    (alice, token), (stranger, stranger_token) = api.register(client), api.register(client)
    start = datetime(2020, 1, 1, tzinfo=UTC)

    async def seed() -> list[int]:
        async with SqliteStorage(server.db, readers=1, migrate=False) as storage:
            members = [alice["id"], stranger["id"]]
            made = await asyncio.gather(  # queued together: a few transactions, not MANY
                *(
                    storage.chats.add(f"spam {n}", members, start + timedelta(minutes=n))
                    for n in range(MANY)
                )
            )
            # Two created at one instant: the larger id is the more recent.
            twin = await storage.chats.add("twin", members, start + timedelta(minutes=7))
        chats = [*made, twin]
        return [chat.id for chat in sorted(chats, key=lambda c: c.activity, reverse=True)]

    ids = asyncio.run(seed())
    # Messages through the API move two old chats to the top, newest first.
    for chat_id in (ids[-1], ids[-5]):
        api.send(client, stranger_token, chat_id, "bump")
    ids = [ids[-5], ids[-1]] + [i for i in ids if i not in (ids[-1], ids[-5])]
    return token, ids, stranger_token


@pytest.fixture(scope="module")
def crowded(server: Any, api: Any) -> tuple[str, list[int], str]:
    """One crowd for the tests that only read it."""
    return crowd(server, api)


def _walk(client: httpx.Client, api: Any, token: str, **params: Any) -> list[list[int]]:
    """The chat ids of every page, following rel="next" from the first page."""
    pages = []
    response = client.get("/api/chats/", params=params, headers=api.auth(token))
    while True:
        assert response.status_code == 200, response.text
        chats = api.assert_json(response)
        assert isinstance(chats, list)
        for chat in chats:
            api.assert_chat(chat)
        pages.append([chat["id"] for chat in chats])
        assert "prev" not in response.links
        if "next" not in response.links:
            return pages
        assert len(pages) <= MANY + 2, "the chat list never ends"
        response = client.get(response.links["next"]["url"], headers=api.auth(token))


@pytest.mark.parametrize("limit", [1, 7, 100, 250, 251, 1000, 5000])
def test_paging_through_the_chat_list_gives_every_chat_once_in_order(
    client: httpx.Client, api: Any, crowded: tuple[str, list[int], str], limit: int
) -> None:
    token, expected, _ = crowded
    pages = _walk(client, api, token, limit=limit)
    size = min(limit, 1000)
    assert [chat_id for page in pages for chat_id in page] == expected
    assert all(len(page) == size for page in pages[:-1])  # a Link only while more follow
    assert 1 <= len(pages[-1]) <= size


def test_a_v1_client_without_limit_gets_an_array_of_the_first_hundred(
    client: httpx.Client, api: Any, crowded: tuple[str, list[int], str]
) -> None:
    token, expected, _ = crowded
    response = client.get("/api/chats/", headers=api.auth(token))
    assert [chat["id"] for chat in api.assert_json(response)] == expected[:100]
    following = api.link_params(response, "next")
    assert set(following) == {"cursor"}  # no limit given, none added: the default again
    assert [len(page) for page in _walk(client, api, token)] == [100, 100, MANY + 1 - 200]


def test_the_link_keeps_other_parameters_and_replaces_the_cursor(
    client: httpx.Client, api: Any, crowded: tuple[str, list[int], str]
) -> None:
    token, expected, _ = crowded
    first = client.get("/api/chats/", params={"limit": 3, "x": "y"}, headers=api.auth(token))
    second = client.get(first.links["next"]["url"], headers=api.auth(token))
    assert [chat["id"] for chat in second.json()] == expected[3:6]
    following = api.link_params(second, "next")
    assert following["limit"] == "3"
    assert following["x"] == "y"
    assert following["cursor"] != api.link_params(first, "next")["cursor"]


def test_a_chat_with_news_while_paging_moves_to_the_top_and_nothing_shows_twice(
    server: Any, client: httpx.Client, api: Any
) -> None:
    """The documented behaviour of the cursor: a chat bumped while a client pages is
    above every cursor already handed out, so later pages skip it (and one already seen
    is not seen again); the first page shows it at the top."""
    token, expected, stranger_token = crowd(server, api)
    first = client.get("/api/chats/", params={"limit": 50}, headers=api.auth(token))
    seen = [chat["id"] for chat in first.json()]
    unseen, again = expected[120], expected[10]
    for chat_id in (unseen, again):
        api.send(client, stranger_token, chat_id, "news")
    response = client.get(first.links["next"]["url"], headers=api.auth(token))
    while True:
        seen += [chat["id"] for chat in response.json()]
        if "next" not in response.links:
            break
        response = client.get(response.links["next"]["url"], headers=api.auth(token))
    assert len(seen) == len(set(seen))
    assert set(expected) - set(seen) == {unseen}
    top = client.get("/api/chats/", params={"limit": 2}, headers=api.auth(token)).json()
    assert [chat["id"] for chat in top] == [again, unseen]


BAD_LIMITS = ["0", "-1", "abc", "", " ", "1.5", "1e3", "0x10", "-0", "1_0"]
BAD_CURSORS = [
    "",
    "abc",
    "1",
    "1.",
    ".1",
    "1.2.3",
    "-1.2",
    "+1.2",
    " 1.2",
    "1.2 ",
    "\u0661.\u0662",  # Arabic-Indic digits are digits to Python, not to the cursor
    "1" * 19 + ".1",
    "1." + "1" * 20,
    "x" * 10_000,
    "1.2\u0000",
]


@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_a_bad_limit_is_a_400_on_limit(
    client: httpx.Client, api: Any, crowded: tuple[str, list[int], str], limit: str
) -> None:
    token, _, _ = crowded
    response = client.get("/api/chats/", params={"limit": limit}, headers=api.auth(token))
    assert set(api.assert_field_error(response, "limit")) == {"limit"}


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_bad_cursor_is_a_400_on_cursor(
    client: httpx.Client, api: Any, crowded: tuple[str, list[int], str], cursor: str
) -> None:
    token, _, _ = crowded
    response = client.get("/api/chats/", params={"cursor": cursor}, headers=api.auth(token))
    assert api.assert_field_error(response, "cursor") == {"cursor": ["Invalid cursor."]}


def test_a_bad_limit_and_cursor_are_reported_together(
    client: httpx.Client, api: Any, crowded: tuple[str, list[int], str]
) -> None:
    token, _, _ = crowded
    response = client.get(
        "/api/chats/", params={"limit": "0", "cursor": "nope"}, headers=api.auth(token)
    )
    assert set(api.assert_field_error(response, "limit", "cursor")) == {"limit", "cursor"}


def test_any_well_formed_cursor_is_a_page_even_one_nobody_handed_out(
    client: httpx.Client, api: Any, crowded: tuple[str, list[int], str]
) -> None:
    token, expected, _ = crowded
    for cursor, wanted in [
        ("9" * 18 + "." + "9" * 19, expected[:5]),  # beyond every time: from the top
        ("0.0", []),  # below every chat
        ("0" * 18 + "." + "0" * 19, []),
    ]:
        response = client.get(
            "/api/chats/", params={"cursor": cursor, "limit": 5}, headers=api.auth(token)
        )
        assert [chat["id"] for chat in api.assert_json(response)] == wanted, cursor
