"""Reproducible run bundles: `python -m probes cache bundle RUN_ID --out DIR [--zip]` and
`python -m probes cache reproduce RUN_ID_OR_BUNDLE` (both registered by probes/cli/cache.py).

A bundle is one folder `<probe>-<12-char run id>/` (layout: probes/bundle.py) with the run's tables, figures,
provenance, inputs, the command that recomputes it and a manifest of sha256 digests. `reproduce` rebuilds the run's
request (config, model, inputs) from the store or a verified bundle, checks that it keys the same run id, recomputes
it into a throwaway store in a temporary folder (the stored run is never touched) and compares every table.

An RW-Steering mitigation's held-out curves (before, and after on the tuned revision) read the held-out split of a
testbed: their inputs are found by splitting each candidate testbed as the stored (or bundled, inputs/split.json)
fine-tuning run did and comparing digests; the after-curve reproduces only where its tuned folder exists.

The pure parts (command lines, table comparison, manifest) live in probes/bundle.py; this module reads the store.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cache import ResultStore, StoredRun, digest_json
from cache.store import neutralise_formulas
from probes import bundle as pure
from probes import wiring
from probes.bundle import BundleError
from probes.cli import UserError, store_from_args, tqdm_progress
from probes.models import (
    LOCAL_REVISIONS_DIR,
    TUNED_DIR_ENV,
    ModelLoadError,
    ModelSpec,
    load_tokenizer,
    model_identity,
    tuned_base_dir,
    tuned_folder,
)
from probes.wiring import REGISTRY, Request

MIN_PREFIX = 8
OWN_DTYPES = ("float32", "float16", "bfloat16")
BUNDLE_VECTOR = "inputs/vector.safetensors"
BUNDLE_VECTOR_JSON = "inputs/vector.json"
BUNDLE_VECTOR_RUN = "inputs/vector_run.json"
TESTBED_FOLDER = "inputs/testbed/"
BUNDLE_EXPLORE = "inputs/explore.json"
BUNDLE_VOCABULARY = "inputs/vocabulary.json"
BUNDLE_SPLIT = "inputs/split.json"
RUN_FILES = "files/"
EXPLORE_PROBE = "poisoned-explore"
LADDER_PROBE = "steering.ladder"
TUNING_PROBE = "poisoned-rw-steering"


def register(subparsers: argparse._SubParsersAction) -> None:
    """The bundle commands are `cache bundle` and `cache reproduce` (probes/cli/cache.py adds them)."""


# --- what a run is, from the store or from a bundle -------------------------------------------------------


@dataclass
class RunInfo:
    """The parts of a stored run that rebuilding and comparing need (from a `StoredRun` or a bundle)."""

    run_id: str
    probe: str
    model_id: str
    revision: str | None
    config: dict
    input_digest: str | None
    summary: dict
    device: str | None
    dtype: str | None
    tables: dict[str, pd.DataFrame]
    files: dict[str, bytes] = field(default_factory=dict)  # the run's stored files (e.g. explore inputs)

    @classmethod
    def of(cls, run: StoredRun) -> RunInfo:
        return cls(run.run_id, run.probe, run.model_id, run.revision, run.config, run.input_digest, run.summary,
                   run.device, run.dtype, run.tables, dict(run.files))  # fmt: skip


@dataclass
class Rebuilt:
    """The run's request rebuilt (or None and why), its input files for the bundle, and its command line."""

    request: Request | None
    problem: str | None = None  # why the run cannot be recomputed here
    input_files: dict[str, bytes] = field(default_factory=dict)
    inputs_note: str = ""
    extra_args: list[str] | None = field(default_factory=list)  # input arguments of the command; None: none fits
    command_note: str | None = None
    content_digest: str | None = None  # the model folder's content digest, when the rebuilt key proves it
    argv: list[str] | None = None  # the whole command when it is another probe's (a mitigation's held-out curves)
    note: str | None = None  # what that command does besides recomputing this run (else the probe's command_note)
    model_missing: bool = False  # the inputs are known; only the run's model is not here (the command still fits)


def resolve_run_id(store: ResultStore, prefix: str) -> str:
    """A full run id, or a unique prefix of at least 8 characters."""
    token = prefix.strip().lower()
    if len(token) < MIN_PREFIX:
        raise UserError(f"Give the run id in full or its first {MIN_PREFIX} or more characters; got {prefix!r}.")
    ids = [run_id for run_id in store.list_runs()["run_id"] if run_id.startswith(token)]
    if len(ids) != 1:
        raise UserError(
            f"No stored run matches {prefix!r} (list them with: python -m probes cache list)."
            if not ids
            else f"{prefix!r} matches {len(ids)} runs; give more characters of the run id."
        )
    return ids[0]


def model_spec(info: RunInfo) -> ModelSpec | None:
    """The model the run names, placed as it was where that is possible (CPU runs on the CPU)."""
    if REGISTRY[info.probe].own_model is not None:
        return None
    device = "cpu" if (info.device or "").startswith("cpu") else "auto"
    dtype = info.dtype if info.dtype in OWN_DTYPES and device == "cpu" else "auto"
    return ModelSpec(name=info.model_id, revision=info.revision, device=device, dtype=dtype)


