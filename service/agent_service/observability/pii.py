"""PII and secret masking applied to every log line before it is written.

Masks emails, phone numbers, payment card numbers (Luhn-checked, so ids and timestamps survive), US SSNs,
and credentials: API keys of common providers, bearer tokens, JWTs, and `key=value` secrets.
"""

from __future__ import annotations

import re

_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b((?:api[_-]?key|x-api-key|secret|password|passwd|token|authorization)\"?\s*[:=]\s*\"?)"
    r"(?!\[)[^\s\",;]+"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")
_KEYS = re.compile(
    r"\b(?:sk-ant-[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
    r"|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"
)
_KEY_MARKERS = ("sk-", "AKIA", "gh", "xox", "AIza", "eyJ")
_SECRET_WORDS = ("key", "secret", "passw", "token", "authorization")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
_PHONE = re.compile(
    r"(?<![\w+-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?![\w-])"
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if _luhn_valid(digits) else match.group(0)


def mask_pii(text: str) -> str:
    # Secrets first (they may contain digit runs or '@'), then the longest numeric patterns. Each pattern
    # runs only if a substring it needs is present: most log lines are then masked in a few microseconds.
    lowered = text.lower()
    if "bearer" in lowered:
        text = _BEARER.sub("Bearer [REDACTED]", text)
    if any(marker in text for marker in _KEY_MARKERS):
        text = _KEYS.sub("[REDACTED]", text)
    if any(word in lowered for word in _SECRET_WORDS):
        text = _SECRET_ASSIGNMENT.sub(r"\1[REDACTED]", text)
    if "@" in text:
        text = _EMAIL.sub("[EMAIL]", text)
    text = _CARD.sub(_mask_card, text)
    text = _SSN.sub("[SSN]", text)
    return _PHONE.sub("[PHONE]", text)
