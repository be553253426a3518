"""Training checkpoints: what a stopped run needs to go on exactly where it was.

A checkpoint folder holds every module's weights, the current phase's optimiser moments
and random-number states (``state.safetensors``) and the step counts, finished phases and
loss history (``state.json``). Tensors go to safetensors and the rest to JSON, so resuming
never unpickles anything. Both files are written under temporary names and renamed, the
JSON last: a run killed while saving resumes from the previous checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STATE_JSON = "state.json"
STATE_TENSORS = "state.safetensors"


@dataclass
class Randoms:
    """A phase's random streams: numpy for batch picks, torch for noise and sigmas."""

    rng: np.random.Generator
    generator: torch.Generator

    @classmethod
    def seeded(cls, seed: int) -> Randoms:
        return cls(np.random.default_rng(seed), torch.Generator().manual_seed(seed))


@dataclass
class History:
    """Loss per step and seconds of each phase, and the phases finished."""

    losses: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)


def _flatten_optimiser(optimiser: torch.optim.Optimizer) -> tuple[dict, dict]:
    """An optimiser's state dict as (tensors by flat key, JSON-able rest)."""
    state = optimiser.state_dict()
    tensors, scalars = {}, {}
    for index, slots in state["state"].items():
        for name, value in slots.items():
            key = f"optimiser.{index}.{name}"
            if torch.is_tensor(value):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimiser(tensors: dict, rest: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in [*tensors.items(), *rest["scalars"].items()]:
        if key.startswith("optimiser."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


class Checkpointer:
    """Saves ``modules`` and the running phase into ``folder`` at least every ``every_s``
    seconds and at the end of each phase; ``resume()`` reads them back."""

    def __init__(self, folder: Path, modules: dict[str, torch.nn.Module], every_s: float = 300):
        self.folder = Path(folder)
        self.modules = modules
        self.every_s = every_s
        self._last = time.monotonic()
        self._pending: dict | None = None

    def exists(self) -> bool:
        return (self.folder / STATE_JSON).exists()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.every_s

    def save(
        self,
        history: History,
        phase: str | None = None,
        step: int = 0,
        optimiser: torch.optim.Optimizer | None = None,
        randoms: Randoms | None = None,
    ) -> None:
        """Write the modules and ``history``; for a ``phase`` under way (``step`` steps done)
        also its optimiser and random streams."""
        tensors = {
            f"module.{name}.{key}": value.detach().cpu().contiguous()
            for name, module in self.modules.items()
            for key, value in module.state_dict().items()
        }
        record = {
            "done": history.done,
            "phase": phase,
            "step": step,
            "losses": history.losses,
            "seconds": history.seconds,
        }
        if optimiser is not None:
            opt_tensors, record["optimiser"] = _flatten_optimiser(optimiser)
            tensors.update(opt_tensors)
        if randoms is not None:
            tensors["random.torch"] = randoms.generator.get_state()
            record["random_numpy"] = randoms.rng.bit_generator.state
        self.folder.mkdir(parents=True, exist_ok=True)
        # The tensors under a new name each time, so the JSON that names them is the commit.
        name = f"{STATE_TENSORS}.{phase or 'between'}.{step}"
        record["tensors"] = name
        save_file(tensors, str(self.folder / (name + ".tmp")))
        os.replace(self.folder / (name + ".tmp"), self.folder / name)
        tmp = self.folder / (STATE_JSON + ".tmp")
        tmp.write_text(json.dumps(record))
        old = self._tensors_file()
        os.replace(tmp, self.folder / STATE_JSON)
        if old is not None and old.name != name:
            old.unlink(missing_ok=True)
        self._last = time.monotonic()

    def _tensors_file(self) -> Path | None:
        if not self.exists():
            return None
        return self.folder / json.loads((self.folder / STATE_JSON).read_text())["tensors"]

    def resume(self) -> History:
        """Load every module's weights; return the history so far. The phase under way gets
        its optimiser, random streams and step back from ``restore_phase`` when it starts."""
        record = json.loads((self.folder / STATE_JSON).read_text())
        tensors = load_file(str(self.folder / record["tensors"]))
        for name, module in self.modules.items():
            prefix = f"module.{name}."
            module.load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        self._pending = {"record": record, "tensors": tensors}
        return History(losses=record["losses"], seconds=record["seconds"], done=record["done"])

    def restore_phase(self, phase: str, optimiser: torch.optim.Optimizer, randoms: Randoms) -> int:
        """Steps already done in ``phase`` (0 if the checkpoint is not in it); its optimiser
        moments and random streams are put back as they were."""
        pending = self._pending
        if pending is None or pending["record"]["phase"] != phase:
            return 0
        record, tensors = pending["record"], pending["tensors"]
        if "optimiser" in record:
            optimiser.load_state_dict(_unflatten_optimiser(tensors, record["optimiser"]))
        if "random_numpy" in record:
            randoms.rng.bit_generator.state = record["random_numpy"]
            randoms.generator.set_state(tensors["random.torch"])
        self._pending = None
        return int(record["step"])