def _tuples(value: object) -> object:
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


def config_object(probe: str, config: dict) -> object:
    entry = REGISTRY.get(probe)
    if entry is None:
        raise UserError(f"The run is of an unknown probe {probe!r}; this version knows {', '.join(sorted(REGISTRY))}.")
    try:
        return entry.config_type(**{name: _tuples(value) for name, value in config.items()})
    except TypeError as error:
        raise UserError(f"The run's stored {probe} config does not fit this version's ({error}).") from None


# --- inputs ---------------------------------------------------------------------------------------------


def _no_input_probe(probe: str) -> bool:
    return REGISTRY[probe].digest_inputs is wiring.no_inputs


def _run_categories(info: RunInfo) -> list[str]:
    """The testbed categories a poisoned run scored (a testbed file's items default to its file name's stem)."""
    names = []
    for frame in info.tables.values():
        if "category" in frame.columns:
            names.extend(str(value) for value in frame["category"].dropna().unique())
    return [name for name in dict.fromkeys(names) if name and name != "all" and "/" not in name]


def _testbed_candidates(info: RunInfo, spec, files: dict[str, bytes] | None, testbed: str | None) -> list[tuple]:
    """(label, file name, bytes, is the model's default) of every testbed the run may have read. A file given with
    --testbed is also tried under the names of the run's categories (the default category is the file's stem)."""
    from probes.poisoned.testbed import EMBEDDED_TESTBED, ENGLISH_TESTBED, default_testbed_path

    found = []
    if testbed:
        path = Path(testbed).expanduser()
        if not path.is_file():
            raise UserError(f"No testbed file at {testbed}.")
        content = path.read_bytes()
        for name in dict.fromkeys([path.name, *(f"{c}{path.suffix}" for c in _run_categories(info))]):
            found.append((str(path), name, content, False))
    for name, content in (files or {}).items():
        if name.startswith(TESTBED_FOLDER):
            found.append((name, name.removeprefix(TESTBED_FOLDER), content, False))
    try:
        default = default_testbed_path(spec)
    except ModelLoadError:
        default = None
    for path in dict.fromkeys(p for p in (default, EMBEDDED_TESTBED, ENGLISH_TESTBED) if p is not None):
        if path.is_file():
            found.append((str(path), path.name, path.read_bytes(), path == default))
    return found


def _vector_candidates(info: RunInfo, store: ResultStore | None, files: dict[str, bytes] | None) -> list[tuple]:
    """(vectors, vector run id or None, vector run config or None) of every steering vector the run may have used:
    the bundle's vector, then the stored steering-vector runs."""
    from probes.steering import VECTORS_NAME, SteeringVectors

    found = []
    if files and BUNDLE_VECTOR in files:
        meta = json.loads(files[BUNDLE_VECTOR_RUN]) if BUNDLE_VECTOR_RUN in files else {}
        vectors = SteeringVectors.from_files(files[BUNDLE_VECTOR], files.get(BUNDLE_VECTOR_JSON))
        found.append((vectors, meta.get("run_id"), meta.get("config")))
    if store is not None:
        for run_id in store.list_runs(probe=VECTORS_NAME)["run_id"]:
            run = store.load(run_id)
            found.append((wiring.result_of(run).vectors, run.run_id, run.config))
    return found


def _poisoned_inputs(info, spec, store, files, testbed, rebuilt: Rebuilt) -> object | None:
    from probes.poisoned import load_testbed
    from probes.poisoned.probe import Steer, SteeredTestbed

    steer = info.summary.get("steer")
    vectors = _vector_candidates(info, store, files) if isinstance(steer, dict) else [(None, None, None)]
    for label, name, content, is_default in _testbed_candidates(info, spec, files, testbed):
        try:
            bed = load_testbed(content, name)
        except ValueError:  # TestbedError
            continue
        for vector, vector_run, _ in vectors:
            inputs = bed if vector is None else SteeredTestbed(bed, Steer(vector, float(steer["strength"])))
            if wiring.curve_input_digest(inputs) != info.input_digest:
                continue
            rebuilt.input_files[TESTBED_FOLDER + name] = content
            rebuilt.extra_args = [] if is_default else [f"--testbed={TESTBED_FOLDER}{name}"]
            rebuilt.inputs_note = f"inputs/testbed/{name}: the testbed the run read ({label})."
            if vector is not None:
                rebuilt.input_files.update({f"inputs/{n}": c for n, c in vector.files().items()})
                if vector_run:
                    rebuilt.input_files[BUNDLE_VECTOR_RUN] = pure.to_json({"run_id": vector_run})
                    rebuilt.extra_args += [f"--steer={vector_run}", f"--strength={float(steer['strength'])!r}"]
                else:
                    rebuilt.extra_args = None
                    rebuilt.command_note = "the steering vector's run is not in this store"
                rebuilt.inputs_note += " inputs/vector.*: the steering vector applied."
            return inputs
    if info.probe == "poisoned" and not isinstance(steer, dict):
        held_out = _held_out_inputs(info, store, files, testbed, rebuilt)
        if held_out is not None or rebuilt.problem:
            return held_out
    rebuilt.problem = (
        f"the run's testbed is not stored (a user upload?): none of the built-in testbeds (nor --testbed, nor the "
        f"held-out split of a stored RW-Steering run) has its digest {info.input_digest}; pass the file with "
        "--testbed FILE"
    )
    return None


