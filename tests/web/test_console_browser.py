"""The console in a real browser: a maintainer's path from login to acting on a fault.

One stack per module (`consolekit`): the pipeline, the console and a live fleet whose one
fault (the oven at ``north``) turns critical when a test turns it on. The tests select on
the stable DOM hooks the console documents (``data-asset``, ``data-alert-id``,
``form[data-action=...]``, ``.flash``) and run in file order: the one about the live
update turns the fault on while its page is open; the others turn it on themselves when
they need it, so each also runs alone.

Screenshots of each page at phone and desktop size go to
``test-output/screenshots/test_console_browser/``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
from browserkit import Browser
from consolekit import FAULTY, MAINTAINER, MARKUP, REPEAT_SECONDS, SITES, VIEWER, Stack, User
from support import publish_retained, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.browser]

FAULTY_ID = "/".join(FAULTY)
#: The forms only a maintainer may use (``data-action`` of the console's action forms).
ACTIONS = (
    "ack",
    "silence-asset",
    "silence-site",
    "feedback-normal",
    "feedback-fault",
    "expire",
)
ACTION_FORMS = ", ".join(f'form[data-action="{a}"]' for a in ACTIONS)
#: What a refused form says (the console's one message for a missing or forged CSRF token).
EXPIRED = "the form expired or was not sent by this console; reload the page"
ACK_COMMENT = "on my way <script>window.mwXss=3</script>"


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Browser]:
    """The module's browser on the console, at desktop size, no one logged in yet."""
    browser.base_url = stack.url
    browser.resize("desktop")
    yield browser


def login(page: Browser, user: User) -> None:
    """Log ``user`` in through the login form (any earlier session forgotten)."""
    page.open("/login")
    page.driver.delete_all_cookies()
    page.open("/login")
    page.wait_for("form#login")
    page.wait_for("input#username").send_keys(user.name)
    page.wait_for("input#password").send_keys(user.password)
    page.wait_for("button#login-submit").click()
    page.wait_for("#logout")


def status_of(page: Browser, asset: str) -> str | None:
    """The ``data-status`` of an asset's element on the page (None when absent)."""
    found = page.script(
        'const e = document.querySelector(`[data-asset="${arguments[0]}"]`);'
        "return e ? e.dataset.status : null",
        asset,
    )
    return None if found is None else str(found)


def submit(page: Browser, form_css: str, **fields: str) -> None:
    """Fill the named fields of the form ``form_css`` and submit it with its button."""
    form = page.wait_for(form_css)
    for name, value in fields.items():
        control = page.find(f'[name="{name}"]', form)
        assert control is not None, f"{form_css} has no field {name!r}"
        control.clear()
        control.send_keys(value)
    button = page.find('button[type="submit"]', form)
    assert button is not None, f"{form_css} has no submit button"
    button.click()


def _no_markup_ran(page: Browser) -> None:
    """The markup the tests planted did not run, and no element of it was made."""
    assert page.script("return typeof window.mwXss") == "undefined", page.path()
    assert page.script("return document.querySelectorAll('img[src=\"x\"]').length") == 0


def test_a_maintainer_logs_in_and_sees_the_fleet(page: Browser, stack: Stack) -> None:
    """The login form leads to the fleet page, one element per asset."""
    page.open("/login")
    page.screenshots("login")
    login(page, MAINTAINER)
    assert not page.path().startswith("/login")
    page.open("/")
    for site in SITES:
        page.wait_for(f'[data-asset="{site}/press-1"]')


def test_a_wrong_password_is_refused_with_a_message(page: Browser, stack: Stack) -> None:
    """A bad password leaves the user on the login page with an error and no session."""
    page.open("/login")
    page.driver.delete_all_cookies()
    page.open("/login")
    page.wait_for("input#username").send_keys(MAINTAINER.name)
    page.wait_for("input#password").send_keys("not the password")
    page.wait_for("button#login-submit").click()
    assert page.wait_for(".error").text.strip()
    assert page.find("#logout") is None
    page.open("/alerts")
    page.until(lambda: page.path().startswith("/login"), "the way back to the login page")


