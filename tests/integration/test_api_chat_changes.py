"""Chats and messages that change, and a chat's event stream, over HTTP (API.md v2:
"Chats that change", "Messages that change", "One ordered event stream per chat")."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

User = tuple[dict[str, Any], str]
LAST_ADMIN = "A chat needs at least one admin: promote someone else first."


@pytest.fixture
def four(client: httpx.Client, api: Any) -> list[User]:
    """Four fresh users as (user, token): alice creates the chats, bob and carol are in
    them, dave is an outsider."""
    return [api.register(client) for _ in range(4)]


@pytest.fixture
def room(client: httpx.Client, api: Any, four: list[User]) -> dict[str, Any]:
    """A chat of alice's (its admin), with bob and carol as members."""
    (_, alice), (bob, _), (carol, _), _ = four
    return dict(api.create_chat(client, alice, ids=[bob["id"], carol["id"]]))


def _ids(chat: dict[str, Any]) -> set[int]:
    return {user["id"] for user in chat["participants"]}


def _ok(api: Any, response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    if status == 204:
        assert response.content == b""
        return None
    return api.assert_json(response)


def _chat(api: Any, response: httpx.Response) -> dict[str, Any]:
    chat = _ok(api, response)
    api.assert_chat(chat)
    return dict(chat)


def _events(
    client: httpx.Client, api: Any, token: str, chat_id: int, **params: Any
) -> dict[str, Any]:
    response = client.get(f"/api/chats/{chat_id}/events/", params=params, headers=api.auth(token))
    body = _ok(api, response)
    assert set(body) == {"events", "seq"}, body
    seqs = [event["seq"] for event in body["events"]]
    assert seqs == sorted(set(seqs)), seqs  # ascending, no repeat
    for event in body["events"]:
        assert event["chat_id"] == chat_id
    return dict(body)


# --- the new keys ------------------------------------------------------------------------


def test_a_new_chat_has_its_creator_as_admin_and_seq_0(
    api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (alice, _), *_ = four
    assert room["admins"] == [alice["id"]]
    assert room["seq"] == 0


def test_a_message_is_not_edited_until_it_is(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice), *_ = four
    message = api.send(client, alice, room["id"], "first")
    assert message["edited_at"] is None


# --- renames and membership --------------------------------------------------------------


def test_patch_renames_and_leaves_the_participants(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice), *_ = four
    chat = _chat(
        api,
        client.patch(f"/api/chats/{room['id']}/", json={"name": "new"}, headers=api.auth(alice)),
    )
    assert chat["name"] == "new"
    assert _ids(chat) == _ids(room)
    assert chat["seq"] == 1  # chat_updated
    again = _chat(api, client.get(f"/api/chats/{room['id']}/", headers=api.auth(alice)))
    assert again == chat


def test_patch_lists_replace_the_membership_and_the_caller_stays(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (alice, alice_t), (bob, bob_t), (_carol, carol_t), (dave, _) = four
    chat = _chat(
        api,
        client.patch(
            f"/api/chats/{room['id']}/",
            json={"participant_ids": [bob["id"]], "participant_usernames": [dave["username"]]},
            headers=api.auth(alice_t),
        ),
    )
    assert _ids(chat) == {alice["id"], bob["id"], dave["id"]}
    assert chat["name"] == room["name"]
    api.assert_detail(client.get(f"/api/chats/{room['id']}/", headers=api.auth(carol_t)), 404)
    _chat(api, client.get(f"/api/chats/{room['id']}/", headers=api.auth(bob_t)))


def test_put_needs_a_name(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice), *_ = four
    url = f"/api/chats/{room['id']}/"
    missing = client.put(url, json={"participant_ids": []}, headers=api.auth(alice))
    assert _ok(api, missing, 400) == {"name": ["This field is required."]}
    chat = _chat(api, client.put(url, json={"name": "put"}, headers=api.auth(alice)))
    assert chat["name"] == "put"
    assert _ids(chat) == _ids(room)


def test_unknown_participants_are_400_naming_them(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice), *_ = four
    ghost = api.unique("ghost")
    for method, path in (
        ("PATCH", f"/api/chats/{room['id']}/"),
        ("POST", f"/api/chats/{room['id']}/participants/"),
    ):
        response = client.request(
            method, path, json={"participant_usernames": [ghost]}, headers=api.auth(alice)
        )
        body = _ok(api, response, 400)
        assert list(body) == ["participant_usernames"], body
        assert ghost in body["participant_usernames"][0]
    chat = _chat(api, client.get(f"/api/chats/{room['id']}/", headers=api.auth(alice)))
    assert _ids(chat) == _ids(room)
    assert chat["seq"] == 0


def test_nulls_are_refused_where_leaving_out_means_as_it_is(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice), *_ = four
    response = client.patch(
        f"/api/chats/{room['id']}/", json={"name": None}, headers=api.auth(alice)
    )
    assert _ok(api, response, 400) == {"name": ["This field may not be null."]}


def test_members_get_403_and_outsiders_404_on_every_admin_call(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (alice, _), (_, bob_t), (carol, _), (dave, dave_t) = four
    chat = room["id"]
    calls: list[tuple[str, str, Any]] = [
        ("PATCH", f"/api/chats/{chat}/", {"name": "x"}),
        ("PUT", f"/api/chats/{chat}/", {"name": "x"}),
        ("DELETE", f"/api/chats/{chat}/", None),
        ("POST", f"/api/chats/{chat}/participants/", {"participant_ids": [dave["id"]]}),
        ("DELETE", f"/api/chats/{chat}/participants/{carol['id']}/", None),
        ("POST", f"/api/chats/{chat}/admins/", {"user_id": carol["id"]}),
        ("DELETE", f"/api/chats/{chat}/admins/{alice['id']}/", None),
    ]
    for method, path, body in calls:
        as_member = client.request(method, path, json=body, headers=api.auth(bob_t))
        api.assert_detail(as_member, 403)
        as_outsider = client.request(method, path, json=body, headers=api.auth(dave_t))
        api.assert_detail(as_outsider, 404)
    for method, path in (
        ("POST", f"/api/chats/{chat}/leave/"),
        ("GET", f"/api/chats/{chat}/events/"),
    ):
        api.assert_detail(client.request(method, path, headers=api.auth(dave_t)), 404)
    unchanged = _chat(api, client.get(f"/api/chats/{chat}/", headers=api.auth(bob_t)))
    assert unchanged["seq"] == 0
    assert unchanged["name"] == room["name"]


def test_a_member_gets_403_before_their_input_is_looked_at(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    _, (_, bob_t), _, _ = four
    response = client.patch(
        f"/api/chats/{room['id']}/",
        json={"participant_usernames": [api.unique("ghost")]},
        headers=api.auth(bob_t),
    )
    api.assert_detail(response, 403)


def test_add_participants_and_they_see_the_whole_history(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice_t), (bob, _), _, (dave, dave_t) = four
    sent = [api.send(client, alice_t, room["id"], f"before {i}") for i in range(3)]
    chat = _chat(
        api,
        client.post(
            f"/api/chats/{room['id']}/participants/",
            json={"participant_ids": [dave["id"], bob["id"]]},  # bob: already in, no error
            headers=api.auth(alice_t),
        ),
    )
    assert dave["id"] in _ids(chat)
    assert len(chat["participants"]) == 4
    assert [m["id"] for m in api.history(client, dave_t, room["id"])] == [m["id"] for m in sent]
    events = _events(client, api, dave_t, room["id"])
    assert [e["type"] for e in events["events"]] == ["message"] * 3 + ["member_added"]
    added = events["events"][-1]
    assert added["user"]["id"] == dave["id"]
    assert set(added["user"]) == api.USER_KEYS
    assert added["by"]["id"] == chat["admins"][0]


def test_a_removed_participant_loses_the_chat_at_once(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (alice, alice_t), _, (carol, carol_t), _ = four
    message = api.send(client, carol_t, room["id"], "hello")
    response = client.delete(
        f"/api/chats/{room['id']}/participants/{carol['id']}/", headers=api.auth(alice_t)
    )
    _ok(api, response, 204)
    for path in (
        f"/api/chats/{room['id']}/",
        f"/api/chats/{room['id']}/messages/",
        f"/api/chats/{room['id']}/events/",
        f"/api/messages/{message['id']}/",
    ):
        api.assert_detail(client.get(path, headers=api.auth(carol_t)), 404)
    api.assert_detail(
        client.post(
            f"/api/chats/{room['id']}/send_message/",
            json={"content": "x"},
            headers=api.auth(carol_t),
        ),
        404,
    )
    mine = client.get("/api/chats/", headers=api.auth(carol_t))
    assert room["id"] not in [c["id"] for c in _ok(api, mine)]
    removed = _events(client, api, alice_t, room["id"])["events"][-1]
    assert removed["type"] == "member_removed"
    assert removed["user"]["id"] == carol["id"]
    assert removed["by"]["id"] == alice["id"]


def test_anyone_leaves_by_either_path(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (alice, alice_t), (bob, bob_t), (carol, carol_t), _ = four
    _ok(api, client.post(f"/api/chats/{room['id']}/leave/", headers=api.auth(bob_t)), 204)
    own = f"/api/chats/{room['id']}/participants/{carol['id']}/"
    _ok(api, client.delete(own, headers=api.auth(carol_t)), 204)
    chat = _chat(api, client.get(f"/api/chats/{room['id']}/", headers=api.auth(alice_t)))
    assert _ids(chat) == {alice["id"]}
    events = _events(client, api, alice_t, room["id"])["events"]
    assert [(e["type"], e["user"]["id"], e["by"]["id"]) for e in events] == [
        ("member_removed", bob["id"], bob["id"]),
        ("member_removed", carol["id"], carol["id"]),
    ]


def test_the_last_admin_leaving_hands_over_to_the_longest_standing(
    client: httpx.Client, api: Any, four: list[User]
) -> None:
    (_, alice_t), (bob, bob_t), (carol, _), _ = four
    room = api.create_chat(client, alice_t, ids=[bob["id"]])
    added = client.post(
        f"/api/chats/{room['id']}/participants/",
        json={"participant_ids": [carol["id"]]},
        headers=api.auth(alice_t),
    )
    _chat(api, added)
    _ok(api, client.post(f"/api/chats/{room['id']}/leave/", headers=api.auth(alice_t)), 204)
    chat = _chat(api, client.get(f"/api/chats/{room['id']}/", headers=api.auth(bob_t)))
    assert chat["admins"] == [bob["id"]]
    last = _events(client, api, bob_t, room["id"])["events"][-1]
    assert last["type"] == "chat_updated"
    assert last["chat"]["admins"] == [bob["id"]]


def test_a_chat_whose_last_participant_leaves_is_deleted(
    client: httpx.Client, api: Any, four: list[User], admin: dict[str, Any]
) -> None:
    (_, alice_t), *_ = four
    alone = api.create_chat(client, alice_t)
    _ok(api, client.post(f"/api/chats/{alone['id']}/leave/", headers=api.auth(alice_t)), 204)
    api.assert_detail(client.get(f"/api/chats/{alone['id']}/", headers=api.auth(alice_t)), 404)
    everyone = client.get(
        "/api/admin/chats/", params={"limit": 1000}, headers=api.auth(admin["token"])
    )
    assert alone["id"] not in [c["id"] for c in _ok(api, everyone)]


def test_promote_and_demote_and_never_the_last_admin(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (alice, alice_t), (bob, bob_t), _, (dave, _) = four
    admins = f"/api/chats/{room['id']}/admins/"
    last = client.delete(f"{admins}{alice['id']}/", headers=api.auth(alice_t))
    assert _ok(api, last, 400) == {"non_field_errors": [LAST_ADMIN]}
    outsider = client.post(admins, json={"user_id": dave["id"]}, headers=api.auth(alice_t))
    assert list(_ok(api, outsider, 400)) == ["user_id"]
    promoted = _chat(
        api, client.post(admins, json={"user_id": bob["id"]}, headers=api.auth(alice_t))
    )
    assert promoted["admins"] == sorted([alice["id"], bob["id"]])
    # bob, an admin now, demotes alice; then alice is a member and gets 403
    demoted = _chat(api, client.delete(f"{admins}{alice['id']}/", headers=api.auth(bob_t)))
    assert demoted["admins"] == [bob["id"]]
    again = client.post(admins, json={"user_id": alice["id"]}, headers=api.auth(alice_t))
    api.assert_detail(again, 403)
    not_admin = client.delete(f"{admins}{alice['id']}/", headers=api.auth(bob_t))
    api.assert_detail(not_admin, 404)
    types = [e["type"] for e in _events(client, api, bob_t, room["id"])["events"]]
    assert types == ["chat_updated", "chat_updated"]


def test_delete_chat_is_gone_for_everyone(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice_t), (_, bob_t), _, _ = four
    api.send(client, bob_t, room["id"], "soon gone")
    _ok(api, client.delete(f"/api/chats/{room['id']}/", headers=api.auth(alice_t)), 204)
    for token in (alice_t, bob_t):
        api.assert_detail(client.get(f"/api/chats/{room['id']}/", headers=api.auth(token)), 404)
        listed = client.get("/api/messages/", params={"chat": room["id"]}, headers=api.auth(token))
        assert _ok(api, listed) == []


# --- messages that change ----------------------------------------------------------------


def test_the_sender_edits_others_get_403_outsiders_404(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice_t), (_, bob_t), _, (_, dave_t) = four
    message = api.send(client, bob_t, room["id"], "tpyo")
    url = f"/api/messages/{message['id']}/"
    api.assert_detail(client.patch(url, json={"content": "x"}, headers=api.auth(alice_t)), 403)
    api.assert_detail(client.patch(url, json={"content": "x"}, headers=api.auth(dave_t)), 404)
    blank = client.patch(url, json={"content": "   "}, headers=api.auth(bob_t))
    assert list(_ok(api, blank, 400)) == ["content"]
    edited = _ok(api, client.patch(url, json={"content": " typo "}, headers=api.auth(bob_t)))
    api.assert_message(edited)
    assert edited["content"] == "typo"
    assert edited["id"] == message["id"]
    assert edited["timestamp"] == message["timestamp"]
    assert edited["edited_at"] is not None
    assert _ok(api, client.get(url, headers=api.auth(alice_t))) == edited
    chat = _chat(api, client.get(f"/api/chats/{room['id']}/", headers=api.auth(alice_t)))
    assert chat["last_message"] == edited


def test_delete_by_sender_or_chat_admin_not_by_another_member(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice_t), (_, bob_t), (_, carol_t), (_, dave_t) = four
    by_bob = api.send(client, bob_t, room["id"], "bob's")
    by_carol = api.send(client, carol_t, room["id"], "carol's")
    api.assert_detail(
        client.delete(f"/api/messages/{by_bob['id']}/", headers=api.auth(carol_t)), 403
    )
    api.assert_detail(
        client.delete(f"/api/messages/{by_bob['id']}/", headers=api.auth(dave_t)), 404
    )
    _ok(api, client.delete(f"/api/messages/{by_bob['id']}/", headers=api.auth(alice_t)), 204)
    _ok(api, client.delete(f"/api/messages/{by_carol['id']}/", headers=api.auth(carol_t)), 204)
    api.assert_detail(
        client.delete(f"/api/messages/{by_carol['id']}/", headers=api.auth(carol_t)), 404
    )


def test_a_deleted_message_is_in_no_response(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice_t), (_, bob_t), *_ = four
    kept = api.send(client, alice_t, room["id"], "kept")
    secret = api.unique("secret-")
    doomed = api.send(client, bob_t, room["id"], secret)
    edited = client.patch(
        f"/api/messages/{doomed['id']}/",
        json={"content": secret + " again"},
        headers=api.auth(bob_t),
    )
    _ok(api, edited)
    _ok(api, client.delete(f"/api/messages/{doomed['id']}/", headers=api.auth(bob_t)), 204)
    for token in (alice_t, bob_t):
        auth = api.auth(token)
        api.assert_detail(client.get(f"/api/messages/{doomed['id']}/", headers=auth), 404)
        answers = [
            client.get(f"/api/chats/{room['id']}/", headers=auth),
            client.get("/api/chats/", headers=auth),
            client.get(f"/api/chats/{room['id']}/messages/", headers=auth),
            client.get("/api/messages/", headers=auth),
            client.get("/api/messages/", params={"chat": room["id"]}, headers=auth),
            client.get(f"/api/chats/{room['id']}/events/", headers=auth),
        ]
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert secret not in answer.text, answer.request.url
        chat = _chat(api, answers[0])
        assert chat["last_message"] is not None
        assert chat["last_message"]["id"] == kept["id"]
        listed = [m["id"] for m in _ok(api, answers[2])]
        assert listed == [kept["id"]]
    events = _events(client, api, alice_t, room["id"])["events"]
    assert events == [
        {"type": "message", "chat_id": room["id"], "seq": 1, "message": kept},
        {"type": "message_deleted", "chat_id": room["id"], "seq": 2, "message_id": doomed["id"]},
        {"type": "message_deleted", "chat_id": room["id"], "seq": 3, "message_id": doomed["id"]},
        {"type": "message_deleted", "chat_id": room["id"], "seq": 4, "message_id": doomed["id"]},
    ]


# --- the event stream --------------------------------------------------------------------


def test_events_replay_edits_with_the_latest_content_and_seq_is_the_chats(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice_t), *_ = four
    message = api.send(client, alice_t, room["id"], "v1")
    edited = _ok(
        api,
        client.patch(
            f"/api/messages/{message['id']}/", json={"content": "v2"}, headers=api.auth(alice_t)
        ),
    )
    renamed = _chat(
        api,
        client.patch(
            f"/api/chats/{room['id']}/", json={"name": "renamed"}, headers=api.auth(alice_t)
        ),
    )
    body = _events(client, api, alice_t, room["id"])
    chat = _chat(api, client.get(f"/api/chats/{room['id']}/", headers=api.auth(alice_t)))
    assert body["seq"] == chat["seq"] == renamed["seq"] == 3
    assert body["events"] == [
        {"type": "message", "chat_id": room["id"], "seq": 1, "message": edited},
        {"type": "message_edited", "chat_id": room["id"], "seq": 2, "message": edited},
        {"type": "chat_updated", "chat_id": room["id"], "seq": 3, "chat": chat},
    ]
    # since and limit page through the same stream
    assert _events(client, api, alice_t, room["id"], since=1)["events"] == body["events"][1:]
    limited = _events(client, api, alice_t, room["id"], since=1, limit=1)
    assert limited == {"events": body["events"][1:2], "seq": 3}
    assert _events(client, api, alice_t, room["id"], since=3) == {"events": [], "seq": 3}
    assert _events(client, api, alice_t, room["id"], since=99) == {"events": [], "seq": 3}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "-1"}, "since"),
        ({"since": "x"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "1.5"}, "limit"),
    ],
)
def test_bad_since_or_limit_is_400_on_its_field(
    client: httpx.Client,
    api: Any,
    room: dict[str, Any],
    four: list[User],
    params: dict[str, str],
    field: str,
) -> None:
    (_, alice_t), *_ = four
    response = client.get(
        f"/api/chats/{room['id']}/events/", params=params, headers=api.auth(alice_t)
    )
    body = _ok(api, response, 400)
    assert list(body) == [field], body


def test_limit_at_most_1000_is_taken(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice_t), *_ = four
    assert _events(client, api, alice_t, room["id"], limit=1000) == {"events": [], "seq": 0}


def test_every_frame_is_json_with_type_chat_id_and_seq_first(
    client: httpx.Client, api: Any, room: dict[str, Any], four: list[User]
) -> None:
    (_, alice_t), *_ = four
    api.send(client, alice_t, room["id"], "hi")
    response = client.get(f"/api/chats/{room['id']}/events/", headers=api.auth(alice_t))
    (event,) = json.loads(response.content)["events"]
    assert list(event)[:1] == ["type"]
    assert set(event) == {"type", "chat_id", "seq", "message"}