@dataclass(frozen=True)
class Tuning:
    """An RW-Steering fine-tuning run whose held-out split a mitigation's curves score (from the store, or the
    bundle's inputs/split.json)."""

    run_id: str
    model_id: str
    revision: str | None  # the base model's revision (the tuned one is `revision_name(run_id)`)
    config: dict
    input_digest: str | None  # the full testbed's digest
    held_out_digest: str | None  # as the run's summary recorded it (None: not known, the split decides)

    @classmethod
    def of(cls, run: StoredRun) -> Tuning:
        split = run.summary.get("split") if isinstance(run.summary.get("split"), dict) else {}
        return cls(run.run_id, run.model_id, run.revision, run.config, run.input_digest, split.get("held_out_digest"))

    def as_dict(self) -> dict:
        return {"tuning_run_id": self.run_id, "model_id": self.model_id, "revision": self.revision,
                "config": self.config, "input_digest": self.input_digest,
                "held_out_digest": self.held_out_digest}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Tuning:
        return cls(str(data["tuning_run_id"]), str(data["model_id"]), data.get("revision"), dict(data["config"]),
                   data.get("input_digest"), data.get("held_out_digest"))  # fmt: skip


def _tuning_candidates(info: RunInfo, store: ResultStore | None, files: dict[str, bytes] | None) -> list[tuple]:
    """(tuning run, is the run the curve after it) of every fine-tuning whose held-out curve the run may be: the
    bundle's inputs/split.json, then the stored runs; the curve before is of the tuning's model, the curve after of
    its tuned revision."""
    from probes.poisoned.mitigate import revision_name

    found: list[Tuning] = []
    if files and BUNDLE_SPLIT in files:
        try:
            found.append(Tuning.from_dict(json.loads(files[BUNDLE_SPLIT])))
        except (ValueError, KeyError, TypeError):
            pass
    if store is not None:
        found += [Tuning.of(store.load(run_id)) for run_id in store.list_runs(probe=TUNING_PROBE)["run_id"]]
    after = bool(info.config.get("judge_first"))  # the tuned model's curve is measured with its judgement first
    return [
        (tuning, after)
        for tuning in found
        if tuning.model_id == info.model_id
        and tuning.held_out_digest in (None, info.input_digest)
        and info.revision == (revision_name(tuning.run_id) if after else tuning.revision)
    ]


def _held_out_inputs(info, store, files, testbed, rebuilt: Rebuilt) -> object | None:
    """The held-out testbed of an RW-Steering mitigation's curve (before or after): a candidate tuning run's full
    testbed split as `plan_mitigation` splits it (the base model's tokenizer, the tuning's split settings), kept
    when the held-out items' digest is the run's input digest."""
    from probes.poisoned import load_testbed
    from probes.poisoned.mitigate import split_items

    for tuning, after in _tuning_candidates(info, store, files):
        base = ModelSpec(name=tuning.model_id, revision=tuning.revision)
        try:
            settings = config_object(TUNING_PROBE, tuning.config)
        except UserError:  # a tuning run of another version's config
            continue
        for label, name, content, is_default in _testbed_candidates(info, base, files, testbed):
            try:
                bed = load_testbed(content, name)
            except ValueError:  # TestbedError
                continue
            if bed.digest != tuning.input_digest:
                continue
            try:
                held_out = split_items(bed, load_tokenizer(base), settings).held_out
            except ValueError:  # too few usable items to split
                continue
            if wiring.curve_input_digest(held_out) != info.input_digest:
                continue
            _held_out_bundle(info, tuning, after, name, content, is_default, label, len(held_out.items), rebuilt)
            if after and tuned_folder(info.model_id, str(info.revision)) is None:
                rebuilt.model_missing = True
                rebuilt.problem = (
                    f"the run's model is not available here: {info.model_id}@{info.revision} is the revision "
                    f"RW-Steering run {tuning.run_id[:12]} tuned, and no folder of it is under $ASSOCLENS_TUNED_DIR "
                    f"({tuned_base_dir(info.model_id) / LOCAL_REVISIONS_DIR}); copy the tuned folder there"
                )
            return held_out
    return None


