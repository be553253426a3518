"""manifest.jsonl: one line per output frame, the record a rerun resumes from; where the
quality gate is on, also one line per attempt at a clip's variation.

Frame lines name only accepted frames, in the variations' folders: what a training loader
may read. Attempt lines (they have an ``attempt`` key) record every try the gate judged,
accepted or not, with its seed, scores and reasons, and the files kept of it (the
variation's frames, or those under ``rejected/``).

A line is appended (one write) only after its frame's file was renamed into place, so
a line always names a whole file. A run killed in the middle of an append leaves a
last line without its newline; loading drops it (its frame is generated again,
identically) and rewrites the file before anything else is appended. At the end of a
run the manifest is rewritten in a fixed order, so it does not depend on where
earlier runs were interrupted.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bridge_core.errors import InputError
from bridge_core.outputs import write_bytes_atomic

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.jsonl"


@dataclass(frozen=True)
class ManifestEntry:
    """One generated frame.

    output:            path of the generated rgb, relative to the run folder
    source:            the input rgb file, relative to the dataset folder (None where the
                       input frame is not a file of its own, e.g. a video frame)
    camera, frame:     the input frame
    variation, prompt: what was asked; seed: the clip's seed given to the model
    controls_digest:   sha256 of the spec's control settings
    generation_digest: sha256 of everything that decides the pixels (controls, clip,
                       model, sampling, prompt, seed): a rerun skips a frame only if equal
    sha256:            of the output file's bytes
    model:             what made it: id, revision, steps, guidance, and for a distilled
                       student its teacher (None in manifests written before)
    """

    output: str
    source: str | None
    camera: str
    frame: int
    variation: str
    prompt: str
    seed: int
    controls_digest: str
    generation_digest: str
    sha256: str
    model: dict[str, Any] | None = None

    def line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True) + "\n"


@dataclass(frozen=True)
class AttemptEntry:
    """One try at a clip's variation, as the quality gate judged it.

    camera, first, last: the clip; variation: its name
    chain:             the first try's generation digest: which clip, settings and seed
                       the tries belong to (a later try's seed is derived from it)
    attempt:           0 for the first try; seed and generation_digest are this try's
    gate_digest:       sha256 of the gate settings the verdict was made under
    accepted, reasons: the verdict; scores: score name -> value (None: not measurable)
    kept:              files of this try kept in the run folder (none for a try retried)
    """

    camera: str
    first: int
    last: int
    variation: str
    chain: str
    attempt: int
    seed: int
    generation_digest: str
    gate_digest: str
    accepted: bool
    scores: dict[str, float | None]
    reasons: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True) + "\n"


class Manifest:
    """The entries of a run folder's manifest, by output path (the last line wins), and
    the attempts by chain (a chain's try 0 starts it afresh; the last line of a try wins)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.path = run_dir / MANIFEST_FILE
        if self.path.is_symlink():
            raise InputError(
                "is a symbolic link; a run's manifest must be a file of its own "
                "(remove the link and run again)",
                self.path,
            )
        self.entries: dict[str, ManifestEntry] = {}
        self.attempts: dict[str, list[AttemptEntry]] = {}
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        # Split as bytes: a kill can cut the last line inside a multi-byte character.
        lines = self.path.read_bytes().split(b"\n")
        # Complete lines end with "\n": whatever follows the last one was cut by a kill.
        complete, cut = lines[:-1], lines[-1]
        dropped = int(bool(cut.strip()))
        for line in complete:
            try:
                data = json.loads(line.decode("utf-8"))
                if "attempt" in data:
                    self._add_attempt(AttemptEntry(**data))
                    continue
                entry = ManifestEntry(**data)
            except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
                dropped += 1
                continue
            self.entries[entry.output] = entry
        if dropped:
            log.warning("dropped %d incomplete line(s) of %s", dropped, self.path)
            self.rewrite()

    def done(self, output: str, generation_digest: str) -> bool:
        """Whether ``output`` exists and was made with exactly these settings."""
        entry = self.entries.get(output)
        return (
            entry is not None
            and entry.generation_digest == generation_digest
            and (self.run_dir / output).is_file()
        )

    def append(self, entries: Iterable[ManifestEntry]) -> None:
        """Record frames whose files are already in place, in one write."""
        entries = list(entries)
        self._append("".join(e.line() for e in entries))
        self.entries.update((e.output, e) for e in entries)

    def _append(self, text: str) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    def _add_attempt(self, entry: AttemptEntry) -> None:
        chain = [] if entry.attempt == 0 else self.attempts.get(entry.chain, [])
        self.attempts[entry.chain] = [a for a in chain if a.attempt < entry.attempt] + [entry]

    def record_attempts(self, entries: Iterable[AttemptEntry]) -> None:
        """Record tries (in order) whose kept files are already in place, in one write."""
        entries = list(entries)
        self._append("".join(e.line() for e in entries))
        for entry in entries:
            self._add_attempt(entry)

    def chain(self, chain: str) -> list[AttemptEntry]:
        """The tries recorded of a chain, in order (empty: none, or the gate was off)."""
        return self.attempts.get(chain, [])

    def forget(self, outputs: Iterable[str]) -> None:
        """Drop the entries of frames about to be made again, so that the lines appended
        for them never repeat an output (a run killed mid-clip leaves some listed)."""
        stale = [o for o in outputs if o in self.entries]
        for output in stale:
            del self.entries[output]
        if stale:
            self.rewrite()

    def rewrite(self) -> None:
        """The manifest in a fixed order (variation, camera, frame; then the attempts by
        variation, camera, first frame, try), written atomically; frames whose file is
        gone are left out, and chains none of whose kept files is left."""
        present = [e for e in self.entries.values() if (self.run_dir / e.output).is_file()]
        ordered = sorted(present, key=lambda e: (e.variation, e.camera, e.frame))
        chains = [
            chain
            for chain in self.attempts.values()
            if any((self.run_dir / k).is_file() for a in chain for k in a.kept)
        ]
        tries = sorted(
            (a for chain in chains for a in chain),
            key=lambda a: (a.variation, a.camera, a.first, a.chain, a.attempt),
        )
        data = "".join(e.line() for e in [*ordered, *tries]).encode("utf-8")
        if not self.path.exists() or self.path.read_bytes() != data:
            write_bytes_atomic(self.path, data, self.run_dir)
