"""The website widget in a real browser (Debian's Chromium, driven by Playwright) against the real assistant."""

import re

import pytest
from playwright.sync_api import expect

from clinic_assistant import settings
from tests.browser import ANSWER_TIMEOUT_MS, Widget, axe_violations

# "yes" is understood only by the conversation that was just offered more about ketamine.
OPENER, FOLLOW_UP, FOLLOW_UP_ANSWER = "can ketamine help crps?", "yes", "2021 study"
SOCKET_IO_CLIENT = settings.PROJECT_DIR / "widget" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"

# Opens a raw socket.io connection from the page, as a script on a visitor's page could, and reports
# everything the server sent back while it replayed ``events`` (a list of [name, data]).
RAW_SOCKET = """async ({server, events, wait}) => {
  const socket = io(server, {transports: ['websocket'], reconnection: false});
  const got = {confirms: [], replies: [], errors: []};
  socket.on('session_confirm', (m) => got.confirms.push(m));
  socket.on('bot_uttered', (m) => got.replies.push(m));
  socket.on('error', (m) => got.errors.push(m && m.message));
  await new Promise((resolve, reject) => { socket.on('connect', resolve); socket.on('connect_error', reject); });
  for (const [name, data] of events) { socket.emit(name, data); await new Promise((r) => setTimeout(r, 150)); }
  await new Promise((r) => setTimeout(r, wait));
  got.connected = socket.connected;
  socket.disconnect();
  return got;
}"""


@pytest.fixture
def site(running_assistant) -> str:
    return running_assistant.web_url + "/"


@pytest.fixture
def new_widget(browser, site):
    """A new visitor (own browser context) on the demo page; contexts close after the test."""
    contexts = []

    def visit(**options) -> Widget:
        contexts.append(browser.new_context(**options))
        return Widget.visit(contexts[-1], site)

    yield visit
    for context in contexts:
        context.close()


@pytest.fixture
def widget(new_widget) -> Widget:
    return new_widget()


def raw_socket(widget: Widget, server: str, events: list, wait: int = 3000) -> dict:
    """Speak socket.io from the visitor's page directly, bypassing the widget."""
    widget.page.add_script_tag(path=str(SOCKET_IO_CLIENT))
    return widget.page.evaluate(RAW_SOCKET, {"server": server, "events": events, "wait": wait})


def test_a_visitor_asks_and_reads_the_answer(widget):
    expect(widget.panel).to_be_hidden()
    widget.screenshot("widget-closed")
    widget.open()
    expect(widget.input).to_be_focused()
    assert "swelling" in widget.ask("what are the symptoms of crps").lower()
    expect(widget.user_messages.last).to_contain_text("what are the symptoms of crps")


def test_a_quick_reply_shows_its_title_and_asks_its_question(widget):
    widget.open()
    assert "What would you like to know?" in widget.ask("hello")
    before = widget.bot_messages.count()
    widget.page.get_by_role("button", name="Symptoms", exact=True).click()
    assert "swelling" in widget.replies_after(before).lower()
    # The button's title is shown as what the visitor said; its payload is never shown.
    expect(widget.user_messages.last).to_contain_text("Symptoms")
    expect(widget.user_messages.last).not_to_contain_text("What are the symptoms of CRPS?")
    widget.screenshot("widget-open")


def test_a_reload_continues_the_same_conversation(widget):
    widget.open()
    widget.ask(OPENER)
    session = widget.session_id
    widget.page.reload()
    widget.wait_connected()
    assert widget.session_id == session
    expect(widget.panel).to_be_visible()
    expect(widget.user_messages.first).to_contain_text(OPENER)
    assert FOLLOW_UP_ANSWER in widget.ask(FOLLOW_UP)
    assert not any(key for key in widget.page.evaluate("Object.keys(localStorage)"))


def test_another_visitor_cannot_reach_the_conversation_even_with_its_session_id(new_widget, running_assistant):
    alice, mallory = new_widget(), new_widget(bypass_csp=True)  # Mallory runs her own script
    alice.open()
    alice.ask(OPENER)
    victim = alice.session_id
    alice_bubbles = alice.bot_messages.count()
    claims = [victim, f"{victim}.{'0' * 64}", {"session_id": victim}]
    for claim in claims:
        got = raw_socket(mallory, running_assistant.base_url, [
            ["session_request", {"session_token": claim} if isinstance(claim, str) else claim],
            ["user_uttered", {"message": FOLLOW_UP, "session_id": victim}],
        ])
        assert [c["session_id"] for c in got["confirms"]] != [victim] and got["confirms"], got
        # Mallory's "yes" lands in a fresh conversation, so it is not taken as Alice's answer to the offer.
        assert got["replies"] and FOLLOW_UP_ANSWER not in " ".join(r.get("text", "") for r in got["replies"])
    # Alice's tab received nothing of Mallory's, and her conversation holds only her own messages.
    alice.page.wait_for_timeout(1000)
    assert alice.bot_messages.count() == alice_bubbles
    said = [event["text"] for event in running_assistant.conversation_events(victim, "user")]
    assert said == [OPENER]
    expect(mallory.panel).to_be_hidden()
    mallory.open()
    assert OPENER not in mallory.log_text()