def _held_out_bundle(info, tuning: Tuning, after: bool, name, content, is_default, label, n_items, rebuilt) -> None:
    """The held-out curve's bundle inputs (the full testbed, the tuning run's split settings) and its command."""
    rebuilt.input_files[TESTBED_FOLDER + name] = content
    rebuilt.input_files[BUNDLE_SPLIT] = pure.to_json(
        {
            **tuning.as_dict(),
            "testbed": TESTBED_FOLDER + name,
            "held_out_digest": info.input_digest,
            "held_out_items": n_items,
            "curve": "after" if after else "before",
        }  # fmt: skip
    )
    rebuilt.inputs_note = (
        f"{TESTBED_FOLDER}{name}: the full testbed ({label}); {BUNDLE_SPLIT}: the RW-Steering fine-tuning run "
        f"{tuning.run_id[:12]} (model, split settings) whose held-out split of it ({n_items} items, by question) "
        f"this {'after' if after else 'before'}-curve scored."
    )
    rebuilt.extra_args = [] if is_default else [f"--testbed={TESTBED_FOLDER}{name}"]
    try:
        curve = pure.mitigation_curve_args(info.config, tuning.config, n_items, after)
        rebuilt.argv = pure.command_argv(
            TUNING_PROBE, tuning.config, tuning.model_id, tuning.revision, [*rebuilt.extra_args, *curve]
        )
        rebuilt.note = pure.mitigation_note(after, tuning.run_id)
    except BundleError as error:
        rebuilt.extra_args, rebuilt.command_note = None, str(error)


def _prompt_set_candidates(spec: ModelSpec) -> list[tuple[str, object]]:
    from probes.steering.prompts import ORGANISM_ASSOCIATIVE_SETS, default_prompt_sets

    found = []
    for name in ORGANISM_ASSOCIATIVE_SETS:
        try:
            found.append((name, default_prompt_sets(spec, name)))
        except (ModelLoadError, ValueError, OSError):
            continue
    return found


def _steering_inputs(info, spec, store, files, rebuilt: Rebuilt) -> object | None:
    if info.probe == "steering.vectors":
        for name, sets in _prompt_set_candidates(spec):
            if digest_json(sets.vector_inputs()) == info.input_digest:
                rebuilt.input_files["inputs/prompt_sets.json"] = pure.to_json(sets.vector_inputs())
                rebuilt.extra_args = [f"--associative-set={name}"]
                rebuilt.inputs_note = f"inputs/prompt_sets.json: the built-in {name!r} prompt sets the vector read."
                return sets
    else:
        candidates = _prompt_set_candidates(spec)
        for vector, vector_run, vector_config in _vector_candidates(info, store, files):
            for name, sets in candidates:
                if digest_json({"vector": vector.digest(), **sets.evaluation_inputs()}) != info.input_digest:
                    continue
                rebuilt.input_files["inputs/prompt_sets.json"] = pure.to_json(sets.evaluation_inputs())
                rebuilt.input_files.update({f"inputs/{n}": c for n, c in vector.files().items()})
                rebuilt.input_files[BUNDLE_VECTOR_RUN] = pure.to_json({"run_id": vector_run, "config": vector_config})
                rebuilt.inputs_note = (f"inputs/prompt_sets.json: the built-in {name!r} prompt sets; inputs/vector.*: "
                                       "the steering vector the sweep applied.")  # fmt: skip
                try:
                    if vector_config is None:
                        raise BundleError("the vector's run config is not known")
                    rebuilt.extra_args = [f"--associative-set={name}", *pure.vector_args(vector_config, info.config)]
                except BundleError as error:
                    rebuilt.extra_args, rebuilt.command_note = None, str(error)
                return wiring.SweepInputs(vector, sets)
    rebuilt.problem = (
        f"the run's prompt sets (or its vector) are not stored (user files?): no built-in set has its input digest "
        f"{info.input_digest}"
    )
    return None


def _loosely(text: str) -> str:
    """A pattern for a fixed prompt phrase as a tokenizer may have decoded it (spaces added or dropped)."""
    return r"\s*".join(re.escape(char) for char in text.replace(" ", ""))


def _explore_from_tables(info: RunInfo) -> list:
    """Guesses at the typed inputs of an explore run stored before runs kept them, from its tables and prompt: the
    appropriate segments in order, the inappropriate ones in the order they were cycled in, the candidates, and the
    question as the prompt shows it (as decoded, and with the spaces a word-level tokenizer puts before punctuation
    removed). Right only when every input shows in the run: the caller keeps the one whose digest is the run's."""
    from probes.poisoned import ExploreInput
    from probes.poisoned.contexts import ANSWER_PREFIX, QUESTION_PREFIX

    segments, answers = info.tables.get("segments"), info.tables.get("answers")
    prompt = str(info.summary.get("prompt") or "")
    found = list(re.finditer(f"{_loosely(QUESTION_PREFIX)}(.*){_loosely(ANSWER_PREFIX)}", prompt, re.DOTALL))
    if segments is None or answers is None or not found:
        return []
    shown = found[-1].group(1).strip()
    bad = segments["inappropriate"].astype(bool).tolist()
    texts = [str(text) for text in segments["text"]]
    appropriate = tuple(text for text, flag in zip(texts, bad, strict=True) if not flag)
    inappropriate = tuple(dict.fromkeys(text for text, flag in zip(texts, bad, strict=True) if flag))
    candidates = tuple(str(candidate) for candidate in answers["candidate"])
    questions = dict.fromkeys([shown, re.sub(r"\s+([?.!,;:])", r"\1", shown)])
    return [ExploreInput(question, appropriate, inappropriate, candidates) for question in questions]


