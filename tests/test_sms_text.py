"""Shaping the assistant's replies into SMS text: GSM-7, segment counts, markdown, choices, splitting."""

import re

import pytest

from clinic_assistant.sms.text import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    choice_number,
    is_gsm7,
    numbered_choices,
    plain_text,
    segments,
    shape_reply,
    to_gsm7,
)

CHOICES = ["What is CRPS?", "Symptoms", "Treatments"]
CHOICES_LINE = "Reply 1 for What is CRPS?, 2 for Symptoms or 3 for Treatments."


def words(text: str) -> str:
    return " ".join(text.split())


def long_answer() -> str:
    """About 1,600 characters of sentences in three paragraphs, as a long article answer would be."""
    sentences = [
        f"Point {number}: graded motor imagery, mirror therapy and gentle movement help many people with CRPS."
        if number % 2
        else f"Point {number}: ask your care team before changing any medicine, even when the pain eases."
        for number in range(1, 19)
    ]
    return "\n\n".join(" ".join(sentences[start : start + 6]) for start in (0, 6, 12))


# to_gsm7 and is_gsm7


def test_gsm7_alphabet_has_127_basic_and_9_extension_characters():
    assert len(GSM7_BASIC) == len(set(GSM7_BASIC)) == 127
    assert set(GSM7_EXTENDED) == set("^{}\\[~]|€\f")
    assert is_gsm7(GSM7_BASIC + GSM7_EXTENDED)


def test_curly_quotes_dashes_ellipsis_and_unicode_spaces_become_gsm7():
    text = "It‘s “fine” – really — 5 − 3… ‚low‛ „high‟\u00a0a\u2009b\u202fc • one 2×3"
    assert to_gsm7(text) == 'It\'s "fine" - really - 5 - 3... \'low\' "high" a b c - one 2x3'
    assert is_gsm7(to_gsm7(text))


def test_gsm7_accented_letters_are_kept():
    text = "é è ù ì ò Ç Ø ø Å å Æ æ ß É Ä Ö Ñ Ü ä ö ñ ü à £ ¥ § ¿ ¡ Δ Ω"
    assert to_gsm7(text) == text


def test_accented_letters_outside_gsm7_become_their_base_letter():
    assert to_gsm7("á í ó ú ç â ê ô ō È Á ł naïve") == "a i o u c a e o o E A l naive"


def test_decomposed_accents_are_recomposed_before_deciding():
    assert to_gsm7("cafe\u0301 jalapen\u0303o") == "café jalapeño"  # é and ñ exist in GSM-7 when composed


def test_emoji_and_cjk_stay_and_make_the_text_ucs2():
    assert to_gsm7("Thanks 😊 疼痛") == "Thanks 😊 疼痛"
    assert not is_gsm7(to_gsm7("Thanks 😊"))


def test_zero_width_characters_are_removed_but_emoji_joiners_kept():
    family = "👨\u200d👩\u200d👧"
    assert to_gsm7("pa\u200bin\ufeff re\u00adlief wo\u200drd") == "pain relief word"
    assert to_gsm7(f"Hi {family}") == f"Hi {family}"


def test_crlf_becomes_a_newline_and_tabs_spaces():
    assert to_gsm7("one\r\ntwo\tthree") == "one\ntwo three"


def test_spacing_accent_used_as_apostrophe_becomes_an_apostrophe():
    assert to_gsm7("don´t") == "don't"


# segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("a" * 158 + "[", 1),
        ("a" * 159 + "[", 2),
        ("a" * 151 + "€" + "a" * 152, 2),  # 305 septets: 153 + 152
        ("a" * 152 + "€" + "a" * 152, 3),  # 306 septets, but the escape pair cannot straddle segments 1 and 2
        ("ł" * 70, 1),
        ("ł" * 71, 2),
        ("ł" * 134, 2),
        ("ł" * 135, 3),
        ("😊" * 35, 1),  # 70 UTF-16 units
        ("😊" * 36, 2),
        ("a" * 69 + "😊", 2),  # one emoji turns a 70-character GSM text into 71 UCS-2 units
    ],
)
def test_segment_counts_at_the_boundaries(text, expected):
    assert segments(text) == expected


def test_one_curly_apostrophe_more_than_doubles_the_cost():
    straight = "It's " + "a" * 150
    assert segments(straight) == 1
    assert segments(straight.replace("'", "’")) == 3


# plain_text


def test_markdown_links_become_label_and_url():
    text = "Read [our CRPS leaflet](https://clinic.example/crps_leaflet) or <https://nhs.example/crps>."
    assert (
        plain_text(text) == "Read our CRPS leaflet (https://clinic.example/crps_leaflet) or https://nhs.example/crps."
    )


def test_link_whose_label_is_its_address_is_written_once():
    assert plain_text("See [clinic.example](https://clinic.example/).") == "See clinic.example."
    assert plain_text("See [https://x.example](https://x.example).") == "See https://x.example."


def test_emphasis_markers_are_removed():
    text = "**Rest** is __not__ enough: *keep moving* _gently_ and ***always*** pace yourself."
    assert plain_text(text) == "Rest is not enough: keep moving gently and always pace yourself."


def test_snake_case_arithmetic_and_urls_keep_their_underscores_and_stars():
    text = "Set max_dose_mg to 2*3 or 2**3, see **https://clinic.example/pain_relief_guide** and `__init__`."
    assert plain_text(text) == (
        "Set max_dose_mg to 2*3 or 2**3, see https://clinic.example/pain_relief_guide and __init__."
    )


def test_headings_code_bullets_and_blank_lines_are_made_plain():
    text = "## What helps ##\n\n\n\n* Use `mirror therapy`  \n+ Pace yourself\n```\ncode block\n```\n"
    assert plain_text(text) == "What helps\n\n- Use mirror therapy\n- Pace yourself\ncode block"


