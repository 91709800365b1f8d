"""The web console's pages and forms (Starlette's TestClient, a fake pipeline; no browser)."""

from __future__ import annotations

import re
import time

import pytest
import webkit
from webkit import FakePipeline, client, console, login, token

from ingest.base import Batch, Point
from ingest.embedded import EmbeddedStore
from meshwatch.web.csrf import REFUSED
from meshwatch.web.forms import FORBIDDEN


def _flash(page: str) -> list[str]:
    return re.findall(r'<p class="flash (ok|error)"[^>]*>(.*?)</p>', page)


@pytest.fixture
def pipeline() -> FakePipeline:
    return FakePipeline({"a1"})


@pytest.fixture
def http(tmp_path, pipeline):
    with client(console(tmp_path, pipeline)) as c:
        yield c


def test_login_with_the_right_password_opens_the_fleet(http) -> None:
    """A good login lands on the fleet page with a signed, HttpOnly, SameSite=strict cookie."""
    response = login(http, "ana")
    assert (response.status_code, response.url.path) == (200, "/")
    cookie = response.history[0].headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert 'data-asset="plant-a/cnc-1"' in response.text


def test_bad_password_answers_401_with_a_message(http) -> None:
    """A wrong password is 401 with an .error, and no session user."""
    response = login(http, "ana", "wrong")
    assert response.status_code == 401
    assert 'class="error"' in response.text
    assert http.get("/", follow_redirects=False).status_code == 303


def test_sixth_failed_login_within_five_minutes_is_rate_limited(http) -> None:
    """After five failures the same user from the same address gets 429, even with the password."""
    for _ in range(5):
        assert login(http, "ana", "wrong").status_code == 401
    assert login(http, "ana").status_code == 429


def test_pages_need_a_login(http) -> None:
    """Without a session every page redirects to the login form."""
    for path in ("/", "/alerts", "/silences", "/assets/plant-a/cnc-1", "/events"):
        response = http.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, f"/login?next={path}")


def test_viewer_sees_no_action_forms_and_is_refused_with_403(http, pipeline) -> None:
    """A viewer's POST is 403 with the reason; nothing is sent to the pipeline."""
    login(http, "vic")
    page = http.get("/alerts").text
    assert 'data-action="ack"' not in page
    response = http.post("/alerts/a1/ack", data={"csrf": token(page), "comment": "x"})
    assert response.status_code == 403
    assert _flash(response.text) == [("error", FORBIDDEN)]
    assert pipeline.sent == []


@pytest.mark.parametrize("sent", [None, "forged"], ids=["missing", "forged"])
def test_missing_or_forged_csrf_token_is_refused(http, pipeline, sent) -> None:
    """A form without the session's token is 403 and changes nothing."""
    login(http, "ana")
    data = {"comment": "x"} if sent is None else {"comment": "x", "csrf": sent}
    response = http.post("/alerts/a1/ack", data=data)
    assert response.status_code == 403
    assert _flash(response.text) == [("error", REFUSED)]
    assert pipeline.sent == []


def test_ack_sends_the_logged_in_user_and_shows_who_acted(http, pipeline) -> None:
    """The command's ``by`` is the user's name; the alert then shows it in .acted."""
    login(http, "ana")
    page = http.get("/alerts").text
    data = {"csrf": token(page), "comment": "on it", "by": "mallory"}
    response = http.post("/alerts/a1/ack", data=data)
    assert _flash(response.text) == [("ok", "alert a1 acknowledged by ana")]
    assert pipeline.sent == [("ack", {"id": "a1", "by": "ana", "comment": "on it"})]
    assert re.search(r'<p class="acted">acknowledged by ana at [^<]*: on it</p>', response.text)
    assert 'data-state="acknowledged"' in response.text


def test_unknown_alert_id_shows_the_pipelines_reason(http, pipeline) -> None:
    """The pipeline's refusal is the flash message; nothing was sent that changed anything."""
    login(http, "ana")
    csrf = token(http.get("/alerts").text)
    response = http.post("/alerts/nope/feedback", data={"csrf": csrf, "verdict": "fault"})
    [(kind, text)] = _flash(response.text)
    assert (kind, "no alert &#39;nope&#39;" in text) == ("error", True)
    assert pipeline.sent == []


def test_bad_duration_is_refused_before_sending(http, pipeline) -> None:
    """A duration common.durations cannot read is named in the message; nothing is sent."""
    login(http, "ana")
    csrf = token(http.get("/").text)
    data = {"csrf": csrf, "site": "plant-a", "duration": "soon", "reason": "swap"}
    response = http.post("/silences", data=data)
    assert _flash(response.text) == [
        ("error", "invalid duration &#39;soon&#39; (write it like 30s, 5m, 1h30m or 2d)")
    ]
    assert pipeline.sent == []