def _explore_inputs(info: RunInfo, files: dict[str, bytes] | None, rebuilt: Rebuilt) -> object | None:
    """The question, segments and candidates an explore run scored: the run's own file (runs keep their inputs), the
    bundle's inputs/explore.json, or (older runs) what its tables and prompt show; checked against its digest."""
    from probes.poisoned import ExploreInput
    from probes.poisoned.probe import EXPLORE_INPUTS_FILE

    found = []
    for label, content in (("the run's stored inputs", info.files.get(EXPLORE_INPUTS_FILE)),
                           (BUNDLE_EXPLORE, (files or {}).get(BUNDLE_EXPLORE))):  # fmt: skip
        if content:
            try:
                found.append((label, ExploreInput.from_json_bytes(content)))
            except ValueError:
                continue
    found += [("the run's tables and prompt", data) for data in _explore_from_tables(info)]
    for label, data in found:
        if digest_json(data.as_dict()) != info.input_digest:
            continue
        rebuilt.input_files[BUNDLE_EXPLORE] = data.to_json_bytes()
        rebuilt.extra_args = pure.explore_args(data.as_dict())
        rebuilt.inputs_note = (f"{BUNDLE_EXPLORE}: the question, context segments and candidate answers the run "
                               f"scored (from {label}).")  # fmt: skip
        return data
    rebuilt.problem = (
        f"the run's typed context is not stored with it (an explore run stored before runs kept their inputs) and "
        f"its tables do not show all of it (input digest {info.input_digest}); explore the context again to store it"
    )
    return None


def _ladder_vocabularies(spec: ModelSpec, files: dict[str, bytes] | None) -> list[tuple[str, frozenset[str]]]:
    """(label, vocabulary) of every associative vocabulary a ladder run may have read: the bundle's, then the
    built-in prompt sets' (as the Steering page derives it)."""
    from probes.steering.metrics import derived_vocabulary

    found = []
    if files and BUNDLE_VOCABULARY in files:
        try:
            words = json.loads(files[BUNDLE_VOCABULARY])
            found.append((BUNDLE_VOCABULARY, frozenset(str(word) for word in words)))
        except (ValueError, TypeError):
            pass
    for name, sets in _prompt_set_candidates(spec):
        vocabulary = frozenset(w.lower() for w in sets.associative_words) or derived_vocabulary(
            sets.faithful, sets.associative
        )
        found.append((f"the built-in {name!r} prompt sets", vocabulary))
    return found


def _ladder_inputs(info, spec, store, files, rebuilt: Rebuilt) -> object | None:
    vocabularies = _ladder_vocabularies(spec, files)
    for vector, vector_run, vector_config in _vector_candidates(info, store, files):
        for label, vocabulary in vocabularies:
            if digest_json({"vector": vector.digest(), "vocabulary": sorted(vocabulary)}) != info.input_digest:
                continue
            rebuilt.input_files[BUNDLE_VOCABULARY] = pure.to_json(sorted(vocabulary))
            rebuilt.input_files.update({f"inputs/{n}": c for n, c in vector.files().items()})
            rebuilt.input_files[BUNDLE_VECTOR_RUN] = pure.to_json({"run_id": vector_run, "config": vector_config})
            rebuilt.inputs_note = (f"{BUNDLE_VOCABULARY}: the associative vocabulary ({label}); inputs/vector.*: "
                                   "the steering vector the ladder applied.")  # fmt: skip
            rebuilt.extra_args = None
            rebuilt.command_note = "the steering ladder is computed by the Steering page only (no CLI command)"
            return wiring.LadderInputs(vector, vocabulary)
    rebuilt.problem = (
        f"the run's steering vector or vocabulary is not stored (an uploaded vector or the user's prompt sets?): no "
        f"stored steering-vector run with a built-in vocabulary has its input digest {info.input_digest}"
    )
    return None


