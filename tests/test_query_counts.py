"""How many SQL statements each signed-in page costs (a change here should be a decision).

The session row is looked up once per request and its last-seen time written after the
response at most once a minute, so a page's count is its own work plus one session lookup.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from terminus_hub.extensions import db
from tests import factories

PAGES = {
    "/accounts": 4,
    "/a/{slug}/": 6,
    "/a/{slug}/members": 7,
    "/a/{slug}/api_keys": 6,
    "/a/{slug}/sso": 6,
    "/a/{slug}/audit": 7,
    "/sessions": 4,
}


@contextmanager
def counted(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def note(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize(("page", "expected"), PAGES.items())
def test_each_signed_in_page_costs_a_known_number_of_statements(app, client, page, expected):
    person = factories.make_person(app)
    signed_in = client.post(
        "/sign_in/password", data={"email": person.email, "password": person.password}
    )
    assert signed_in.status_code == 303
    path = page.format(slug=person.account_slug)
    client.get(path)  # first visit: the once-a-minute last-seen write is behind us

    with counted(app) as statements:
        response = client.get(path)

    assert response.status_code == 200
    sessions_lookups = [s for s in statements if s.lstrip().startswith("SELECT sessions.")]
    assert len(sessions_lookups) <= 2, statements  # one lookup (and one reload after a write)
    assert len(statements) == expected, "\n".join(statements)
