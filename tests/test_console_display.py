"""What staff see of visitor-supplied text (``console/display.py``): control, bidi and invisible characters shown as
``⟨U+XXXX⟩``, so a sender id or a message cannot reorder, hide or fake what is around it; everything else as is."""

from datetime import datetime, timezone

import pytest

from clinic_assistant.console.display import visible
from clinic_assistant.store import review


@pytest.mark.parametrize(
    "text, shown",
    [
        ("evil\u202egnp.exe", "evil⟨U+202E⟩gnp.exe"),  # right-to-left override
        ("a\u202ab\u202bc\u202cd\u202de", "a⟨U+202A⟩b⟨U+202B⟩c⟨U+202C⟩d⟨U+202D⟩e"),  # embeddings, pop, LTR override
        ("\u2066x\u2067y\u2068z\u2069", "⟨U+2066⟩x⟨U+2067⟩y⟨U+2068⟩z⟨U+2069⟩"),  # isolates
        ("cut\x00here", "cut⟨U+0000⟩here"),
        ("\x1b[31mred\x07\r", "⟨U+001B⟩[31mred⟨U+0007⟩⟨U+000D⟩"),
        ("adm\u200bin adm\u200din \ufeffx \u00adx", "adm⟨U+200B⟩in adm⟨U+200D⟩in ⟨U+FEFF⟩x ⟨U+00AD⟩x"),
        ("line\u2028para\u2029", "line⟨U+2028⟩para⟨U+2029⟩"),
        ("\u200fmark\u200e\u061c", "⟨U+200F⟩mark⟨U+200E⟩⟨U+061C⟩"),
        ("tag\U000e0041", "tag⟨U+E0041⟩"),  # an invisible tag character
    ],
)
def test_control_bidi_and_invisible_characters_are_shown(text, shown):
    assert visible(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "María López, 850-555-0142, pain 9/10 <b>&amp;</b>",
        "two lines\nand a\ttab",
        "مرحبا بالعالم and שלום: right-to-left scripts read as written",
        "\U0001f469\u200d\u2695\ufe0f \u2764\ufe0f\u200d\U0001f525",  # emoji sequences joined by ZWJ
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # a Persian word with its zero-width non-joiner
        "non\u00a0breaking and em\u2003space",
    ],
)
def test_ordinary_text_is_left_as_it_is(text):
    assert visible(text) == text


def test_values_of_any_type_become_text():
    assert visible(None) == "" and visible(42) == "42"


def test_the_csv_exports_show_them_too():
    entry = review.AuditEntry(1, datetime(2031, 3, 4, tzinfo=timezone.utc), "system", "view", "a\u202eb", "")
    exported = review.audit_csv([entry])
    assert "a⟨U+202E⟩b" in exported and "\u202e" not in exported
