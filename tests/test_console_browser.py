"""The staff console in a real browser (Debian's Chromium, Playwright) over the real assistant's conversations."""

import csv
import io
import re
import secrets
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from playwright.sync_api import Page, expect

from clinic_assistant.store.db import engine_for
from clinic_assistant.store.staff import create_user
from tests.browser import SCREENSHOTS_DIR

PASSWORD = secrets.token_urlsafe(16)
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def conversations(running_assistant) -> dict:
    """A normal question, a hostile message, then a crisis with a phone number left for staff: the newest
    conversation needing a human, so it tops the queue."""
    ids = {name: f"console-{name}-{uuid.uuid4().hex[:8]}" for name in ("question", "xss", "crisis")}
    running_assistant.say(ids["question"], "what are the symptoms of crps")
    running_assistant.say(ids["xss"], XSS)
    running_assistant.say(ids["crisis"], "i want to kill myself")
    running_assistant.say(ids["crisis"], "yes")
    running_assistant.say(ids["crisis"], "850-555-0142")
    return {name: running_assistant.conversation(sender) for name, sender in ids.items()}


@pytest.fixture(scope="module")
def staff(running_assistant, clinic_database) -> str:
    username = f"admin-{secrets.token_hex(3)}"
    create_user(engine_for(clinic_database.url), username, PASSWORD, "admin", None)
    return username


@pytest.fixture
def page(browser, running_assistant, conversations, staff) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    page.goto(running_assistant.console_url + "/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill(staff)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Conversations to review")).to_be_visible()
    yield page
    context.close()


def open_queue_until(page: Page, console_url: str, conversation_id: str) -> None:
    """The console indexes new conversations every half second here; reload until this one is listed."""
    for _ in range(40):
        page.goto(console_url + "/")
        if page.locator(f"a[href*='{conversation_id}']").count():
            return
        page.wait_for_timeout(500)
    pytest.fail(f"{conversation_id} never reached the queue")


def download_text(page: Page, link_name: str) -> str:
    with page.expect_download() as download:
        page.get_by_role("link", name=link_name).click()
    return Path(download.value.path()).read_text()


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS_DIR / f"{name}.png"), full_page=False)


def test_a_reviewer_works_the_crisis_at_the_top_of_the_queue(page, running_assistant, conversations, staff):
    crisis = conversations["crisis"]
    open_queue_until(page, running_assistant.console_url, crisis)
    first_row = page.locator("table.queue tbody tr").first
    expect(first_row).to_contain_text("Crisis")
    expect(first_row.locator("a").first).to_have_attribute("href", re.compile(crisis))
    shoot(page, "console-queue")

    first_row.locator("a").first.click()
    expect(page.get_by_role("heading", name=re.compile("Conversation"))).to_contain_text(crisis)
    expect(page.locator("main")).not_to_contain_text("555-0142")  # masked until revealed
    page.get_by_role("button", name="Reveal contact details").click()
    expect(page.locator("main")).to_contain_text(re.compile(r"555.?0142"))

    page.goto(f"{running_assistant.console_url}/audit")
    entry = page.locator("tr", has_text="reveal_contact").filter(has_text=crisis).first
    expect(entry).to_contain_text(staff)

    page.goto(f"{running_assistant.console_url}/conversations/{crisis}")
    page.get_by_label("New tag").fill("called-back")
    page.get_by_role("button", name="Add tag").click()
    page.get_by_role("button", name="Mark reviewed").click()
    expect(page.locator("main")).to_contain_text("called-back")
    expect(page.locator("main")).to_contain_text(f"Reviewed by {staff}")
    shoot(page, "console-transcript")

    page.goto(f"{running_assistant.console_url}/requests")
    rows = list(csv.DictReader(io.StringIO(download_text(page, "Export as CSV"))))
    assert any(row.get("conversation_id") == crisis for row in rows), rows[:3]


def test_a_correction_exports_as_nlu_yaml(page, running_assistant, conversations):
    question = conversations["question"]
    open_queue_until(page, running_assistant.console_url, question)
    page.goto(f"{running_assistant.console_url}/conversations/{question}")
    turn = page.locator("form.correction").first
    turn.locator("select").select_option("treatment/overview")
    turn.get_by_role("button", name="Save correction").click()
    page.goto(f"{running_assistant.console_url}/teaching")
    exported = yaml.safe_load(download_text(page, re.compile("Download the corrections")))
    examples = {item["intent"]: item["examples"] for item in exported["nlu"]}
    assert "- what are the symptoms of crps" in examples["treatment/overview"]


def test_patient_html_is_shown_as_text_everywhere(page, running_assistant, conversations):
    xss = conversations["xss"]
    open_queue_until(page, running_assistant.console_url, xss)
    expect(page.locator("table.queue")).to_contain_text("<script>")
    page.goto(f"{running_assistant.console_url}/conversations/{xss}")
    expect(page.locator("main")).to_contain_text("onerror=")
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img").count() == 0


def test_the_dashboard_draws_its_charts(page, running_assistant, conversations):
    open_queue_until(page, running_assistant.console_url, conversations["crisis"])
    page.goto(f"{running_assistant.console_url}/dashboard")
    expect(page.locator("svg[role=img]").first).to_be_visible()
    shoot(page, "console-dashboard")