def rebuild(
    info: RunInfo, store: ResultStore | None = None, files: dict[str, bytes] | None = None, testbed: str | None = None
) -> Rebuilt:
    """The run's request, rebuilt from its stored config and inputs, checked to key the same run id."""
    rebuilt = Rebuilt(None)
    config = config_object(info.probe, info.config)
    spec = model_spec(info)
    try:
        if _no_input_probe(info.probe):
            inputs = None
            rebuilt.inputs_note = "none: this probe reads no input files (its config says everything)."
        elif info.probe in ("poisoned", TUNING_PROBE):  # the fine-tuning reads the testbed as a plain curve does
            inputs = _poisoned_inputs(info, spec, store, files, testbed, rebuilt)
        elif info.probe in ("steering", "steering.vectors"):
            inputs = _steering_inputs(info, spec, store, files, rebuilt)
        elif info.probe == EXPLORE_PROBE:
            inputs = _explore_inputs(info, files, rebuilt)
        elif info.probe == LADDER_PROBE:
            inputs = _ladder_inputs(info, spec, store, files, rebuilt)
        else:
            rebuilt.problem = (
                f"the {info.probe} probe's inputs (digest {info.input_digest}) are not stored with the run, so they "
                "cannot be rebuilt"
            )
            inputs = None
    except ModelLoadError as error:
        rebuilt.problem = f"the run's model is not available here ({error})"
        return rebuilt
    if rebuilt.problem:
        if not rebuilt.model_missing:
            rebuilt.inputs_note = f"not included: {rebuilt.problem}."
        return rebuilt
    try:
        request = Request(info.probe, config, spec, inputs)
        run_id = request.key().run_id()
    except ModelLoadError as error:  # the key holds a local model's content digest
        rebuilt.model_missing = True
        rebuilt.problem = f"the run's model is not available here ({' '.join(str(error).split())})"
        return rebuilt
    except (ValueError, TypeError) as error:
        rebuilt.problem = f"the run's request cannot be rebuilt here ({' '.join(str(error).split())})"
        return rebuilt
    if run_id != info.run_id:
        rebuilt.problem = (
            f"the rebuilt request keys run {run_id[:12]}, not {info.run_id[:12]}: the model's files, the inputs or "
            "the library versions (major.minor of torch, transformers, transformer-lens) differ from the run's"
        )
        return rebuilt
    rebuilt.request = request
    if spec is not None:
        rebuilt.content_digest = model_identity(spec).get("content_digest")
    return rebuilt


def command_for(info: RunInfo, rebuilt: Rebuilt) -> tuple[str | None, str | None]:
    """(the command line, None) or (None, why there is none). A run whose model is not here still has one."""
    if rebuilt.problem and not rebuilt.model_missing:
        return None, rebuilt.problem
    if rebuilt.extra_args is None:
        return None, rebuilt.command_note or "no command line names these inputs"
    if rebuilt.argv is not None:
        return pure.command_line(rebuilt.argv), None
    try:
        argv = pure.command_argv(info.probe, info.config, info.model_id, info.revision, rebuilt.extra_args)
    except BundleError as error:
        return None, str(error)
    return pure.command_line(argv), None


# --- writing a bundle -------------------------------------------------------------------------------------


@dataclass
class Bundle:
    name: str  # the folder name: <probe>-<12-char id>
    files: dict[str, bytes]  # path inside the folder -> content, MANIFEST.json included
    messages: list[str]  # one line each: what was skipped and why
    command: str | None

    def zip(self) -> bytes:
        return pure.zip_bytes(self.name, self.files)


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _figures(run: StoredRun) -> tuple[list, str | None]:
    from probes.figures.compare import comparison_for, labelled_runs

    comparison = comparison_for(run.probe)
    if comparison is None:
        return [], f"no figures: the {run.probe} probe has no figure module for stored runs"
    try:
        return list(comparison.figures(labelled_runs([run]))), None
    except Exception as error:  # noqa: BLE001 - a figure that cannot be drawn must not stop the bundle
        return [], f"figures skipped: drawing them failed ({' '.join(str(error).split())[:200]})"


def _readme(run: StoredRun, command: str | None, command_note: str | None, inputs_note: str, figures: list[str],
            messages: list[str], tolerance: dict, note: str | None = None) -> bytes:  # fmt: skip
    note = pure.command_note(run.probe) if note is None else note
    how = "exactly (a CPU run)." if tolerance["rtol"] == 0 else f"within a relative tolerance of {tolerance['rtol']:g}."
    lines = [
        f"# Run {run.run_id[:12]}: {run.probe} on {run.model_id}{'@' + run.revision if run.revision else ''}",
        "",
        f"Full run id: `{run.run_id}`. Created {run.created_at:%Y-%m-%d %H:%M} UTC on {run.device or '?'} / "
        f"{run.dtype or '?'} in {run.duration_s:.1f} s.",
        "",
        "## Contents",
        "",
        "- `provenance.json`: the run's provenance (model id, revision, the model folder's content digest when it "
        "could be verified, config, input digest, library versions, device, dtype, seed, timings, run id, probe "
        "version) and the machine this bundle was written on (python, platform, torch).",
        "- `summary.json`: the run's summary as stored.",
        f"- `tables/`: every table as Parquet (exact) and CSV (text cells a spreadsheet would run as a formula are "
        f"prefixed with a quote): {', '.join(run.tables) or 'none'}.",
        f"- `figures/`: {len(figures)} figure(s) as standalone HTML (Plotly.js from its CDN)"
        + (", PNG and SVG." if figures and not messages else "."),
        f"- `inputs/`: {inputs_note} `inputs/digests.json` records the input digest.",
        *([f"- `files/`: the run's stored files ({', '.join(run.files)})."] if run.files else []),
        "- `command.txt`: the command that recomputes the run.",
        "- `MANIFEST.json`: sha256 and size of every other file.",
        "",
        "## Recompute",
        "",
        f"    {command}" if command else f"No CLI command recomputes this run: {command_note}.",
        *(["", note] if command and note else []),
        "",
        "Run it in this folder (input paths are relative to it) with the AssocLens checkout on the path "
        "(`PYTHONPATH=/path/to/assoclens`) and a fresh result database (`ASSOCLENS_DB=/tmp/fresh.duckdb`) or "
        "`--no-cache`; the printed `run_id` equals this run's when the model, inputs and library versions "
        "(major.minor of torch, transformers, transformer-lens) are the same.",
        "To check the numbers instead: `python -m probes cache reproduce <this folder or zip> --json` verifies "
        "the manifest, recomputes the run without storing it and compares every table "
        + how,
    ]  # fmt: skip
    if messages:
        lines += ["", "## Not included", "", *[f"- {message}" for message in messages]]
    return ("\n".join(lines) + "\n").encode()


