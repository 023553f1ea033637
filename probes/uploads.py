"""Guards shared by every importer of user files: size, binary, encoding, JSON nesting.

Nothing uploaded is executed or unpickled; text is decoded strictly and JSON nesting is measured before
`json.loads` (which recurses and would raise RecursionError on a JSON bomb).
"""

from __future__ import annotations

MAX_JSON_DEPTH = 16  # our formats nest at most 3 deep; deeper input is refused before parsing


class UploadError(ValueError):
    """A user file that cannot be read; the message names the file and what is wrong."""


def limit_text(max_bytes: int) -> str:
    return f"{max_bytes / 2**20:.0f} MB" if max_bytes >= 2**20 else f"{max_bytes / 2**10:.0f} KB"


def decode_upload(data: bytes, filename: str, max_bytes: int, error_type: type[ValueError] = UploadError) -> str:
    """Bytes to text, refusing oversize, empty, binary (NUL bytes) and non-UTF-8 input with one clear message."""
    if len(data) > max_bytes:
        raise error_type(f"{filename} is {len(data) / 2**20:.1f} MB; the limit is {limit_text(max_bytes)}.")
    if not data.strip():
        raise error_type(f"{filename} is empty.")
    if b"\x00" in data:
        raise error_type(f"{filename} looks like a binary file (it contains NUL bytes); upload UTF-8 text.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise error_type(f"{filename} is not UTF-8 text (invalid byte at offset {error.start}).") from None


def json_depth(text: str) -> int:
    """Deepest bracket nesting outside strings (checked before json.loads, which recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