def test_the_widget_recovers_when_the_rasa_server_is_killed_and_restarted(widget, running_assistant):
    widget.open()
    widget.ask(OPENER)
    session = widget.session_id
    rasa = running_assistant.services["rasa"]
    rasa.process.kill()
    rasa.process.wait()
    expect(widget.root).to_have_attribute("data-state", "reconnecting", timeout=ANSWER_TIMEOUT_MS)
    # Typed while the server is down: kept, and sent once it is back.
    before = widget.bot_messages.count()
    widget.input.fill(FOLLOW_UP)
    widget.input.press("Enter")
    running_assistant.restart("rasa")
    expect(widget.root).to_have_attribute("data-state", "connected", timeout=60_000)
    assert widget.session_id == session
    assert FOLLOW_UP_ANSWER in widget.replies_after(before)


def test_the_open_widget_passes_a_wcag_21_aa_audit(new_widget):
    widget = new_widget(bypass_csp=True)  # the audit script is injected inline
    widget.open()
    widget.ask("hello")
    assert axe_violations(widget.page) == []


def test_a_narrow_screen_and_200_percent_zoom_keep_it_usable(new_widget):
    for name, viewport in [("widget-narrow", {"width": 320, "height": 640}), (None, {"width": 640, "height": 400})]:
        widget = new_widget(viewport=viewport, bypass_csp=True)  # 640x400 CSS pixels: a 1280x800 screen at 200% zoom
        widget.open()
        assert "swelling" in widget.ask("what are the symptoms of crps").lower()
        for control in (widget.input, widget.page.get_by_role("button", name="Send")):
            box = control.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (name, box)
            assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (name, box)
        assert axe_violations(widget.page) == []
        if name:
            widget.screenshot(name)


def tab_to(page, key: str, focused_is: str, presses: int) -> None:
    """Press ``key`` until the focused element matches the JavaScript test ``focused_is`` (on ``el``)."""
    for _ in range(presses):
        page.keyboard.press(key)
        if page.evaluate(f"(el => {focused_is})(document.activeElement)"):
            return
    pytest.fail(f"nothing matching {focused_is} is reachable with {key}")


def test_keyboard_alone_opens_sends_chooses_and_closes(widget):
    page = widget.page
    tab_to(page, "Tab", "el.getAttribute('aria-controls') === 'clinic-chat-panel'", presses=40)
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # focus is visible
    page.keyboard.press("Enter")
    expect(widget.input).to_be_focused()
    page.keyboard.type("hello")
    page.keyboard.press("Enter")
    expect(widget.quick_replies.first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
    tab_to(page, "Shift+Tab", "el.textContent.trim() === 'Treatments'", presses=10)
    before = widget.bot_messages.count()
    page.keyboard.press("Enter")
    assert "treat" in widget.replies_after(before).lower()
    expect(widget.input).to_be_focused()  # ready for the next question
    page.keyboard.press("Escape")
    expect(widget.panel).to_be_hidden()
    expect(widget.launcher).to_be_focused()


def test_clear_chat_starts_a_new_conversation(widget):
    widget.open()
    widget.ask(OPENER)
    session = widget.session_id
    widget.page.get_by_role("button", name="Clear chat").click()
    expect(widget.user_messages).to_have_count(0)
    widget.wait_connected()
    expect(widget.root).not_to_have_attribute("data-session-id", session)
    assert FOLLOW_UP_ANSWER not in widget.ask(FOLLOW_UP)


def test_html_from_either_side_is_shown_as_text(widget):
    widget.open()
    widget.page.evaluate("window.__injected = false")
    widget.ask('<img src=x onerror="window.__injected = true"><b>bold</b> 988lifeline.org javascript:alert(1)')
    expect(widget.user_messages.last).to_contain_text("<img src=x")
    assert widget.page.evaluate("window.__injected") is False
    assert widget.page.locator("#clinic-chat-log img, #clinic-chat-log b").count() == 0
    hrefs = widget.page.locator("#clinic-chat-log a").evaluate_all("links => links.map(a => [a.href, a.rel, a.target])")
    assert all(href.startswith("https://") and "noopener" in rel and target == "_blank" for href, rel, target in hrefs)


def test_a_flood_gets_a_notice_and_other_visitors_are_answered(new_widget):
    flooder, other = new_widget(), new_widget()
    flooder.open()
    for n in range(settings.WIDGET_MAX_MESSAGES_PER_MINUTE + 3):
        flooder.input.fill(f"what is crps {n}")
        flooder.input.press("Enter")
    expect(flooder.notices.last).to_contain_text("faster than I can answer", timeout=ANSWER_TIMEOUT_MS)
    other.open()
    assert "swelling" in other.ask("what are the symptoms of crps").lower()


def test_oversized_and_malformed_events_get_errors_and_the_connection_still_answers(new_widget, running_assistant):
    widget = new_widget(bypass_csp=True)
    events = [
        ["user_uttered", {"message": "before any session"}],
        ["session_request", "not an object"],
        ["user_uttered", {"message": "x" * 6000}],
        ["user_uttered", {"message": 42}],
        ["user_uttered", ["a", "list"]],
        ["user_uttered", None],
        ["no_such_event", {"message": "hi"}],
        ["user_uttered", {"message": "what are the symptoms of crps"}],
    ]
    got = raw_socket(widget, running_assistant.base_url, events, wait=5000)
    assert got["connected"] and len(got["confirms"]) == 1
    assert any(re.search("session_request first", e or "") for e in got["errors"])
    assert any(re.search("limited to", e or "") for e in got["errors"])
    assert sum('"message" string' in (e or "") for e in got["errors"]) == 3
    assert "swelling" in " ".join(r.get("text", "") for r in got["replies"]).lower()
    # The widget on the same page still works.
    widget.open()
    assert "swelling" in widget.ask("what are the symptoms of crps").lower()