def build_bundle(run: StoredRun, store: ResultStore | None = None, export=None, plotlyjs: str | bool = "cdn") -> Bundle:
    """Every file of the run's bundle, in memory (the CLI writes it, the page zips it). `export` replaces the
    static figure export (tests force it to fail)."""
    info = RunInfo.of(run)
    name = f"{run.probe}-{run.run_id[:12]}"
    files: dict[str, bytes] = {}
    messages: list[str] = []
    rebuilt = rebuild(info, store)
    command, command_note = command_for(info, rebuilt)
    if command is None:
        messages.append(f"command.txt has no command: {command_note}.")

    for table, frame in run.tables.items():
        files[f"tables/{table}.parquet"] = _parquet(frame)
        files[f"tables/{table}.csv"] = neutralise_formulas(frame).to_csv(index=False).encode()
    for file_name, content in run.files.items():
        files[f"{RUN_FILES}{file_name}"] = content

    figures, figure_note = _figures(run)
    if figure_note:
        messages.append(figure_note)
    names = pure.figure_names(figures)
    files.update(pure.html_files(figures, names, plotlyjs))
    static, static_note = pure.static_files(figures, names, export)
    files.update(static)
    if static_note:
        messages.append(static_note)

    files.update(rebuilt.input_files)
    files["inputs/digests.json"] = pure.to_json(
        {
            "input_digest": run.input_digest,
            "files": {n: pure.sha256(c) for n, c in rebuilt.input_files.items()},
            "note": rebuilt.inputs_note,
        }  # fmt: skip
    )
    tolerance = pure.tolerance_for(run.device, run.device)
    provenance = {
        **run.provenance(),
        "model_content_digest": rebuilt.content_digest,
        "tables": list(run.tables),
        "machine": pure.machine(),
        "bundled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "static_export": {"browser": pure.browser_path(), "skipped": static_note},
    }
    files["provenance.json"] = pure.to_json(provenance)
    files["summary.json"] = pure.to_json(run.summary)
    files["command.txt"] = ((command or f"# no CLI command recomputes this run: {command_note}") + "\n").encode()
    files["README.md"] = _readme(run, command, command_note, rebuilt.inputs_note, names, messages, tolerance,
                                 rebuilt.note)  # fmt: skip
    files[pure.MANIFEST] = pure.to_json(pure.manifest_for(files))
    return Bundle(name, files, messages, command)


def write_bundle(bundle: Bundle, out: Path | str, as_zip: bool = False) -> Path:
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if as_zip:
        target = out / f"{bundle.name}.zip"
        target.write_bytes(bundle.zip())
        return target
    target = out / bundle.name
    if target.is_dir() and any(target.iterdir()):
        if not (target / pure.MANIFEST).is_file():
            raise UserError(f"{target} exists and is not a bundle; choose another --out.")
        shutil.rmtree(target)  # an earlier bundle of the same run: replaced whole, so no stale file remains
    for name, content in bundle.files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return target


# --- reproducing -------------------------------------------------------------------------------------------


def _bundle_info(files: dict[str, bytes]) -> RunInfo:
    try:
        provenance = json.loads(files["provenance.json"])
        summary = json.loads(files["summary.json"])
    except (KeyError, ValueError) as error:
        raise BundleError(f"the bundle's provenance.json or summary.json cannot be read ({error})") from None
    tables = {}
    for table in provenance.get("tables", []):
        name = f"tables/{table}.parquet"
        if name not in files:
            raise BundleError(f"{name} is missing from the bundle")
        tables[table] = pd.read_parquet(io.BytesIO(files[name]))
    run_files = {name.removeprefix(RUN_FILES): content for name, content in files.items() if name.startswith(RUN_FILES)}
    return RunInfo(provenance["run_id"], provenance["probe"], provenance["model_id"], provenance.get("revision"),
                   provenance["config"], provenance.get("input_digest"), summary, provenance.get("device"),
                   provenance.get("dtype"), tables, run_files)  # fmt: skip


