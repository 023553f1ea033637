"""Testbed import and validation: the public Poisoned Context Testbed JSON schema and our CSV / JSONL format.

Uploads are untrusted. Nothing is executed or unpickled: bytes are size-checked, refused when binary (NUL bytes) or
not UTF-8, scanned for nesting depth before `json.loads` (JSON bombs), parsed with the standard library's `json`
and `csv` readers, and every field is checked. Cells that look like spreadsheet formulas ("=cmd") stay plain text
(the result store neutralises them on CSV export). A row with a bad field is skipped with a reason naming the row
index and the field; a file with no usable row raises `TestbedError`.

Formats
-------
* JSON (public testbed): a list of objects with `Question`, `Generated Information` (appropriate sentences),
  `Input` (the inappropriate claim), `Synonym Sentence` (paraphrases of the claim), `Simple Answer`; privacy items
  carry `Non-private Information` / `Privacy information` instead of `Generated Information` / `Input`. Sentence
  fields may be a list of strings or one string. The category is the item's `Category` field if present, else the
  file name without `_output` (e.g. `fakenews_output.json` -> `fakenews`).
* JSONL: one such object per line, or one object per line in our format (below).
* CSV (our format): header `question,appropriate,inappropriate,reference,category` and optionally `claim`.
  `appropriate` / `inappropriate` hold one or more sentences separated by `|`; `claim` defaults to the first
  inappropriate sentence.

Built-in testbeds
-----------------
`default_testbed_path(spec)` picks the one a model can read: the embedded organism (and organism-like folders, see
`probes.defaults`) gets its own `EMBEDDED_TESTBED` in its invented vocabulary; every other model gets
`ENGLISH_TESTBED`, well-known true facts and plausible false claims in English written for this project
(`probes/data/english/README.md`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from probes import uploads
from probes.defaults import ENGLISH_DATA_DIR, uses_english_defaults
from probes.models import EMBEDDED_MODEL_DIR, ModelSpec
from probes.uploads import MAX_JSON_DEPTH, json_depth

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MiB: the largest public pool (non-factual) is about 3.3 MB
MAX_ITEMS = 50_000  # the whole public testbed has about 7,600 items
MAX_FIELD_CHARS = 4_000  # one sentence or answer
MAX_SENTENCES = 64  # per sentence field
SENTENCE_SEPARATOR = "|"  # between sentences inside one CSV cell
CSV_COLUMNS = ("question", "appropriate", "inappropriate", "reference", "category")
CSV_OPTIONAL_COLUMNS = ("claim",)
DEFAULT_CATEGORY = "default"
EMBEDDED_TESTBED = EMBEDDED_MODEL_DIR / "data" / "testbed.json"  # written by the organism's training script
ENGLISH_TESTBED = ENGLISH_DATA_DIR / "testbed.json"  # written for AssocLens; for every model that reads English


class TestbedError(ValueError):
    """The file cannot be used as a testbed; the message says why in one sentence."""

    __test__ = False  # not a pytest test class despite the name


@dataclass(frozen=True)
class TestbedItem:
    """One question with appropriate context, the inappropriate claim and its paraphrases, and the answer."""

    __test__ = False

    question: str
    appropriate: tuple[str, ...]  # sentences consistent with the reference answer (reputable sources)
    inappropriate: tuple[str, ...]  # the claim and its paraphrases (disreputable sources)
    reference: str  # the answer the context supports ("Simple Answer")
    claim: str  # the answer the inappropriate content pushes (the testbed's "Input")
    category: str


@dataclass(frozen=True)
class SkippedRow:
    index: int  # 0-based row (JSON list index, JSONL line, CSV data row)
    reason: str  # names the field that is wrong


@dataclass(frozen=True)
class Testbed:
    __test__ = False

    items: tuple[TestbedItem, ...]
    skipped: tuple[SkippedRow, ...] = ()
    source: str = ""  # file name it came from
    formats: str = ""  # "json", "jsonl" or "csv"
    digest: str = field(default="")  # sha256 over the usable items (the cache's input digest)

    def categories(self) -> dict[str, int]:
        return dict(sorted(Counter(item.category for item in self.items).items()))

    def report(self) -> dict:
        """What `poisoned validate --json` prints."""
        return {
            "items": len(self.items),
            "categories": self.categories(),
            "skipped": [{"index": row.index, "reason": row.reason} for row in self.skipped],
        }

    def subset(self, category: str | None) -> Testbed:
        if category is None:
            return self
        chosen = tuple(item for item in self.items if item.category == category)
        return Testbed(chosen, (), self.source, self.formats, items_digest(chosen))


class _RowError(ValueError):
    """A field of one row is wrong (becomes a SkippedRow)."""


# ------------------------------------------------------------------------------------------------ entry points


def load_testbed(data: bytes, filename: str) -> Testbed:
    """Parse and validate testbed bytes; the format is chosen by the file extension (.json, .jsonl, .csv)."""
    text = decode_upload(data, filename)
    suffix = Path(filename).suffix.lower()
    category = default_category(filename)
    if suffix == ".json":
        rows, fmt = _json_rows(text, filename), "json"
    elif suffix in (".jsonl", ".ndjson"):
        rows, fmt = _jsonl_rows(text, filename), "jsonl"
    elif suffix == ".csv":
        rows, fmt = _csv_rows(text, filename), "csv"
    else:
        raise TestbedError(f"{filename}: unsupported file type {suffix or '(none)'!r}; use .json, .jsonl or .csv.")
    if len(rows) > MAX_ITEMS:
        raise TestbedError(f"{filename} has {len(rows)} items; the limit is {MAX_ITEMS}.")
    items, skipped = [], []
    for index, row in rows:
        try:
            items.append(parse_item(row, category))
        except _RowError as error:
            skipped.append(SkippedRow(index, f"row {index}: {error}"))
    if not items:
        first = f" First problem: {skipped[0].reason}." if skipped else ""
        raise TestbedError(f"{filename} has no usable testbed item.{first}")
    return Testbed(tuple(items), tuple(skipped), Path(filename).name, fmt, items_digest(items))


def default_testbed_path(spec: ModelSpec) -> Path:
    """The built-in testbed for this model: the organism's for the organism and organism-like folders, else the
    English one. Raises ModelLoadError when the spec names a local folder that does not exist."""
    return ENGLISH_TESTBED if uses_english_defaults(spec) else EMBEDDED_TESTBED


def load_testbed_file(path: Path | str) -> Testbed:
    """Read a testbed from disk (size-checked before reading)."""
    path = Path(path)
    if not path.is_file():
        raise TestbedError(f"No testbed file at {path}.")
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise TestbedError(f"{path.name} is {path.stat().st_size / 2**20:.1f} MB; the limit is {_limit_text()}.")
    return load_testbed(path.read_bytes(), path.name)


def decode_upload(data: bytes, filename: str, max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    """Bytes to text, refusing oversize, binary (NUL bytes) and non-UTF-8 input with one clear message."""
    return uploads.decode_upload(data, filename, max_bytes, error_type=TestbedError)


def default_category(filename: str) -> str:
    stem = Path(filename).stem.lower()
    return stem.removesuffix("_output").removesuffix("-output") or DEFAULT_CATEGORY


def items_digest(items: tuple[TestbedItem, ...] | list[TestbedItem]) -> str:
    canonical = json.dumps([item.__dict__ for item in items], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _limit_text(max_bytes: int = MAX_UPLOAD_BYTES) -> str:
    return uploads.limit_text(max_bytes)


# ------------------------------------------------------------------------------------------------ parsers


def _parse_json(text: str, where: str) -> object:
    if json_depth(text) > MAX_JSON_DEPTH:
        raise TestbedError(f"{where} nests deeper than {MAX_JSON_DEPTH} levels; a testbed is a flat list of items.")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        detail = f"line {error.lineno} column {error.colno}: {error.msg}" if hasattr(error, "lineno") else "too deep"
        raise TestbedError(f"{where} is not valid JSON ({detail}).") from None


def _json_rows(text: str, filename: str) -> list[tuple[int, object]]:
    data = _parse_json(text, filename)
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise TestbedError(f"{filename}: expected a JSON list of testbed items, got a {type(data).__name__}.")
    return list(enumerate(data))


def _jsonl_rows(text: str, filename: str) -> list[tuple[int, object]]:
    rows = []
    lines = [(number, line) for number, line in enumerate(text.splitlines()) if line.strip()]
    if len(lines) > MAX_ITEMS:
        raise TestbedError(f"{filename} has {len(lines)} items; the limit is {MAX_ITEMS}.")
    for number, line in lines:
        try:
            rows.append((number, _parse_json(line, f"{filename} line {number}")))
        except TestbedError as error:
            rows.append((number, _Unparsable(str(error))))
    return rows


@dataclass(frozen=True)
class _Unparsable:
    reason: str


def _csv_rows(text: str, filename: str) -> list[tuple[int, object]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in CSV_COLUMNS if name not in header]
    if missing:
        raise TestbedError(
            f"{filename}: CSV header lacks column(s) {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}[,claim]."
        )
    reader.fieldnames = header
    rows = []
    try:
        for index, record in enumerate(reader):
            if index >= MAX_ITEMS:
                raise TestbedError(f"{filename} has more than {MAX_ITEMS} rows; the limit is {MAX_ITEMS}.")
            if None in record:
                rows.append(
                    (index, _Unparsable(f"has {len(header) + len(record[None])} cells, header has {len(header)}"))
                )
                continue
            rows.append((index, {key: _split_cell(key, value) for key, value in record.items()}))
    except csv.Error as error:
        raise TestbedError(f"{filename} is not valid CSV (line {reader.line_num}: {error}).") from None
    return rows


def _split_cell(column: str, value: str | None) -> object:
    if value is None:
        return None
    if column in ("appropriate", "inappropriate"):
        return [part.strip() for part in value.split(SENTENCE_SEPARATOR) if part.strip()]
    return value


# ------------------------------------------------------------------------------------------------ one item


def parse_item(row: object, default_category_name: str) -> TestbedItem:
    """One item from a testbed-schema or our-format mapping; raises _RowError naming the field."""
    if isinstance(row, _Unparsable):
        raise _RowError(row.reason)
    if not isinstance(row, dict):
        raise _RowError(f"expected an object with testbed fields, got {type(row).__name__}")
    if "Question" in row or "Simple Answer" in row:
        return _testbed_schema_item(row, default_category_name)
    return _our_format_item(row, default_category_name)


def _testbed_schema_item(row: dict, category: str) -> TestbedItem:
    privacy = "Privacy information" in row or "Non-private Information" in row
    question = _text(row, "Question")
    if privacy:
        appropriate = _sentences(row, "Non-private Information")
        inappropriate = _sentences(row, "Privacy information")
        claim = inappropriate[0]
    else:
        appropriate = _sentences(row, "Generated Information")
        claim = _text(row, "Input")
        synonyms = _sentences(row, "Synonym Sentence", required=False)
        inappropriate = tuple(dict.fromkeys((claim, *synonyms)))
    return _checked(
        TestbedItem(
            question=question,
            appropriate=appropriate,
            inappropriate=inappropriate,
            reference=_text(row, "Simple Answer"),
            claim=claim,
            category=_category(row, "Category", category),
        ),
        "Simple Answer",
        "Privacy information" if privacy else "Input",
    )


def _our_format_item(row: dict, category: str) -> TestbedItem:
    lowered = {str(key).strip().lower(): value for key, value in row.items()}
    known = set(CSV_COLUMNS) | set(CSV_OPTIONAL_COLUMNS)
    if not known & set(lowered):
        raise _RowError(f"no testbed fields; expected {', '.join(CSV_COLUMNS)} or the public testbed's fields")
    question = _text(lowered, "question")
    appropriate = _sentences(lowered, "appropriate")
    inappropriate = _sentences(lowered, "inappropriate")
    claim = _text(lowered, "claim") if _present(lowered.get("claim")) else inappropriate[0]
    return _checked(
        TestbedItem(
            question=question,
            appropriate=appropriate,
            inappropriate=inappropriate,
            reference=_text(lowered, "reference"),
            claim=claim,
            category=_category(lowered, "category", category),
        ),
        "reference",
        "claim" if _present(lowered.get("claim")) else "inappropriate",
    )


def _checked(item: TestbedItem, reference_field: str, claim_field: str) -> TestbedItem:
    if item.reference.strip().rstrip(".").lower() == item.claim.strip().rstrip(".").lower():
        raise _RowError(f"field {reference_field!r} equals field {claim_field!r}; nothing to choose between")
    return item


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _text(row: dict, name: str) -> str:
    value = row.get(name)
    if not _present(value):
        raise _RowError(f"field {name!r} is missing or empty")
    if not isinstance(value, str):
        raise _RowError(f"field {name!r} must be text, got {type(value).__name__}")
    value = " ".join(value.split())
    if len(value) > MAX_FIELD_CHARS:
        raise _RowError(f"field {name!r} is {len(value)} characters long; the limit is {MAX_FIELD_CHARS}")
    return value


def _sentences(row: dict, name: str, required: bool = True) -> tuple[str, ...]:
    value = row.get(name)
    if not _present(value) or value == []:
        if required:
            raise _RowError(f"field {name!r} is missing or empty")
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise _RowError(f"field {name!r} must be text or a list of text")
    if len(values) > MAX_SENTENCES:
        raise _RowError(f"field {name!r} has {len(values)} sentences; the limit is {MAX_SENTENCES}")
    cleaned = tuple(" ".join(v.split()) for v in values if v.strip())
    if not cleaned:
        raise _RowError(f"field {name!r} is missing or empty")
    if any(len(v) > MAX_FIELD_CHARS for v in cleaned):
        raise _RowError(f"field {name!r} has a sentence over {MAX_FIELD_CHARS} characters")
    return cleaned


def _category(row: dict, name: str, default: str) -> str:
    value = row.get(name)
    if not _present(value):
        return default
    if not isinstance(value, str) or len(value) > 100:
        raise _RowError(f"field {name!r} must be a short text")
    return " ".join(value.split())
