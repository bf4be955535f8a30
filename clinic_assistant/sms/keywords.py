"""Carrier keywords: opt-out, opt-in and help, matched as whole one-word messages in any case.

The words are Twilio's standard ones, which its own opt-out handling also acts on, so what this
channel records matches what Twilio will and won't deliver.
"""

from typing import Optional

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
OPT_IN = frozenset({"START", "UNSTOP"})
# "YES" re-subscribes only a number that has opted out; otherwise it is an answer like any other.
OPT_IN_WHEN_OPTED_OUT = frozenset({"YES"})
HELP = frozenset({"HELP", "INFO"})


def keyword_in(body: str, opted_out: bool) -> Optional[str]:
    """"stop", "start" or "help" when the whole message is one of their words, else None."""
    word = body.strip().rstrip(".!").upper()
    if word in OPT_OUT:
        return "stop"
    if word in OPT_IN or (opted_out and word in OPT_IN_WHEN_OPTED_OUT):
        return "start"
    if word in HELP:
        return "help"
    return None