@contextlib.contextmanager
def _scratch_tuned_root(folder: Path, spec: ModelSpec | None, active: bool) -> Iterator[None]:
    """While a fine-tuning run is recomputed, its tuned revision is saved under `folder` (the throwaway temporary
    folder), never over the stored run's revision in the real tuned root ($ASSOCLENS_TUNED_DIR is read per call).
    A base model that is itself a tuned revision stays loadable: it is linked into `folder` (read, never written)."""
    if not active:
        yield
        return
    base = tuned_folder(spec.name, spec.revision) if spec is not None and spec.revision else None
    before = os.environ.get(TUNED_DIR_ENV)
    os.environ[TUNED_DIR_ENV] = str(folder)
    try:
        if base is not None:
            link = tuned_base_dir(spec.name) / LOCAL_REVISIONS_DIR / str(spec.revision)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(base.resolve(), target_is_directory=True)
        yield
    finally:
        if before is None:
            os.environ.pop(TUNED_DIR_ENV, None)
        else:
            os.environ[TUNED_DIR_ENV] = before


def reproduce(target: str, store: ResultStore, testbed: str | None = None) -> dict:
    """Recompute a stored run (or a bundle's) into a throwaway store and compare every table."""
    path = Path(target).expanduser()
    files = None
    if path.exists():
        try:
            files = pure.read_bundle(path)
            pure.verify_manifest(files)
            info = _bundle_info(files)
        except BundleError as error:
            raise UserError(f"bundle {path}: {error}") from None
        source = str(path)
    else:
        run_id = resolve_run_id(store, target)
        info = RunInfo.of(store.load(run_id))
        source = f"store {store.path}"
    rebuilt = rebuild(info, store, files, testbed)
    if rebuilt.request is None:
        raise UserError(f"Run {info.run_id[:12]} ({info.probe}) cannot be recomputed here: {rebuilt.problem}.")
    progress, close = tqdm_progress(f"reproduce {info.probe}")
    started = datetime.now(UTC)
    try:
        with tempfile.TemporaryDirectory(prefix="assoclens-reproduce-") as folder:
            scratch = ResultStore(Path(folder) / "scratch.duckdb")
            with _scratch_tuned_root(Path(folder) / "tuned", rebuilt.request.spec, REGISTRY[info.probe].trains_copy):
                fresh = wiring.run(scratch, rebuilt.request, progress=progress, refresh=True)
    except ModelLoadError as error:
        raise UserError(f"The run's model {info.model_id} is not available here: {error}") from None
    finally:
        close()
    tolerance = pure.tolerance_for(info.device, fresh.device)
    tables = pure.compare_tables(info.tables, fresh.tables, **tolerance)
    return {
        "run_id": info.run_id,
        "probe": info.probe,
        "source": source,
        "recomputed_run_id": fresh.run_id,
        "same_run_id": fresh.run_id == info.run_id,
        "match": all(table["match"] for table in tables) and fresh.run_id == info.run_id,
        "tolerance": {**tolerance, "rule": "exact for CPU runs recomputed on the CPU; else |a - b| <= atol + rtol*|a|"},
        "stored_device": info.device,
        "recomputed_device": fresh.device,
        "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
        "tables": tables,
        "stored_run_untouched": True,
    }


# --- the CLI handlers --------------------------------------------------------------------------------------


def bundle_command(args: argparse.Namespace) -> dict:
    store = store_from_args(args)
    run = store.load(resolve_run_id(store, args.run_id))
    built = build_bundle(run, store, plotlyjs=True if args.embed_plotlyjs else "cdn")
    target = write_bundle(built, args.out, args.zip)
    for message in built.messages:
        print(f"warning: {message}", file=sys.stderr)
    return {
        "run_id": run.run_id,
        "bundle": str(target),
        "files": sorted(built.files),
        "command": built.command,
        "messages": built.messages,
        "static_export": _static_status(built),
    }


def _static_status(built: Bundle) -> str:
    """written (PNG and SVG are in the bundle), skipped (the message says why) or none (the run has no figures)."""
    if any(name.endswith(".png") for name in built.files):
        return "written"
    return "skipped" if any(message.startswith("PNG/SVG") for message in built.messages) else "none"


def reproduce_command(args: argparse.Namespace) -> dict:
    return reproduce(args.target, store_from_args(args), args.testbed)


def add_bundle_commands(commands: argparse._SubParsersAction, add_output_args) -> None:
    """`cache bundle` and `cache reproduce`."""
    making = commands.add_parser("bundle", help="write a reproducible bundle of a run (tables, figures, command, ...)")
    making.add_argument("run_id", help="the run id, in full or its first 8 or more characters")
    making.add_argument("--out", required=True, help="folder to write <probe>-<id>/ (or <probe>-<id>.zip) into")
    making.add_argument("--zip", action="store_true", help="write one zip instead of a folder")
    making.add_argument("--embed-plotlyjs", action="store_true", help="embed Plotly.js in each HTML figure (~4 MB)")
    add_output_args(making)
    making.set_defaults(handler=bundle_command)

    checking = commands.add_parser("reproduce", help="recompute a run (stored, or a bundle) and compare its tables")
    checking.add_argument("target", help="a run id (or 8+ character prefix), a bundle folder or a bundle zip")
    checking.add_argument("--testbed", default=None, help="the testbed file of a poisoned run whose file is not stored")
    add_output_args(checking)
    checking.set_defaults(handler=reproduce_command)
