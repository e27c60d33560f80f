"""Messages over HTTP: sending, limits, client_id idempotency, visibility, paging and Link."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


@pytest.fixture
def room(client: httpx.Client, api: Any) -> dict[str, Any]:
    """Alice and Bob in a chat; Carol is a user outside it."""
    alice, alice_token = api.register(client)
    bob, bob_token = api.register(client)
    carol, carol_token = api.register(client)
    chat = api.create_chat(client, alice_token, ids=[bob["id"]])
    return {
        "alice": alice,
        "alice_token": alice_token,
        "bob": bob,
        "bob_token": bob_token,
        "carol": carol,
        "carol_token": carol_token,
        "chat": chat,
        "send_url": f"/api/chats/{chat['id']}/send_message/",
        "list_url": f"/api/chats/{chat['id']}/messages/",
    }


def _ids(messages: list[dict[str, Any]]) -> list[int]:
    return [m["id"] for m in messages]


# --- sending ------------------------------------------------------------------------------


def test_send_answers_201_with_the_message(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    response = client.post(
        room["send_url"], json={"content": "hello there"}, headers=api.auth(room["alice_token"])
    )
    assert response.status_code == 201, response.text
    message = api.assert_json(response)
    api.assert_message(message)
    assert message["chat"] == room["chat"]["id"]
    assert message["sender"] == {k: room["alice"][k] for k in ("id", "username", "user_type")}
    assert message["content"] == "hello there"
    assert message["client_id"] is None

    for token in (room["alice_token"], room["bob_token"]):
        by_id = client.get(f"/api/messages/{message['id']}/", headers=api.auth(token))
        assert by_id.status_code == 200, by_id.text
        assert by_id.json() == message
        assert api.assert_page(client.get(room["list_url"], headers=api.auth(token))) == [message]


def test_message_ids_grow_in_the_order_messages_are_stored(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    sent = [
        api.send(client, room["alice_token" if n % 2 else "bob_token"], room["chat"]["id"], f"#{n}")
        for n in range(6)
    ]
    assert _ids(sent) == sorted(_ids(sent))
    assert len(set(_ids(sent))) == 6
    listed = api.assert_page(client.get(room["list_url"], headers=api.auth(room["bob_token"])))
    assert listed == sent
    assert [m["timestamp"] for m in listed] == sorted(
        (m["timestamp"] for m in listed), key=api.assert_time
    )


@pytest.mark.parametrize(
    "content",
    ["x" * 10_000, "  " + "y" * 10_000 + "\n\t ", " one ", "\U0001f600", "line\nbreak"],
    ids=["10000", "padded-10000", "padded-one", "emoji", "newline"],
)
def test_content_length_counts_after_trimming(
    client: httpx.Client, api: Any, room: dict[str, Any], content: str
) -> None:
    message = api.send(client, room["alice_token"], room["chat"]["id"], content)
    assert message["content"].strip() == content.strip()


@pytest.mark.parametrize(
    "content",
    ["", " ", "\n\t  \r\n", "x" * 10_001, " " + "x" * 10_001 + " "],
    ids=["empty", "space", "whitespace", "10001", "padded-10001"],
)
def test_bad_content_is_400_on_content(
    client: httpx.Client, api: Any, room: dict[str, Any], content: str
) -> None:
    response = client.post(
        room["send_url"], json={"content": content}, headers=api.auth(room["alice_token"])
    )
    api.assert_field_error(response, "content")
    assert client.get(room["list_url"], headers=api.auth(room["alice_token"])).json() == []


def test_missing_content_is_400_on_content(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    for body in ({}, {"client_id": "abc"}):
        response = client.post(room["send_url"], json=body, headers=api.auth(room["bob_token"]))
        api.assert_field_error(response, "content")


# --- client_id ----------------------------------------------------------------------------


def test_repeating_a_client_id_answers_200_with_the_original(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    token, chat_id = room["alice_token"], room["chat"]["id"]
    original = api.send(client, token, chat_id, "once only", client_id="retry-1")
    assert original["client_id"] == "retry-1"
    again = api.send(client, token, chat_id, "once only", client_id="retry-1", expect=200)
    assert again == original
    changed = api.send(client, token, chat_id, "different text", client_id="retry-1", expect=200)
    assert changed == original
    assert api.history(client, token, chat_id) == [original]
    by_id = client.get(f"/api/messages/{original['id']}/", headers=api.auth(token))
    assert by_id.json() == original


def test_client_ids_are_scoped_to_sender_and_chat(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    chat_id = room["chat"]["id"]
    mine = api.send(client, room["alice_token"], chat_id, "alice", client_id="shared")
    theirs = api.send(client, room["bob_token"], chat_id, "bob", client_id="shared")
    assert theirs["id"] != mine["id"]
    assert theirs["sender"]["id"] == room["bob"]["id"]

    other_chat = api.create_chat(client, room["alice_token"], ids=[room["bob"]["id"]])
    elsewhere = api.send(client, room["alice_token"], other_chat["id"], "alice", client_id="shared")
    assert elsewhere["id"] not in (mine["id"], theirs["id"])
    assert elsewhere["chat"] == other_chat["id"]
    assert api.history(client, room["alice_token"], chat_id) == [mine, theirs]


def test_sends_without_client_id_are_never_deduplicated(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    token, chat_id = room["alice_token"], room["chat"]["id"]
    first = api.send(client, token, chat_id, "same")
    second = api.send(client, token, chat_id, "same")
    response = client.post(
        room["send_url"], json={"content": "same", "client_id": None}, headers=api.auth(token)
    )
    assert response.status_code == 201, response.text
    third = response.json()
    assert len({first["id"], second["id"], third["id"]}) == 3
    assert third["client_id"] is None


def test_client_id_may_be_64_characters_but_not_65(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    token = room["alice_token"]
    longest = "k" * 64
    assert api.send(client, token, room["chat"]["id"], "ok", client_id=longest)["client_id"] == (
        longest
    )
    response = client.post(
        room["send_url"], json={"content": "no", "client_id": "k" * 65}, headers=api.auth(token)
    )
    api.assert_field_error(response, "client_id")
    assert len(api.history(client, token, room["chat"]["id"])) == 1


# --- visibility ---------------------------------------------------------------------------


def test_an_outsider_gets_404_for_everything_about_the_chat(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    message = api.send(client, room["alice_token"], room["chat"]["id"], "private")
    outsider = api.auth(room["carol_token"])
    api.assert_detail(client.get(f"/api/chats/{room['chat']['id']}/", headers=outsider), 404)
    api.assert_detail(client.get(room["list_url"], headers=outsider), 404)
    api.assert_detail(client.get(f"/api/messages/{message['id']}/", headers=outsider), 404)
    api.assert_detail(
        client.post(room["send_url"], json={"content": "let me in"}, headers=outsider), 404
    )
    api.assert_detail(
        client.post(
            room["send_url"], json={"content": "x", "client_id": "sneaky"}, headers=outsider
        ),
        404,
    )
    absent = client.get("/api/messages/987654321/", headers=outsider)
    api.assert_detail(absent, 404)
    assert absent.json() == client.get(f"/api/messages/{message['id']}/", headers=outsider).json()
    assert api.history(client, room["alice_token"], room["chat"]["id"]) == [message]

    filtered = client.get("/api/messages/", params={"chat": room["chat"]["id"]}, headers=outsider)
    assert filtered.status_code in (200, 404), filtered.text
    if filtered.status_code == 200:
        assert filtered.json() == []
    else:
        api.assert_detail(filtered, 404)


def test_the_message_feed_holds_only_the_callers_chats(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    alice_t, bob_t, carol_t = room["alice_token"], room["bob_token"], room["carol_token"]
    with_bob = room["chat"]
    with_carol = api.create_chat(client, alice_t, ids=[room["carol"]["id"]])
    without_alice = api.create_chat(client, bob_t, ids=[room["carol"]["id"]])
    sent: dict[int, list[dict[str, Any]]] = {c["id"]: [] for c in (with_bob, with_carol)}
    sent[without_alice["id"]] = []
    for n in range(3):
        sent[with_bob["id"]].append(api.send(client, bob_t, with_bob["id"], f"b{n}"))
        sent[without_alice["id"]].append(api.send(client, carol_t, without_alice["id"], f"x{n}"))
        sent[with_carol["id"]].append(api.send(client, carol_t, with_carol["id"], f"c{n}"))

    feed = api.assert_page(client.get("/api/messages/", headers=api.auth(alice_t)))
    expected = sorted(sent[with_bob["id"]] + sent[with_carol["id"]], key=lambda m: m["id"])
    assert feed == expected

    only = api.assert_page(
        client.get("/api/messages/", params={"chat": with_carol["id"]}, headers=api.auth(alice_t))
    )
    assert only == sent[with_carol["id"]]

    carol_feed = api.assert_page(client.get("/api/messages/", headers=api.auth(carol_t)))
    expected_carol = sorted(
        sent[with_carol["id"]] + sent[without_alice["id"]], key=lambda m: m["id"]
    )
    assert carol_feed == expected_carol


# --- paging -------------------------------------------------------------------------------


def test_paging_a_chat_back_and_forth_with_link_headers(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    token, chat_id = room["alice_token"], room["chat"]["id"]
    headers = api.auth(token)
    ids = [api.send(client, token, chat_id, f"m{n}")["id"] for n in range(7)]

    everything = client.get(room["list_url"], headers=headers)
    assert _ids(api.assert_page(everything)) == ids
    assert not everything.links, everything.headers.get("link")

    newest = client.get(room["list_url"], params={"limit": 3}, headers=headers)
    assert _ids(api.assert_page(newest)) == ids[4:]
    assert "next" not in newest.links
    assert api.link_params(newest, "prev") == {"before": str(ids[4]), "limit": "3"}

    middle = client.get(newest.links["prev"]["url"], headers=headers)
    assert _ids(api.assert_page(middle)) == ids[1:4]
    assert api.link_params(middle, "prev") == {"before": str(ids[1]), "limit": "3"}
    assert api.link_params(middle, "next") == {"after": str(ids[3]), "limit": "3"}

    oldest = client.get(middle.links["prev"]["url"], headers=headers)
    assert _ids(api.assert_page(oldest)) == ids[:1]
    assert "prev" not in oldest.links
    assert api.link_params(oldest, "next") == {"after": str(ids[0]), "limit": "3"}

    forward = client.get(oldest.links["next"]["url"], headers=headers)
    assert _ids(api.assert_page(forward)) == ids[1:4]
    assert "prev" in forward.links
    last = client.get(forward.links["next"]["url"], headers=headers)
    assert _ids(api.assert_page(last)) == ids[4:]
    assert "next" not in last.links
    assert "prev" in last.links

    after_first = client.get(
        room["list_url"], params={"after": ids[0], "limit": 2}, headers=headers
    )
    assert _ids(api.assert_page(after_first)) == ids[1:3]
    before_last = client.get(
        room["list_url"], params={"before": ids[-1], "limit": 2}, headers=headers
    )
    assert _ids(api.assert_page(before_last)) == ids[4:6]

    beyond = client.get(room["list_url"], params={"after": ids[-1]}, headers=headers)
    assert api.assert_page(beyond) == []
    assert "next" not in beyond.links
    before_all = client.get(room["list_url"], params={"before": ids[0]}, headers=headers)
    assert api.assert_page(before_all) == []
    assert "prev" not in before_all.links


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 11])
def test_following_links_tiles_the_history_without_gap_or_overlap(
    client: httpx.Client, api: Any, room: dict[str, Any], limit: int
) -> None:
    token, chat_id = room["bob_token"], room["chat"]["id"]
    headers = api.auth(token)
    ids = [api.send(client, token, chat_id, f"t{n}")["id"] for n in range(10)]

    backward: list[int] = []
    response = client.get(room["list_url"], params={"limit": limit}, headers=headers)
    pages = 0
    while True:
        page = _ids(api.assert_page(response))
        assert 0 < len(page) <= limit
        backward = page + backward
        pages += 1
        assert pages <= 10
        if "prev" not in response.links:
            break
        response = client.get(response.links["prev"]["url"], headers=headers)
    assert backward == ids

    forward = [ids[0]]
    response = client.get(
        room["list_url"], params={"after": ids[0], "limit": limit}, headers=headers
    )
    while True:
        page = _ids(api.assert_page(response))
        assert 0 < len(page) <= limit
        forward += page
        if "next" not in response.links:
            break
        response = client.get(response.links["next"]["url"], headers=headers)
    assert forward == ids


def test_the_feed_pages_with_links_and_keeps_its_chat_filter(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    alice_t = room["alice_token"]
    headers = api.auth(alice_t)
    other = api.create_chat(client, alice_t, ids=[room["carol"]["id"]])
    in_room: list[int] = []
    everywhere: list[int] = []
    for n in range(5):
        in_room.append(api.send(client, alice_t, room["chat"]["id"], f"r{n}")["id"])
        everywhere += [in_room[-1], api.send(client, alice_t, other["id"], f"o{n}")["id"]]

    collected: list[int] = []
    response = client.get("/api/messages/", params={"limit": 3}, headers=headers)
    while True:
        collected = _ids(api.assert_page(response)) + collected
        if "prev" not in response.links:
            break
        assert api.link_params(response, "prev")["limit"] == "3"
        response = client.get(response.links["prev"]["url"], headers=headers)
    assert collected == everywhere

    collected = []
    response = client.get(
        "/api/messages/", params={"chat": room["chat"]["id"], "limit": 2}, headers=headers
    )
    while True:
        page = api.assert_page(response)
        assert all(m["chat"] == room["chat"]["id"] for m in page)
        collected = _ids(page) + collected
        if "prev" not in response.links:
            break
        response = client.get(response.links["prev"]["url"], headers=headers)
    assert collected == in_room


def test_a_limit_above_1000_is_treated_as_1000(
    client: httpx.Client, api: Any, room: dict[str, Any]
) -> None:
    token, chat_id = room["alice_token"], room["chat"]["id"]
    headers = api.auth(token)
    total = 1003
    for n in range(total):
        response = client.post(room["send_url"], json={"content": f"bulk {n}"}, headers=headers)
        assert response.status_code == 201, response.text

    default = client.get(room["list_url"], headers=headers)
    assert len(api.assert_page(default)) == 100
    assert "prev" in default.links

    for limit in (1000, 1001, 5000, 10**12):
        page = client.get(room["list_url"], params={"limit": limit}, headers=headers)
        messages = api.assert_page(page)
        assert len(messages) == 1000, limit
        assert messages[-1]["content"] == f"bulk {total - 1}"
        assert messages[0]["content"] == f"bulk {total - 1000}"
        assert "prev" in page.links
        rest = client.get(page.links["prev"]["url"], headers=headers)
        assert [m["content"] for m in api.assert_page(rest)] == [
            f"bulk {n}" for n in range(total - 1000)
        ]

    feed = client.get("/api/messages/", params={"chat": chat_id, "limit": 5000}, headers=headers)
    assert len(api.assert_page(feed)) == 1000


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("limit", "0"),
        ("limit", "abc"),
        ("limit", "-1"),
        ("limit", "1.5"),
        ("before", "-1"),
        ("before", "0"),
        ("before", "x"),
        ("after", "x"),
        ("after", "-1"),
        ("after", "0"),
        ("after", "1e3"),
    ],
)
def test_bad_paging_params_are_400_on_that_field(
    client: httpx.Client, api: Any, room: dict[str, Any], field: str, value: str
) -> None:
    headers = api.auth(room["alice_token"])
    for url in (room["list_url"], "/api/messages/"):
        response = client.get(url, params={field: value}, headers=headers)
        api.assert_field_error(response, field)


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5"])
def test_a_bad_chat_filter_is_refused(
    client: httpx.Client, api: Any, room: dict[str, Any], value: str
) -> None:
    response = client.get(
        "/api/messages/", params={"chat": value}, headers=api.auth(room["alice_token"])
    )
    assert response.status_code in (400, 404), response.text
    if response.status_code == 400:
        api.assert_field_error(response, "chat")
    else:
        api.assert_detail(response, 404)
