"""The clinic's article, split into its titled sections.

Answers name the sections their facts come from; tests use this to check
that each named section exists and that what an answer states is there.
"""

from functools import cache
from pathlib import Path
from typing import Dict

from clinic_assistant import settings

MAX_HEADING_LENGTH = 80


def _is_heading(line: str) -> bool:
    text = line.strip()
    return 0 < len(text) <= MAX_HEADING_LENGTH and text[-1] not in ".:,;" and not text.startswith("•")


@cache
def sections(path: Path = settings.ARTICLE_PATH) -> Dict[str, str]:
    """Section heading -> the section's text, in the article's order."""
    result: Dict[str, str] = {}
    heading = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if _is_heading(line):
            heading = line.strip()
            result.setdefault(heading, "")
        elif line.strip():
            result[heading] = (result.get(heading, "") + " " + line.strip()).strip()
    return result
