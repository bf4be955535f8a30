"""Drive the website widget in Debian's Chromium with Playwright, as a visitor would."""

import json
from pathlib import Path
from typing import List

from playwright.sync_api import Browser, BrowserContext, Page, expect

from clinic_assistant.settings import PROJECT_DIR

AXE_SCRIPT = PROJECT_DIR / "widget" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS_DIR = PROJECT_DIR / "docs" / "screenshots"
# As the machine's own browser checks run it: headless, and no calls to Google's services.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ANSWER_TIMEOUT_MS = 30_000


class Widget:
    """The chat widget on one page of one browser context (one visitor)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.root = page.locator("#clinic-chat")
        self.launcher = page.get_by_role("button", name="Chat with us")
        self.panel = page.locator("#clinic-chat-panel")
        self.input = page.locator("#clinic-chat-input")
        self.bot_messages = page.locator("#clinic-chat-log .clinic-chat__msg--bot")
        self.user_messages = page.locator("#clinic-chat-log .clinic-chat__msg--user")
        self.notices = page.locator("#clinic-chat-log .clinic-chat__msg--notice")
        self.quick_replies = page.locator(".clinic-chat__quick-reply")

    @classmethod
    def visit(cls, context: BrowserContext, url: str) -> "Widget":
        page = context.new_page()
        page.goto(url)
        widget = cls(page)
        widget.wait_connected()
        return widget

    def wait_connected(self) -> None:
        expect(self.root).to_have_attribute("data-state", "connected", timeout=ANSWER_TIMEOUT_MS)

    @property
    def session_id(self) -> str:
        return self.root.get_attribute("data-session-id") or ""

    def open(self) -> None:
        if not self.panel.is_visible():
            self.launcher.click()
        expect(self.panel).to_be_visible()

    def ask(self, text: str) -> str:
        """Type and send ``text``; the assistant's reply bubbles to it, joined."""
        before = self.bot_messages.count()
        self.input.fill(text)
        self.input.press("Enter")
        return self.replies_after(before)

    def replies_after(self, before: int) -> str:
        expect(self.bot_messages).not_to_have_count(before, timeout=ANSWER_TIMEOUT_MS)
        self.page.wait_for_timeout(500)  # the rest of the turn's bubbles
        return "\n".join(self.bot_texts()[before:])

    def bot_texts(self) -> List[str]:
        return self.bot_messages.all_inner_texts()

    def log_text(self) -> str:
        return self.page.locator("#clinic-chat-log").inner_text()

    def stored(self) -> dict:
        """What the widget keeps in this tab's sessionStorage."""
        return json.loads(self.page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))"))

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS_DIR / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


def axe_violations(page: Page) -> list:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"""
    )
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]} for v in result["violations"]
    ]


def new_browser(playwright, executable: str) -> Browser:  # noqa: ANN001 (Playwright's own type is private)
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