def test_the_session_cookie_is_http_only_and_same_site(page: Browser, stack: Stack) -> None:
    """Scripts cannot read the session, and other sites cannot send it."""
    login(page, MAINTAINER)
    cookies = page.driver.get_cookies()
    assert cookies
    for cookie in cookies:
        assert cookie.get("httpOnly") is True, cookie
        assert cookie.get("sameSite") in {"Lax", "Strict"}, cookie
    assert page.script("return document.cookie") == ""


def test_the_faulty_asset_turns_critical_without_a_reload(page: Browser, stack: Stack) -> None:
    """The open fleet page updates the asset's element in place when the fault fires."""
    assert not stack.fleet.fault.is_set(), "this test turns the fault on: run it first"
    login(page, MAINTAINER)
    page.open("/")
    page.wait_for(f'[data-asset="{FAULTY_ID}"]')
    assert status_of(page, FAULTY_ID) == "ok"
    page.script("window.mwSamePage = true")
    stack.fleet.fault.set()
    page.until(lambda: status_of(page, FAULTY_ID) == "critical", f"{FAULTY_ID} critical", 30)
    assert page.script("return window.mwSamePage") is True, "the page was reloaded"
    element = page.wait_for(f'[data-asset="{FAULTY_ID}"]')
    page.until(lambda: MARKUP in element.text, "the alert's message as the reason")
    _no_markup_ran(page)
    page.screenshots("fleet")


def test_an_ack_with_a_comment_reaches_the_pipeline_and_stops_the_repeats(
    page: Browser, stack: Stack
) -> None:
    """Acked from the alerts page as the logged-in user: the pipeline stops repeating."""
    alert_id = stack.fault_alert()["id"]
    wait_for(lambda: len(stack.notifications(alert_id)) >= 2, 30, "a repeat before the ack")
    login(page, MAINTAINER)
    page.open("/alerts")
    row_css = f'[data-alert-id="{alert_id}"]'
    row = page.wait_for(row_css)
    assert (row.get_attribute("data-severity"), row.get_attribute("data-state")) == (
        "critical",
        "firing",
    )
    page.screenshots("alerts-firing")
    submit(page, f'{row_css} form[data-action="ack"]', comment=ACK_COMMENT)
    page.wait_for(".flash.ok")
    acked = f"alert {alert_id} acknowledged by {MAINTAINER.name}: {ACK_COMMENT}"
    wait_for(lambda: acked in stack.pipeline.log(), 10, "the ack in the pipeline's log")
    acked_at = time.monotonic()
    page.open("/alerts")
    row = page.wait_for(row_css)
    page.until(
        lambda: any(MAINTAINER.name in e.text for e in page.all(".acted", row)),
        "who acked, in the alert's row",
    )
    _no_markup_ran(page)
    page.screenshots("alerts")
    # four repeat intervals of event time later, still firing, and not repeated
    stack.fleet.wait_steps(4 * REPEAT_SECONDS)
    assert stack.watcher.status(*FAULTY) == "critical"
    late = [m.json() for m in stack.notifications(alert_id) if m.at > acked_at + 2]
    assert late == []


def test_a_maintainer_silences_a_site(page: Browser, stack: Stack) -> None:
    """The fleet page's site silence puts the site's assets in maintenance, as the user."""
    login(page, MAINTAINER)
    page.open("/")
    submit(
        page,
        'form[data-action="silence-site"][data-site="south"]',
        duration="2h",
        reason="line changeover",
    )
    page.wait_for(".flash.ok")
    for asset in ("oven-1", "press-1"):
        wait_for(
            lambda a=asset: stack.watcher.status("south", a) == "maintenance",
            15,
            f"south/{asset} in maintenance",
        )
    health = stack.watcher.health("south", "press-1")
    assert health is not None
    assert f"({MAINTAINER.name}: line changeover)" in health["reason"]
    page.open("/")
    page.until(
        lambda: status_of(page, "south/press-1") == "maintenance", "south/press-1 in maintenance"
    )
    assert status_of(page, "east/press-1") == "ok"
    page.open("/silences")
    rows = page.until(
        lambda: [r for r in page.all("[data-silence-id]") if "south" in r.text],
        "the site's silence listed",
    )
    assert MAINTAINER.name in rows[0].text
    page.screenshots("silences")


