"""Reading HTML form fields: every field arrives as text, while the API's models take strict
numbers (issue 15). A field that is a whole number (commas, full-width digits and spaces are
accepted, as staff type them) becomes an int; anything else stays as it came, so the model or
the page refuses it by name with a 4xx and nothing is written."""

from __future__ import annotations

import re
import unicodedata

WHOLE = re.compile(r"-?\d{1,15}")


def as_int(value: str | None) -> int | str | None:
    if value is None:
        return None
    v = unicodedata.normalize("NFKC", value).strip().replace(",", "")
    if not v:
        return None
    return int(v) if WHOLE.fullmatch(v) else value