# numbered_choices


def test_numbered_choices_for_one_two_and_three_titles():
    assert numbered_choices(["Yes"]) == "Reply 1 for Yes."
    assert numbered_choices(["Yes", "No"]) == "Reply 1 for Yes or 2 for No."
    assert numbered_choices(CHOICES) == CHOICES_LINE


def test_numbered_choices_never_double_a_period():
    assert numbered_choices(["Symptoms", "Something else."]) == "Reply 1 for Symptoms or 2 for Something else."
    assert numbered_choices(["Is it CRPS?"]) == "Reply 1 for Is it CRPS?."


def test_numbered_choices_titles_are_made_plain_and_gsm7():
    assert numbered_choices(["**What’s** CRPS?", "Treatments\n– overview"]) == (
        "Reply 1 for What's CRPS? or 2 for Treatments - overview."
    )


def test_no_titles_give_no_choices():
    assert numbered_choices([]) == ""


# choice_number


@pytest.mark.parametrize(("body", "index"), [("2", 1), (" 2 ", 1), ("2.", 1), ("#2", 1), ("1!", 0), ("3)", 2)])
def test_choice_number_accepts_a_bare_number(body, index):
    assert choice_number(body, 3) == index


@pytest.mark.parametrize("body", ["0", "4", "10", "2 please", "twenty", "-1", "", "1.5", "#"])
def test_choice_number_rejects_anything_else(body):
    assert choice_number(body, 3) is None


def test_choice_number_reads_keycap_and_full_width_digits():
    assert choice_number("2\ufe0f\u20e3", 3) == 1
    assert choice_number("３", 3) == 2


def test_choice_number_without_choices_offered_is_none():
    assert choice_number("1", 0) is None


# shape_reply


def test_short_answer_with_buttons_is_one_message_ending_in_the_list():
    messages = shape_reply(["CRPS is a long-term pain condition, usually after an injury."], CHOICES)
    assert messages == [f"CRPS is a long-term pain condition, usually after an injury.\n{CHOICES_LINE}"]


def test_texts_are_joined_by_a_blank_line_and_made_plain():
    messages = shape_reply(["**Hello.**", "See [the leaflet](https://clinic.example/crps)."], [])
    assert messages == ["Hello.\n\nSee the leaflet (https://clinic.example/crps)."]


def test_empty_turn_gives_no_message():
    assert shape_reply([], []) == []
    assert shape_reply(["", "  "], []) == []


def test_buttons_alone_give_just_the_list():
    assert shape_reply([], CHOICES) == [CHOICES_LINE]


@pytest.mark.parametrize("max_segments", [2, 4])
def test_long_answer_splits_at_sentences_within_the_budget(max_segments):
    answer = long_answer()
    assert len(answer) > 1500
    messages = shape_reply([answer], CHOICES, max_segments)
    assert len(messages) > 1
    assert all(segments(message) <= max_segments for message in messages)
    assert all(message.endswith(".") and message.startswith("Point") for message in messages)
    assert [CHOICES_LINE in message for message in messages] == [False] * (len(messages) - 1) + [True]
    assert messages[-1].endswith(f"\n{CHOICES_LINE}")
    assert words(" ".join(messages)) == words(f"{answer} {CHOICES_LINE}")


def test_long_answer_prefers_paragraph_breaks():
    first, second = "First paragraph. " * 15, "Second paragraph. " * 15  # 255 and 270 characters
    messages = shape_reply([f"{first.strip()}\n\n{second.strip()}"], [], max_segments=2)
    assert messages == [first.strip(), second.strip()]


def test_sentence_longer_than_the_budget_splits_at_words():
    sentence = " ".join(f"word{number}" for number in range(200))
    messages = shape_reply([sentence], [], max_segments=1)
    assert all(segments(message) <= 1 for message in messages)
    assert all(re.fullmatch(r"word\d+( word\d+)*", message) for message in messages)
    assert words(" ".join(messages)) == sentence


def test_word_longer_than_the_budget_is_cut():
    url = "https://clinic.example/" + "a" * 400
    messages = shape_reply([url], [], max_segments=1)
    assert [len(message) for message in messages] == [160, 160, 103]  # each message is one 160-septet segment
    assert "".join(messages) == url


def test_ucs2_answer_splits_within_ucs2_segments():
    answer = " ".join(["Feel better soon 😊."] * 30)
    messages = shape_reply([answer], [], max_segments=2)
    assert len(messages) > 1
    assert all(segments(message) <= 2 for message in messages)
    assert words(" ".join(messages)) == words(answer)


def test_list_goes_alone_when_it_leaves_no_room_for_text():
    titles = [
        "Tell me about graded motor imagery, mirror therapy, desensitisation and pacing, "
        "and how long each of them usually takes to help with my CRPS pain?"
    ]
    assert len(numbered_choices(titles)) == 159  # one septet short of a full segment: not even "\nA" fits
    messages = shape_reply(["Some text here."], titles, max_segments=1)
    assert messages == ["Some text here.", numbered_choices(titles)]
    assert all(segments(message) <= 1 for message in messages)


def test_real_clinic_reply_with_a_curly_apostrophe_becomes_gsm7():
    reply = (
        "CRPS (complex regional pain syndrome) is a condition where pain doesn’t settle as an injury heals. "
        "It’s often felt as burning pain — with swelling, colour or temperature changes… "
        "Read more: [CRPS explained](https://clinic.example/crps)."
    )
    messages = shape_reply([reply], CHOICES)
    assert len(messages) == 1
    assert is_gsm7(messages[0])
    assert "doesn't settle" in messages[0] and "It's often" in messages[0]
    assert segments(messages[0]) == 2