def test_the_assets_chart_opens_from_the_fleet_page(page: Browser, stack: Stack) -> None:
    """From the fleet page to the asset's page: its metric charted, the alert shaded."""
    stack.fault_alert()
    login(page, MAINTAINER)
    page.open("/")
    page.wait_for(f'a[href$="/assets/{FAULTY_ID}"]').click()
    page.until(lambda: page.path().startswith(f"/assets/{FAULTY_ID}"), "the asset's page")
    chart = page.wait_for('svg.chart[data-metric="temp"]')
    assert chart.size["width"] > 0
    assert chart.size["height"] > 0
    assert page.all("path, polyline", chart), "nothing drawn in the temp chart"
    page.wait_for("svg.chart rect.episode")
    page.until(lambda: "east" in page.wait_for("#reroute").text, "advice naming east's oven")
    page.screenshots("asset")


def test_a_viewer_sees_no_action_forms_and_cannot_post(page: Browser, stack: Stack) -> None:
    """A viewer reads every page without forms; their posts are refused with 403."""
    alert_id = stack.fault_alert()["id"]
    login(page, MAINTAINER)
    page.open("/alerts")
    ack_form = page.wait_for(f'[data-alert-id="{alert_id}"] form[data-action="ack"]')
    page.find('[name="comment"]', ack_form).send_keys("viewer was here")
    posts = [(ack_form.get_attribute("action"), page.form_fields(ack_form))]
    page.open("/")
    silence_form = page.wait_for('form[data-action="silence-site"][data-site="east"]')
    for name, value in (("duration", "1h"), ("reason", "viewer was here")):
        page.find(f'[name="{name}"]', silence_form).send_keys(value)
    posts.append((silence_form.get_attribute("action"), page.form_fields(silence_form)))

    login(page, VIEWER)
    for path in ("/", "/alerts", "/silences", f"/assets/{FAULTY_ID}"):
        page.open(path)
        assert page.all(ACTION_FORMS) == [], f"action forms shown to a viewer on {path}"
    page.open("/alerts")
    page.wait_for(f'[data-alert-id="{alert_id}"]')
    token = page.script("const t = document.querySelector('input[name=csrf]'); return t && t.value")
    assert token, "no CSRF token on the viewer's page (the logout form has one)"
    for action, fields in posts:
        status, body = page.post(action, {**fields, "csrf": token})
        assert status == 403, (action, status, body)
        assert page.parses_to(body, ".flash.error"), body
    assert stack.watcher.status("east", "press-1") == "ok"
    page.open("/silences")
    assert not [r for r in page.all("[data-silence-id]") if "east" in r.text]


def test_a_forged_form_is_refused(page: Browser, stack: Stack) -> None:
    """A wrong or missing CSRF token: 403, the console's message, nothing changed."""
    login(page, MAINTAINER)
    page.open("/")
    form_css = 'form[data-action="silence-site"][data-site="east"]'
    form = page.wait_for(form_css)
    page.script("arguments[0].querySelector('input[name=csrf]').value = 'forged'", form)
    submit(page, form_css, duration="1h", reason="forged")
    assert EXPIRED in page.wait_for(".flash.error").text
    page.open("/")
    form = page.wait_for(form_css)
    for name, value in (("duration", "1h"), ("reason", "forged")):
        page.find(f'[name="{name}"]', form).send_keys(value)
    action, fields = form.get_attribute("action"), page.form_fields(form)
    for forged in ({**fields, "csrf": "forged"}, {k: v for k, v in fields.items() if k != "csrf"}):
        status, body = page.post(action, forged)
        assert status == 403, (forged, status, body)
        assert page.parses_to(body, ".flash.error"), body
    assert stack.watcher.status("east", "press-1") == "ok"
    page.open("/silences")
    assert not [r for r in page.all("[data-silence-id]") if "east" in r.text]