def test_silence_site_sends_matchers_and_the_user(http, pipeline) -> None:
    """Silencing a site sends one matcher, the duration and the reason, by the user."""
    login(http, "ana")
    csrf = token(http.get("/").text)
    data = {"csrf": csrf, "site": "plant-a", "duration": "2h", "reason": "swap", "next": "/"}
    response = http.post("/silences", data=data)
    assert response.url.path == "/"
    [(command, body)] = pipeline.sent
    assert (command, body["matchers"], body["created_by"], body["duration"]) == (
        "silence",
        ["site=plant-a"],
        "ana",
        "2h",
    )


def test_html_in_names_messages_and_comments_is_escaped(tmp_path, pipeline) -> None:
    """Script in an asset name, a reason and a comment is shown as text, never as markup."""
    c = console(tmp_path, pipeline)
    evil = "<script>alert(1)</script>"
    c.fleet.health(webkit.health("plant-a", evil, "critical", "a1", reason=evil))
    with client(c) as http:
        login(http, "ana")
        csrf = token(http.get("/").text)
        http.post("/alerts/a1/ack", data={"csrf": csrf, "comment": evil})
        for path in ("/", "/alerts"):
            page = http.get(path).text
            assert evil not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_broker_down_shows_the_banner_and_a_clear_refusal(tmp_path, pipeline) -> None:
    """Pages render from the last state with #broker-banner; an action says why it failed."""
    c = console(tmp_path, pipeline)
    c.fleet.broker(False)
    pipeline.down = True
    with client(c) as http:
        login(http, "ana")
        page = http.get("/").text
        assert 'id="broker-banner"' in page and 'data-asset="plant-a/cnc-1"' in page
        response = http.post("/alerts/a1/ack", data={"csrf": token(page), "comment": ""})
        assert response.status_code == 200
        assert _flash(response.text)[0][0] == "error"
        silences = http.get("/silences")
        assert silences.status_code == 200 and "cannot list the silences" in silences.text
        assert "Traceback" not in response.text + silences.text


def test_read_only_console_needs_no_login_and_refuses_actions(tmp_path, pipeline) -> None:
    """Without users everybody reads; every action answers 403."""
    with client(console(tmp_path, pipeline, read_only=True)) as http:
        page = http.get("/alerts")
        assert page.status_code == 200 and 'data-action="ack"' not in page.text
        response = http.post("/alerts/a1/ack", data={"comment": "x"})
        assert response.status_code == 403
        assert pipeline.sent == []


def test_fleet_filters_by_status(tmp_path, pipeline) -> None:
    """``?status=ok`` shows only the healthy assets."""
    c = console(tmp_path, pipeline)
    c.fleet.health(webkit.health("plant-b", "cnc-2", "ok"))
    with client(c) as http:
        login(http, "ana")
        page = http.get("/?status=ok").text
    assert 'data-asset="plant-b/cnc-2"' in page and 'data-asset="plant-a/cnc-1"' not in page


def test_next_never_leaves_the_console(http) -> None:
    """A ``next`` naming another site is ignored: the login lands on the fleet."""
    page = http.get("/login").text
    form = {"csrf": token(page), "username": "ana", "password": webkit.PASSWORD}
    response = http.post("/login?next=//evil.example/", data=form, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_unknown_page_is_a_plain_404(http) -> None:
    """A missing page says so, without a stack trace."""
    login(http, "ana")
    response = http.get("/nope")
    assert response.status_code == 404 and "no such page" in response.text


def test_an_escalated_alert_shows_its_current_message_and_its_change_of_level(
    tmp_path, http
) -> None:
    """The open alert's card has the message of its level now; the history lists the change."""
    now = time.time_ns()
    tags = {"site": "plant-a", "asset": "cnc-1", "rule": "anomaly"}
    records = [
        ("warning", "firing", "cnc-1 behaves abnormally", now - 120 * 10**9),
        ("critical", "escalated", "cnc-1 is failing", now - 60 * 10**9),
    ]
    store = EmbeddedStore(tmp_path / "meshwatch.db")
    try:
        points = [
            Point(
                "alert", {**tags, "severity": severity}, {"state": s, "message": m, "id": "a1"}, t
            )
            for severity, s, m, t in records
        ]
        store.write(Batch(points=points))
    finally:
        store.close()
    login(http, "ana")
    page = http.get("/alerts").text
    card = page[page.index('<article class="alert" data-alert-id="a1"') :].split("</article>")[0]
    assert 'data-severity="critical"' in card
    assert '<p class="message">cnc-1 is failing</p>' in card
    assert re.search(r'data-state="escalated">.*<td>critical</td><td>escalated</td>', page)
