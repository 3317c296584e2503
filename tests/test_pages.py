"""The signed-in pages as a product: the account shell, workspaces you can open, the audit log
in sentences, times people read, inline refusals for htmx, and the favicon."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from terminus_hub.extensions import db
from terminus_hub.models import Account
from terminus_hub.models import Record
from terminus_hub.models import Workspace
from terminus_hub.templating import relative
from tests import factories


def page_of(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def tabs_of(page: str) -> list[str]:
    nav = re.search(r'<nav class="account-tabs".*?</nav>', page, re.S)
    assert nav, "no account tabs"
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav.group(0))


# -- the brand link ------------------------------------------------------------------------------


def test_the_brand_link_opens_the_only_account_straight_away(client, user) -> None:
    factories.sign_in(client, user.email)
    response = client.get("/")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].endswith(f"/a/{user.account_slug}/")


def test_the_brand_link_shows_the_picker_to_people_in_two_accounts(app, client, user) -> None:
    factories.make_account(app, user.email, "Second")
    factories.sign_in(client, user.email)
    assert client.get("/").headers["Location"].endswith("/accounts")


# -- the account shell -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("owner", ["Home", "API keys", "Members", "Single sign-on", "Audit log", "Settings"]),
        ("admin", ["Home", "API keys", "Members", "Single sign-on", "Audit log"]),
        ("member", ["Home", "API keys", "Members"]),
    ],
)
def test_every_account_page_has_the_tabs_its_role_may_use(app, client, user, role, expected):
    person = user
    if role != "owner":
        other = factories.make_user(app)
        factories.make_membership(app, user.account_slug, other.email, role)
        person = factories.Person(other.id, other.email, factories.PASSWORD, user.account_slug)
    factories.sign_in(client, person.email)
    slug = user.account_slug
    for path in (f"/a/{slug}/", f"/a/{slug}/api_keys", f"/a/{slug}/members"):
        assert tabs_of(page_of(client, path)) == expected, path


def test_the_current_tab_and_account_are_marked(app, client, user) -> None:
    factories.make_account(app, user.email, "Other Co")
    factories.sign_in(client, user.email)
    page = page_of(client, f"/a/{user.account_slug}/members")
    assert re.search(r'<a href="[^"]*/members" aria-current="page">Members</a>', page)
    switcher = re.search(r'<details class="menu switcher">.*?</details>', page, re.S)
    assert switcher, "no switcher for a person in two accounts"
    summary = re.search(r"<summary>(.*?)</summary>", switcher.group(0), re.S)
    assert summary and "Switch account" in summary.group(1)
    with app.app_context():
        name = db.session.scalar(select(Account.name).where(Account.slug == user.account_slug))
    assert name in summary.group(1)  # the summary names the current account
    assert re.search(rf'aria-current="true">{re.escape(name)}</a>', switcher.group(0))


def test_the_persons_menu_holds_settings_sessions_and_sign_out(client, user) -> None:
    factories.sign_in(client, user.email)
    page = page_of(client, f"/a/{user.account_slug}/")
    menu = re.search(r'<details class="menu person">.*?</details>', page, re.S)
    assert menu
    assert 'href="/settings"' in menu.group(0) and 'href="/sessions"' in menu.group(0)
    assert 'action="/sign_out"' in menu.group(0)


# -- workspaces ------------------------------------------------------------------------------------


def _workspace_of(app: Flask, slug: str) -> str:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        assert account is not None
        return account.workspaces[0].id


def test_a_workspace_opens_from_home_and_lists_its_records(app, client, user) -> None:
    workspace_id = _workspace_of(app, user.account_slug)
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == user.account_slug))
        db.session.add(
            Record(
                account_id=account.id,  # type: ignore[union-attr]
                workspace_id=workspace_id,
                title="<b>Quarterly</b>",
                data={"n": 1},
            )
        )
        db.session.commit()
    factories.sign_in(client, user.email)
    home = page_of(client, f"/a/{user.account_slug}/")
    assert f'href="/a/{user.account_slug}/workspaces/{workspace_id}"' in home
    page = page_of(client, f"/a/{user.account_slug}/workspaces/{workspace_id}")
    assert "&lt;b&gt;Quarterly&lt;/b&gt;" in page and "<b>Quarterly" not in page
    assert 'data-label="Title"' in page


def _add_record(app: Flask, slug: str, workspace_id: str, data: object) -> str:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == slug))
        record = Record(
            account_id=account.id,  # type: ignore[union-attr]
            workspace_id=workspace_id,
            title="Deep",
            data=data,
        )
        db.session.add(record)
        db.session.commit()
        return record.id


def test_a_records_data_shows_indented_and_escaped(app, client, user) -> None:
    workspace_id = _workspace_of(app, user.account_slug)
    _add_record(app, user.account_slug, workspace_id, {"plan": "</pre><script>x</script>"})
    factories.sign_in(client, user.email)
    page = page_of(client, f"/a/{user.account_slug}/workspaces/{workspace_id}")
    assert "{\n  &#34;plan&#34;: &#34;&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;&#34;\n}" in page
    assert "Only the start is shown" not in page


def test_deeply_nested_data_cannot_blow_up_the_workspace_page(app, client, user) -> None:
    """Data of the largest size and depth the API takes, indented, would be 30 times larger: a
    page of 50 such records is a few hundred kilobytes, not a hundred megabytes."""
    workspace_id = _workspace_of(app, user.account_slug)
    deep: object = [0] * 2_000
    for _ in range(30):
        deep = [deep]
    for _ in range(50):
        record_id = _add_record(app, user.account_slug, workspace_id, deep)
    factories.sign_in(client, user.email)
    page = page_of(client, f"/a/{user.account_slug}/workspaces/{workspace_id}")
    assert len(page.encode()) < 250_000, len(page.encode())
    assert f"GET http://localhost/api/v1/records/{record_id}" in page


def test_an_empty_workspace_says_how_to_add_records(app, client, user) -> None:
    workspace_id = _workspace_of(app, user.account_slug)
    factories.sign_in(client, user.email)
    page = page_of(client, f"/a/{user.account_slug}/workspaces/{workspace_id}")
    assert "No records yet." in page
    assert f'"workspace_id": "{workspace_id}"' in page.replace("&#34;", '"')
    assert "http://localhost/api/v1/records" in page


def test_a_workspace_of_another_account_is_a_404(app, client, user) -> None:
    stranger = factories.make_person(app)
    theirs = _workspace_of(app, stranger.account_slug)  # type: ignore[arg-type]
    factories.sign_in(client, user.email)
    assert client.get(f"/a/{user.account_slug}/workspaces/{theirs}").status_code == 404
    assert client.get(f"/a/{stranger.account_slug}/workspaces/{theirs}").status_code == 404
    assert client.get(f"/a/{user.account_slug}/workspaces/ws_nothing").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(Workspace.id).where(Workspace.id == theirs))


# -- the audit log ---------------------------------------------------------------------------------


def test_the_audit_log_reads_as_sentences_with_details_behind_a_disclosure(app, client, user):
    factories.sign_in(client, user.email)
    slug = user.account_slug
    token = factories.csrf_token(client, f"/a/{slug}/api_keys")
    created = client.post(
        f"/a/{slug}/api_keys", data={**factories.key_form("CI <pipeline>"), "csrf_token": token}
    )
    assert created.status_code == 201
    page = page_of(client, f"/a/{slug}/audit")
    assert f"Test Person ({user.email}) created the API key “CI &lt;pipeline&gt;”" in page
    assert "api_key.created" in page  # named once, in the details
    assert "{&#39;" not in page and "{'" not in page  # no Python reprs
    assert '<option value="api_key.created">API key created</option>' in page


def test_a_name_chosen_to_look_like_someone_else_does_not_hide_who_acted(app, client, user):
    """A name is whatever its person typed, even another member's address: the log names each
    person with their own address too, as written (not capitalised)."""
    impostor = factories.make_user(app, email="mallory@example.com", name=user.email)
    factories.make_membership(app, user.account_slug, impostor.email, "admin")
    factories.sign_in(client, impostor.email)
    slug = user.account_slug
    token = factories.csrf_token(client, f"/a/{slug}/api_keys")
    form = {**factories.key_form("Production"), "csrf_token": token}
    assert client.post(f"/a/{slug}/api_keys", data=form).status_code == 201

    page = page_of(client, f"/a/{slug}/audit")

    assert f"{user.email} (mallory@example.com) created the API key “Production”" in page
    assert f"{user.email[:1].upper()}{user.email[1:]}" not in page


def test_audit_details_keep_every_field_the_sentence_does_not_say() -> None:
    from terminus_hub.accounts.audit_text import tell
    from terminus_hub.models import AuditEvent

    def details(kind: str, detail: dict[str, object]) -> dict[str, str]:
        event = AuditEvent(
            kind=kind, user_id="u1", actor_type="user", actor_id="u2", ip_address="", detail=detail
        )
        return dict(tell(event, {"u1": "ada@example.com", "u2": "grace@example.com"}).details)

    assert details("passkey.registered", {"name": "YubiKey 5"})["Name"] == "YubiKey 5"
    assert details("member.removed", {"role": "admin"})["Role"] == "admin"
    assert "Name" not in details("api_key.created", {"name": "CI"})  # the sentence says it
    assert details("user.renamed", {"from": "Ada", "to": "Grace"}) == {
        "From": "Ada",
        "To": "Grace",
        "Event": "user.renamed",
    }


def test_audit_sentences_for_every_kind_name_no_placeholders() -> None:
    from terminus_hub import audit
    from terminus_hub.accounts.audit_text import SENTENCES
    from terminus_hub.accounts.audit_text import tell
    from terminus_hub.models import AuditEvent

    assert set(SENTENCES) == set(audit.KINDS)
    for kind in audit.KINDS:
        event = AuditEvent(
            kind=kind, user_id="u1", actor_type="user", actor_id="u2", ip_address="", detail={}
        )
        told = tell(event, {"u1": "Ada", "u2": "Grace"})
        assert "{" not in told.sentence and told.sentence[:1].isupper(), kind


# -- times -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "past", "future"),
    [
        (20, "just now", "in under a minute"),
        (120, "2 minutes ago", "in 2 minutes"),
        (3 * 3600, "3 hours ago", "in 3 hours"),
        (30 * 3600, "yesterday", "tomorrow"),
        (5 * 86400, "5 days ago", "in 5 days"),
    ],
)
def test_times_read_relative(seconds: int, past: str, future: str) -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert relative(now - timedelta(seconds=seconds), now) == past
    assert relative(now + timedelta(seconds=seconds), now) == future
    assert relative(now - timedelta(days=40), now) == "22 Oct 2026"


def test_pages_show_relative_times_with_the_exact_one_in_time(app, client, user) -> None:
    factories.make_api_key(app, user.account_slug, "Nightly")
    factories.sign_in(client, user.email)
    page = page_of(client, f"/a/{user.account_slug}/api_keys")
    assert re.search(r'<time datetime="[0-9T:+-]+" title="[^"]+ UTC">just now</time>', page)


# -- refusals and errors ---------------------------------------------------------------------------


def test_a_refused_password_marks_the_field_and_ties_it_to_the_message(client, user, hx) -> None:
    token = factories.csrf_token(client, "/sign_in")
    response = client.post(
        "/sign_in/password",
        data={"email": user.email, "password": "wrong password here", "csrf_token": token},
        headers=hx,
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    field = re.search(r'<input[^>]*id="password"[^>]*>', page)
    assert field and 'aria-invalid="true"' in field.group(0)
    assert re.search(r'aria-describedby="[^"]*sign-in-error', field.group(0))
    assert 'id="sign-in-error"' in page


@pytest.mark.usefixtures("_fresh_limiter")
@pytest.mark.app_config(RATELIMIT_ENABLED=True, TERMINUS_SIGN_IN_RATE_LIMIT="1 per minute")
def test_an_htmx_429_keeps_the_form_and_says_when_to_retry(client, user, hx) -> None:
    token = factories.csrf_token(client, "/sign_in")
    data = {"email": user.email, "csrf_token": token}
    assert client.post("/sign_in/email", data=data, headers=hx).status_code == 200
    refused = client.post("/sign_in/email", data=data, headers=hx)
    assert refused.status_code == 429
    assert refused.headers["HX-Reswap"] == "none"  # the form the person filled stays
    body = refused.get_data(as_text=True)
    assert 'id="flashes"' in body and 'hx-swap-oob="true"' in body
    assert re.search(r"Try again in \d+ seconds?\.", body)
    assert "<h1" not in body and "card" not in body
    plain = client.post("/sign_in/email", data=data)
    assert plain.status_code == 429 and "<h1" in plain.get_data(as_text=True)


def test_every_page_links_a_favicon_that_is_served(client) -> None:
    page = page_of(client, "/sign_in")
    link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page)
    assert link
    with client.get(link.group(1)) as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert '<meta name="color-scheme" content="light dark">' in page


def test_a_home_without_workspaces_says_what_to_do_next(app, client, user) -> None:
    with app.app_context():
        account = db.session.scalar(select(Account).where(Account.slug == user.account_slug))
        for workspace in list(account.workspaces):  # type: ignore[union-attr]
            db.session.delete(workspace)
        db.session.commit()
    factories.sign_in(client, user.email)
    page = page_of(client, f"/a/{user.account_slug}/")
    assert "No workspaces yet." in page
    assert f'href="/a/{user.account_slug}/api_keys">Create an API key</a>' in page
    assert 'curl -H "Authorization: Bearer $TERMINUS_KEY"' in page
