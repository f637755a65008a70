"""Values that never reach storage, whatever key or shape carries them: face data and blobs.

scrub(value) walks properties or context and removes, at any depth:

- landmarks by key: any key naming them (landmarks, mesh, vertices, keypoints, ...);
- numeric payloads: a list of more than MAX_NUMBERS numbers, any list holding a list of
  numbers (points, at any depth), a list of point-like objects (only numbers inside), any
  object or list holding more than MAX_NUMBERS numbers that are most of its leaves;
- blobs: a data URI (`data:`), a string over BLOB_MIN_CHARS that is mostly base64/hex
  alphabet (an encoded image), any string over MAX_STRING_CHARS;
- encodings of the above: a string that parses as JSON (or is a list of numbers separated by
  commas/spaces) holding landmarks or a numeric payload.

What is removed is reported by path and reason; the rest keeps its JSON types.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Key fragments that name face geometry (matched in the lower-cased key).
LANDMARK_KEY_PARTS = ("landmark", "mesh", "vertices", "vertex", "keypoint")
MAX_NUMBERS = 16
MAX_STRING_CHARS = 2000
BLOB_MIN_CHARS = 200
# Share of a long string's characters in the base64/base64url/hex alphabet that marks a blob.
BLOB_ALPHABET_SHARE = 0.97
_BLOB_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_NUMERIC_TEXT = re.compile(r"^[\s\[\]{}(),;:\"'xyzXYZ0-9eE.+-]*$")

LANDMARKS = "landmark data (never stored)"
NUMBERS = "numeric arrays (face data is never stored)"
BLOB = "encoded binary data (images are never stored)"
TOO_LONG = f"strings over {MAX_STRING_CHARS} characters"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _landmark_key(key: Any) -> bool:
    return isinstance(key, str) and any(part in key.lower() for part in LANDMARK_KEY_PARTS)


def _leaves(value: Any) -> tuple[int, int]:
    """(numbers, all leaves) under value."""
    if isinstance(value, dict):
        pairs = [_leaves(v) for v in value.values()]
    elif isinstance(value, list):
        pairs = [_leaves(v) for v in value]
    else:
        return (1 if _is_number(value) else 0), 1
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def _numeric_payload(value: Any) -> bool:
    """Numbers shaped like face geometry: long numeric lists, points, number-heavy objects."""
    if isinstance(value, list):
        if any(isinstance(v, list) and _leaves(v)[0] for v in value):
            return True  # a list of lists of numbers: points, a matrix, a mesh
        if len(value) >= 2 and all(
            isinstance(v, dict) and v and all(_is_number(x) for x in v.values()) for v in value
        ):
            return True  # [{"x":…, "y":…}, …]
    if isinstance(value, dict | list):
        numbers, leaves = _leaves(value)
        return numbers > MAX_NUMBERS and numbers * 4 >= leaves * 3
    return False


def _has_landmark_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_landmark_key(k) or _has_landmark_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_landmark_key(v) for v in value)
    return False


def _string_reason(text: str) -> str | None:
    stripped = text.strip()
    if stripped[:5].lower() == "data:":
        return BLOB
    if len(text) > MAX_STRING_CHARS:
        return TOO_LONG
    if len(stripped) >= BLOB_MIN_CHARS:
        compact = "".join(stripped.split())
        # Base64 wrapped at 76 columns has ~1 line break per 77 characters, prose far more.
        few_breaks = len(stripped) - len(compact) <= len(stripped) // 60 + 1
        in_alphabet = sum(ch in _BLOB_CHARS for ch in compact)
        if few_breaks and compact and in_alphabet >= BLOB_ALPHABET_SHARE * len(compact):
            return BLOB
    if stripped[:1] in ("[", "{"):
        try:
            parsed = json.loads(stripped)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict | list):
            if _has_landmark_key(parsed):
                return LANDMARKS
            if _numeric_payload(parsed) or (
                isinstance(parsed, list)
                and parsed
                and all(_is_number(v) for v in parsed)
                and len(parsed) > MAX_NUMBERS
            ):
                return NUMBERS
    if _NUMERIC_TEXT.match(stripped) and len(_NUMBER.findall(stripped)) > MAX_NUMBERS:
        return NUMBERS  # "0.51,0.42,0.01 0.52,…": a mesh written out as text
    return None


def _reason(key: Any, value: Any) -> str | None:
    if _landmark_key(key) or _has_landmark_key(value):
        return LANDMARKS
    if isinstance(value, str):
        return _string_reason(value)
    if isinstance(value, list) and len(value) > MAX_NUMBERS and all(_is_number(v) for v in value):
        return NUMBERS
    if _numeric_payload(value):
        return NUMBERS
    return None


def scrub(value: Any, path: str, removed: dict[str, list[str]]) -> Any:
    """value without what must never be stored; removed[reason] gets each removed path."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            p = f"{path}.{k}"
            why = _reason(k, v)
            if why is not None:
                removed.setdefault(why, []).append(p)
                continue
            out[k] = scrub(v, p, removed)
        return out
    if isinstance(value, list):
        items = []
        for i, v in enumerate(value):
            p = f"{path}[{i}]"
            why = _reason(None, v)
            if why is not None:
                removed.setdefault(why, []).append(p)
                continue
            items.append(scrub(v, p, removed))
        return items
    return value


def warnings_for(removed: dict[str, list[str]]) -> list[str]:
    """One warning per reason, naming the paths removed."""
    return [f"removed {why}: {', '.join(paths)}" for why, paths in removed.items()]
