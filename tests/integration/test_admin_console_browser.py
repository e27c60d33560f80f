"""The admin console in headless Chromium, every request to anywhere but the test server
blocked, no failed request, error response or console error (a blocked inline script or
style would be one): an administrator finds controls by role and name as a screen reader
would, logs in, finds a user and deactivates them (their socket and token are cut off at
once), renames a chat and deletes a message (a socket on the chat hears both)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
from browsing import Watched
from playwright.sync_api import Page, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "admin-console.png"
RECV_GUARD = 20.0  # a hang guard, not a speed requirement
HOSTILE = "<script>document.title='pwned'</script> <img src=x onerror=alert(1)> \u202eevil"


def next_frame(ws: ClientConnection) -> dict[str, Any]:
    frame = json.loads(ws.recv(timeout=RECV_GUARD))
    assert isinstance(frame, dict), frame
    return frame


def close_code(ws: ClientConnection) -> int | None:
    try:
        while True:
            ws.recv(timeout=RECV_GUARD)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def socket(server: Any, chat_id: int, token: str) -> ClientConnection:
    url = server.url.replace("http://", "ws://") + f"/ws/chat/{chat_id}/?token={token}"
    return connect(url, open_timeout=RECV_GUARD)


# Every control a person can reach, without a name a screen reader would announce: no
# <label>, no aria-label, no text of its own.
UNNAMED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a')]
  .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label')
                 || e.textContent.trim()))
  .map(e => e.outerHTML)"""


def assert_named(page: Page) -> None:
    assert page.evaluate(UNNAMED) == [], page.url


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(base + "/admin/")
    expect(page.get_by_role("heading", name="Log in to chatcore admin")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    assert_named(page)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    assert_named(page)


def test_an_admin_deactivates_a_user_renames_a_chat_and_deletes_a_message(
    watched: Watched, server: Any, client: httpx.Client, api: Any, make_admin: Any
) -> None:
    admin = make_admin(server, client, api)
    _, alice_token = api.register(client, username=api.unique("alice"), user_type="owner")
    bob, bob_token = api.register(client, username=api.unique("bob"))
    team = api.unique("team")
    chat = api.create_chat(client, alice_token, name=team, ids=[bob["id"]])
    api.send(client, alice_token, chat["id"], "Welcome to the team!")
    doomed = api.send(client, bob_token, chat["id"], f"spam spam spam {team}")
    api.send(client, alice_token, chat["id"], HOSTILE)
    page = watched.page

    with (
        socket(server, chat["id"], alice_token) as alice_ws,
        socket(server, chat["id"], bob_token) as bob_ws,
    ):
        log_in(page, server.url, admin["username"], api.PASSWORD)

        # Find bob and deactivate him: his socket closes and his token stops at once.
        page.get_by_role("link", name="Users", exact=True).click()
        page.get_by_role("searchbox", name="Search").fill(bob["username"])
        page.get_by_role("button", name="Filter").click()
        assert_named(page)
        page.get_by_role("link", name=bob["username"], exact=True).click()
        expect(page.get_by_role("heading", name=f"User {bob['username']}")).to_be_visible()
        assert_named(page)
        page.get_by_role("checkbox", name="Active").uncheck()
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_have_text("The account was saved.")
        expect(page.get_by_role("checkbox", name="Active")).not_to_be_checked()
        assert close_code(bob_ws) == 1008
        assert client.get("/api/me/", headers=api.auth(bob_token)).status_code == 401

        # Rename the chat: its socket hears chat_updated.
        page.get_by_role("link", name="Chats", exact=True).click()
        page.get_by_role("searchbox", name="Search").fill(team)
        page.get_by_role("button", name="Filter").click()
        page.get_by_role("link", name=team, exact=True).click()
        page.get_by_role("textbox", name="Name", exact=True).fill(f"{team} renamed")
        page.get_by_role("button", name="Rename").click()
        expect(page.get_by_role("heading", name=f"Chat {team} renamed")).to_be_visible()
        assert_named(page)
        frame = next_frame(alice_ws)
        assert (frame["type"], frame["chat"]["name"]) == ("chat_updated", f"{team} renamed")

        # Hostile text is text: no element made of it, the title untouched, and no
        # console error (a script the CSP blocked would be one).
        latest = page.get_by_role("list", name="Latest messages")
        expect(latest.get_by_text(HOSTILE, exact=True)).to_be_visible()
        assert page.locator("main img").count() == 0
        assert "pwned" not in page.title()

        # The README's picture: a chat's page, as an administrator sees it. Written to
        # docs/ only when asked (CHATCORE_UPDATE_SCREENSHOT=1).
        shot = page.screenshot(full_page=True)
        assert shot.startswith(b"\x89PNG")
        if os.environ.get("CHATCORE_UPDATE_SCREENSHOT") == "1":
            SCREENSHOT.parent.mkdir(exist_ok=True)
            SCREENSHOT.write_bytes(shot)

        # Find the spam and delete it, after the confirmation page.
        page.get_by_role("link", name="Messages", exact=True).click()
        page.get_by_role("searchbox", name="Search").fill(f"spam {team}")
        page.get_by_role("button", name="Filter").click()
        assert_named(page)
        page.get_by_role("link", name=f"Delete message {doomed['id']}").click()
        expect(page.get_by_role("heading", name="Delete message")).to_be_visible()
        assert_named(page)
        page.get_by_role("button", name="Yes, delete").click()
        expect(page.get_by_role("status")).to_have_text("The message was deleted.")
        frame = next_frame(alice_ws)
        assert frame == {
            "type": "message_deleted",
            "chat_id": chat["id"],
            "seq": frame["seq"],
            "message_id": doomed["id"],
        }
        gone = client.get(f"/api/messages/{doomed['id']}/", headers=api.auth(alice_token))
        assert gone.status_code == 404

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("status")).to_have_text("You are logged out.")
        page.goto(server.url + "/admin/users/")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
    watched.assert_clean()