def test_markup_in_names_messages_and_comments_is_shown_not_run(
    page: Browser, stack: Stack
) -> None:
    """Script in an alert's message, an asset name or a live update stays text."""
    stack.fault_alert()
    # a rogue publisher's health messages: markup in an asset name (the pipeline never
    # accepts one) and, for a valid asset that appears live, in its reason
    rogue = "<img src=x onerror=window.mwXss=4>"
    live = "<img src=x onerror=window.mwXss=5>"

    def health(asset: str, reason: str) -> bytes:
        return orjson.dumps(
            {
                "site": "north",
                "asset": asset,
                "kind": "oven",
                "status": "warning",
                "score": None,
                "since": "2026-12-01T00:00:00.000Z",
                "reason": reason,
                "alerts": [],
            }
        )

    topics = [f"{stack.prefix}/health/north/{rogue}", f"{stack.prefix}/health/north/ghost-1"]
    publish_retained(stack.broker, [(topics[0], health(rogue, "<b>rogue</b>"))])
    try:
        login(page, MAINTAINER)
        for path in ("/", "/alerts", f"/assets/{FAULTY_ID}", "/silences"):
            page.open(path)
            _no_markup_ran(page)
            if path in ("/", "/alerts"):
                page.until(lambda: MARKUP in page.text(), f"the alert's message as text on {path}")
        page.open("/")
        shown = page.script(
            "return Array.from(document.querySelectorAll('[data-asset]'))"
            ".filter(e => e.dataset.asset.includes('<')).map(e => e.innerText)"
        )
        assert all(rogue in text for text in shown), shown
        publish_retained(stack.broker, [(topics[1], health("ghost-1", live))])
        page.until(lambda: status_of(page, "north/ghost-1") == "warning", "the live update")
        page.until(lambda: live in page.text(), "the live reason as text")
        _no_markup_ran(page)
    finally:
        publish_retained(stack.broker, [(topic, b"") for topic in topics])


@pytest.mark.parametrize("path", ["/login", "/", "/alerts", "/silences", f"/assets/{FAULTY_ID}"])
def test_each_page_fits_a_phone_and_labels_its_controls(
    page: Browser, stack: Stack, path: str
) -> None:
    """At 360 px nothing scrolls sideways; every visible control has a label."""
    if path != "/login":
        login(page, MAINTAINER)
    page.resize("phone")
    page.open(path)
    width = page.script("return document.documentElement.scrollWidth")
    assert width <= 360, f"{path} is {width} px wide on a 360 px phone"
    unlabelled = page.script(
        """
        return Array.from(document.querySelectorAll('input, select, textarea'))
          .filter(c => c.type !== 'hidden' && c.type !== 'submit')
          .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
                       && !c.getAttribute('aria-labelledby'))
          .map(c => c.outerHTML.slice(0, 120));
        """
    )
    assert unlabelled == [], f"controls without a label on {path}"


def test_moving_between_pages_never_waits_for_a_connection(page: Browser, stack: Stack) -> None:
    """Page after page loads at once: a page left behind gives back its live connection.

    A browser opens at most 6 connections to one server: pages that kept their event
    stream open after being left would hold them all, and the next page would wait.
    """
    login(page, MAINTAINER)
    slow = []
    for path in ("/", f"/assets/{FAULTY_ID}", "/alerts", "/silences") * 3:
        started = time.monotonic()
        page.open(path)
        took = time.monotonic() - started
        if took > 5:
            slow.append(f"{path} took {took:.0f} s")
    assert slow == []
