"""What the SMS channel itself texts (not the assistant): keyword answers and notices.

Written in plain GSM-7 characters (straight apostrophes), so each stays one or two segments.
"""

from clinic_assistant.clinic_profile import ClinicProfile

MEDIA = (
    "Please don't send photos or medical records by text: texts aren't private enough for them, "
    "so we didn't keep it. You can ask your question in words."
)
TOO_LONG = "That message is too long for me to read. Could you send a shorter one, up to 1600 characters?"
EMPTY = "I didn't get any text. What would you like to know about CRPS or its treatment?"
FAILED = "Sorry, something went wrong on our side. Please try again in a minute. {contact}"


def stopped(clinic: ClinicProfile) -> str:
    return (
        f"You're unsubscribed from {clinic.title} texts and won't get any more messages. "
        "Reply START to resubscribe. In an emergency call 911."
    )


def started(clinic: ClinicProfile) -> str:
    return f"You're resubscribed to {clinic.title} texts. Reply HELP for help, STOP to opt out."


def help_text(clinic: ClinicProfile) -> str:
    return (
        f"{clinic.title} automated assistant: general information about CRPS and its treatment. "
        f"{clinic.contact_line()} Msg & data rates may apply. Reply STOP to opt out. "
        "In an emergency call 911; in crisis text or call 988."
    )
