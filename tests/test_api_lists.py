"""Every list pages alike ({"data", "next_cursor", "has_more"}, limit, cursor); unknown query
parameters are refused; 201 answers name the new object in Location (docs/api-overview.md)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from freezegun import freeze_time

from tests import factories

LISTS = [
    "/api/v1/workspaces",
    "/api/v1/records",
    "/api/v1/api_keys",
    "/api/v1/members",
    "/api/v1/invitations",
    "/api/v1/audit_events",
]


@pytest.fixture
def owner(app: Flask) -> factories.Person:
    return factories.make_person(app)


@pytest.fixture
def session(client: FlaskClient, owner: factories.Person) -> dict[str, str]:
    """An owner's session on its account; the headers a changing call needs."""
    return factories.session_headers(client, owner)


def walk(client: FlaskClient, path: str, limit: int) -> list[dict[str, Any]]:
    """Every page of a list, checking the shape of each."""
    pages = []
    url = f"{path}?limit={limit}"
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert set(body) == {"data", "next_cursor", "has_more"}
        assert body["has_more"] is (body["next_cursor"] is not None)
        assert len(body["data"]) <= limit
        pages.append(body)
        if not body["has_more"]:
            return pages
        url = f"{path}?limit={limit}&cursor={body['next_cursor']}"
        assert len(pages) < 20


def test_keys_members_and_invitations_page_like_every_list(
    app: Flask, client: FlaskClient, owner: factories.Person, session: dict[str, str]
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    with freeze_time(start) as clock:
        for n in range(3):
            clock.tick(1)
            factories.make_api_key(app, owner.account_slug, f"Key {n}")
            person = factories.make_user(app)
            factories.make_membership(app, owner.account_slug, person.email, "member")
    for n in range(3):
        invited = client.post(
            "/api/v1/invitations",
            json={"email": f"invitee{n}@example.com", "role": "member"},
            headers=session,
        )
        assert invited.status_code == 201

    keys = walk(client, "/api/v1/api_keys", 2)
    assert [len(page["data"]) for page in keys] == [2, 1]
    assert [key["name"] for page in keys for key in page["data"]] == ["Key 0", "Key 1", "Key 2"]

    members = walk(client, "/api/v1/members", 2)
    assert [len(page["data"]) for page in members] == [2, 2]  # the owner and three members
    emails = [m["email"] for page in members for m in page["data"]]
    assert emails[-1] == owner.email and len(set(emails)) == 4  # oldest first

    invitations = walk(client, "/api/v1/invitations", 1)
    assert [i["email"] for page in invitations for i in page["data"]] == [
        "invitee0@example.com",
        "invitee1@example.com",
        "invitee2@example.com",
    ]


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["abc", "0", "101", "-1", "1.5", "", "²"])
def test_every_list_refuses_a_bad_limit(
    client: FlaskClient, session: dict[str, str], path: str, limit: str
) -> None:
    response = client.get(f"{path}?limit={limit}")
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"limit"}


@pytest.mark.parametrize("path", LISTS)
def test_every_list_refuses_a_made_up_cursor(
    client: FlaskClient, session: dict[str, str], path: str
) -> None:
    response = client.get(f"{path}?cursor=not-a-cursor")
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"cursor"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/account"),
        ("GET", "/api/v1/workspaces"),
        ("POST", "/api/v1/workspaces"),
        ("GET", "/api/v1/records"),
        ("GET", "/api/v1/api_keys"),
        ("GET", "/api/v1/members"),
        ("GET", "/api/v1/audit_events"),
        ("GET", "/api/v1/openapi.json"),
    ],
)
def test_unknown_query_parameters_are_refused_and_nothing_happens(
    app: Flask, client: FlaskClient, session: dict[str, str], method: str, path: str
) -> None:
    before = client.get("/api/v1/workspaces").get_json()["data"]
    response = client.open(
        f"{path}?page=2&workspace=x", method=method, json={"name": "W"}, headers=session
    )
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert fields == {"page": "Unknown query parameter.", "workspace": "Unknown query parameter."}
    assert client.get("/api/v1/workspaces").get_json()["data"] == before


def test_known_query_parameters_still_work(client: FlaskClient, session: dict[str, str]) -> None:
    main = client.get("/api/v1/workspaces").get_json()["data"][0]["id"]
    response = client.get(f"/api/v1/records?workspace_id={main}&limit=5")
    assert response.status_code == 200
    events = client.get("/api/v1/audit_events?kind=sign_in.succeeded&limit=1")
    assert events.status_code == 200


def test_an_invitation_and_a_key_are_named_in_location(
    client: FlaskClient, session: dict[str, str]
) -> None:
    invited = client.post(
        "/api/v1/invitations", json={"email": "new@example.com", "role": "admin"}, headers=session
    )
    assert invited.status_code == 201
    shown = client.get(invited.headers["Location"])
    assert shown.status_code == 200
    assert shown.get_json() == invited.get_json()

    made = client.post("/api/v1/api_keys", json={"name": "CI"}, headers=session)
    assert made.status_code == 201
    listing = client.get(made.headers["Location"]).get_json()
    assert listing == {name: value for name, value in made.get_json().items() if name != "key"}
