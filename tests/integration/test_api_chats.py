"""Chats over HTTP: creation by ids and usernames, validation, visibility, the chat list."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


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
