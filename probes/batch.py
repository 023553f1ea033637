"""Batch plans: a small TOML file naming a grid of probe runs, turned into wiring `Request`s (nothing runs here).

```toml
[[run]]
probe = "induction"                      # a registered probe (python -m probes batch --help lists them)
models = ["organism"]                    # Hugging Face names or local folders (not for probes with their own model)
revisions = ["step-250", "step-750"]     # optional; "final" is the model without a revision (the default)
device = "cpu"                           # optional: auto (default), cpu, cuda, mps
dtype = "auto"                           # optional
[run.config]                             # fields of the probe's config dataclass; the rest keep their defaults
seq_len = 16
```

Each `[[run]]` expands to models x revisions x configs (`configs = [{...}, {...}]` lists several configs instead of
one `[run.config]`), in that order; the plan's requests are the runs in file order. `poisoned` runs take an optional
`testbed = "path"` (default: the model's built-in testbed). Unknown keys, probes or config fields are one
`PlanError` naming them.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path

from probes import poisoned
from probes.induction.sweep import parse_revisions
from probes.models import ModelSpec
from probes.poisoned.testbed import default_testbed_path
from probes.wiring import REGISTRY, Request, no_inputs

PLAN_KEYS = {"run"}
RUN_KEYS = {"probe", "models", "revisions", "config", "configs", "device", "dtype", "trust_remote_code", "testbed"}
INPUT_PROBES = {poisoned.NAME}  # probes with inputs a plan can name (the testbed); the rest take none


class PlanError(ValueError):
    """A plan that cannot be run as written; the message names the run, key, probe or field."""


def plan_probes() -> list[str]:
    """The probes a plan can run: those whose config says everything, and the poisoned curve (testbed file)."""
    return sorted(name for name, probe in REGISTRY.items() if probe.digest_inputs is no_inputs or name in INPUT_PROBES)


def read_plan(path: str | Path) -> list[Request]:
    target = Path(path).expanduser()
    if not target.is_file():
        raise PlanError(f"No plan file at {target}.")
    try:
        data = tomllib.loads(target.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise PlanError(f"{target.name} is not valid TOML: {error}") from None
    return parse_plan(data, base=target.parent)


def parse_plan(data: dict, base: Path | None = None) -> list[Request]:
    """A parsed TOML plan -> its requests, in plan order."""
    unknown = sorted(set(data) - PLAN_KEYS)
    if unknown:
        raise PlanError(f"Unknown plan key {unknown[0]!r}; a plan is a list of [[run]] tables.")
    runs = data.get("run")
    if not isinstance(runs, list) or not runs or not all(isinstance(run, dict) for run in runs):
        raise PlanError('The plan has no [[run]] tables; add one, e.g. [[run]] probe = "induction".')
    return [request for number, run in enumerate(runs, start=1) for request in _requests(run, number, base)]


def _requests(run: dict, number: int, base: Path | None) -> list[Request]:
    where = f"[[run]] #{number}"
    unknown = sorted(set(run) - RUN_KEYS)
    if unknown:
        raise PlanError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(RUN_KEYS))}.")
    name = run.get("probe")
    if name not in plan_probes():
        raise PlanError(f"{where}: unknown probe {name!r}; a plan runs one of: {', '.join(plan_probes())}.")
    probe = REGISTRY[name]
    if "config" in run and "configs" in run:
        raise PlanError(f"{where}: give either [run.config] or configs = [...], not both.")
    tables = run["configs"] if "configs" in run else [run.get("config", {})]
    if not isinstance(tables, list) or not tables or not all(isinstance(table, dict) for table in tables):
        raise PlanError(f"{where}: configs must be a list of tables, e.g. configs = [{{seed = 0}}, {{seed = 1}}].")
    configs = [build_config(probe.config_type, table, where) for table in tables]
    if "testbed" in run and name not in INPUT_PROBES:
        raise PlanError(f"{where}: only {', '.join(sorted(INPUT_PROBES))} runs take a testbed.")
    if probe.own_model is not None:
        named = sorted({"models", "revisions", "device", "dtype", "trust_remote_code"} & set(run))
        if named:
            raise PlanError(f"{where}: {name} trains its own model; leave out {named[0]!r}.")
        return [Request(name, config) for config in configs]
    specs = _specs(run, where)
    requests = []
    for spec in specs:
        inputs = _testbed(run, spec, base, where) if name in INPUT_PROBES else None
        requests.extend(Request(name, config, spec, inputs) for config in configs)
    return requests


def _strings(run: dict, key: str, where: str) -> list[str]:
    value = run[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise PlanError(f'{where}: {key} must be a list of names, e.g. {key} = ["organism"].')
    return value


def _specs(run: dict, where: str) -> list[ModelSpec]:
    if "models" not in run:
        raise PlanError(f'{where}: {run["probe"]} needs models = [...] (e.g. models = ["organism"]).')
    models = _strings(run, "models", where)
    revisions = parse_revisions(",".join(_strings(run, "revisions", where))) if "revisions" in run else [None]
    placement = {key: run[key] for key in ("device", "dtype") if key in run}
    for key, value in placement.items():
        if not isinstance(value, str):
            raise PlanError(f'{where}: {key} must be a string (e.g. {key} = "auto").')
    trust = run.get("trust_remote_code", False)
    if not isinstance(trust, bool):
        raise PlanError(f"{where}: trust_remote_code must be true or false.")
    return [
        ModelSpec(model, revision, trust_remote_code=trust, **placement) for model in models for revision in revisions
    ]


def _testbed(run: dict, spec: ModelSpec, base: Path | None, where: str):
    from probes.poisoned import load_testbed_file

    if "testbed" in run:
        if not isinstance(run["testbed"], str):
            raise PlanError(f"{where}: testbed must be a file path.")
        path = Path(run["testbed"]).expanduser()
        path = path if path.is_absolute() or base is None else base / path
    else:
        path = default_testbed_path(spec)
    if not path.is_file():
        raise PlanError(f"{where}: no testbed file at {path}.")
    return load_testbed_file(path)


def build_config(config_type: type, table: dict, where: str = "plan") -> object:
    """A config dataclass from a TOML table: unknown fields are refused by name; lists become tuples where the
    field is a tuple; ints are accepted for float fields."""
    fields = {field.name: field for field in dataclasses.fields(config_type)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise PlanError(
            f"{where}: {config_type.__name__} has no field {unknown[0]!r}; its fields: {', '.join(fields)}."
        )
    hints = typing.get_type_hints(config_type)
    values = {name: _coerce(value, hints.get(name), f"{where}: {name}") for name, value in table.items()}
    try:
        return config_type(**values)
    except (TypeError, ValueError) as error:
        raise PlanError(f"{where}: {config_type.__name__}: {error}") from None


def _coerce(value: object, hint: object, where: str) -> object:
    """TOML value -> the field's type (tuple for tuple fields, float for float fields); a clear error otherwise."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, _union_type()) else (hint,)
    if value is None:
        return None
    for option in options:
        origin = typing.get_origin(option) or option
        if origin is tuple and isinstance(value, list):
            return tuple(value)
        if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if origin is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if origin in (str, bool) and isinstance(value, origin):
            return value
        if origin is dict and isinstance(value, dict):
            return value
    names = ", ".join(getattr(option, "__name__", str(option)) for option in options)
    raise PlanError(f"{where} takes {names}; got {value!r}.")


def _union_type() -> type:
    import types

    return types.UnionType


__all__ = ["PlanError", "build_config", "parse_plan", "plan_probes", "read_plan"]
