"""What the Kit panel edits: a JobSpec, changed one field at a time by small setters.

Each panel widget calls one setter; the setter validates the whole spec again, so a
value the spec refuses (a folder name that would escape the output folder, every
control disabled) leaves the spec as it was and sets :attr:`PanelState.error` to the
message the panel shows. Nothing here knows omni.ui, so every wire from a widget to
its spec field is tested without Kit.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bridge_core.errors import SpecError
from bridge_core.run.starter import EXAMPLE_VARIATIONS
from bridge_core.spec.load import parse_job_spec
from bridge_core.spec.models import CONTROL_NAMES, PRESET_CONTROLS, ControlSpec, JobSpec

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = Path.home() / "cosmos_transfer_capture"
DEFAULT_FRAMES = 30
PRESETS: tuple[str, ...] = ("very_low", "low", "medium", "high", "very_high")
# Starting weights: geometry steers most, appearance least (as `cosmos-bridge init` writes).
_DEFAULT_WEIGHTS = {"edge": 0.5, "depth": 0.5, "seg": 0.3, "blur": 0.2}


def default_spec(output_dir: str | Path = DEFAULT_OUTPUT_DIR) -> JobSpec:
    """The panel's starting job: every control, one example variation, the default model."""
    name, prompt, seed = EXAMPLE_VARIATIONS[0]
    return parse_job_spec(
        {
            "input": {"dataset": str(output_dir)},
            "controls": {n: {"weight": w} for n, w in _DEFAULT_WEIGHTS.items()},
            "variations": [{"name": name, "prompt": prompt, "seed": seed}],
        }
    )


class PanelState:
    """The panel's job spec and run settings; every widget writes through one setter.

    Setters return True when the spec took the value; otherwise :attr:`error` says why.
    """

    def __init__(self, spec: JobSpec | None = None, frames: int = DEFAULT_FRAMES):
        self.spec = spec or default_spec()
        self.frames = frames
        self.error: str | None = None

    # ------------------------------------------------------------------ reading

    @property
    def output_dir(self) -> str:
        return str(self.spec.input.dataset)

    def control(self, name: str) -> ControlSpec:
        """The spec's control ``name``, or the disabled default where the spec has none."""
        return self.spec.controls.get(name) or ControlSpec(enabled=False)

    def class_weight(self, control: str, label: str) -> float | None:
        """The value of the rule giving class ``label`` its own weight in ``control``."""
        for rule in self.control(control).rules:
            if getattr(rule, "classes", None) == [label]:
                return rule.value
        return None

    # ------------------------------------------------------------------ writing

    def set_output_dir(self, path: str) -> bool:
        return self._change(lambda d: d["input"].update(dataset=path.strip()))

    def set_run_name(self, name: str) -> bool:
        return self._change(lambda d: d["output"].update(run_name=name.strip()))

    def set_model_id(self, model_id: str) -> bool:
        """A hub id, a local folder, "default" or "tiny"."""
        return self._change(lambda d: d["model"].update(id=model_id.strip()))

    def set_num_steps(self, steps: int) -> bool:
        return self._change(lambda d: d["model"].update(num_steps=int(steps)))

    def set_frames(self, frames: int) -> bool:
        """Frames one press of Run captures."""
        if int(frames) < 1:
            return self._refuse(f"frames: give at least 1, got {frames}")
        self.frames = int(frames)
        self.error = None
        return True

    def set_variation_name(self, index: int, name: str) -> bool:
        return self._change(lambda d: d["variations"][index].update(name=name.strip()))

    def set_variation_prompt(self, index: int, prompt: str) -> bool:
        def change(d: dict[str, Any]) -> None:
            d["variations"][index].update(prompt=prompt, prompt_file=None)

        return self._change(change)

    def set_variation_seed(self, index: int, seed: int) -> bool:
        return self._change(lambda d: d["variations"][index].update(seed=int(seed)))

    def add_variation(self) -> bool:
        """Append a variation named ``variation_<n>`` (first free n) with the example prompt."""
        taken = {v.name.casefold() for v in self.spec.variations}
        n = len(self.spec.variations)
        while f"variation_{n}" in taken:
            n += 1
        prompt = EXAMPLE_VARIATIONS[n % len(EXAMPLE_VARIATIONS)][1]
        entry = {"name": f"variation_{n}", "prompt": prompt, "seed": n}
        return self._change(lambda d: d["variations"].append(entry))

    def remove_variation(self, index: int) -> bool:
        return self._change(lambda d: d["variations"].pop(index))

    def set_control_enabled(self, name: str, enabled: bool) -> bool:
        return self._change_control(name, lambda c: c.update(enabled=bool(enabled)))

    def set_control_weight(self, name: str, weight: float) -> bool:
        return self._change_control(name, lambda c: c.update(weight=float(weight)))

    def set_control_preset(self, name: str, preset: str | None) -> bool:
        """None or "default": the control's default preset."""
        if name not in PRESET_CONTROLS:
            return self._refuse(f"controls.{name}.preset: presets apply to edge and blur only")
        value = None if preset in (None, "", "default") else preset
        return self._change_control(name, lambda c: c.update(preset=value))

    def set_class_weight(self, control: str, label: str, value: float | None) -> bool:
        """Give class ``label`` its own weight in ``control``; None removes that rule."""

        def change(c: dict[str, Any]) -> None:
            rules = [r for r in c.get("rules", []) if r.get("classes") != [label]]
            if value is not None:
                rules.append({"classes": [label], "value": float(value), "op": "set"})
            c["rules"] = rules

        return self._change_control(control, change)

    # ------------------------------------------------------------------ helpers

    def _change_control(self, name: str, change: Any) -> bool:
        if name not in CONTROL_NAMES:
            return self._refuse(
                f"controls: unknown control {name!r} (controls are {', '.join(CONTROL_NAMES)})"
            )

        def apply(d: dict[str, Any]) -> None:
            control = d["controls"].setdefault(name, {"enabled": False})
            change(control)

        return self._change(apply)

    def _change(self, change: Any) -> bool:
        data = self.spec.model_dump(mode="json")
        try:
            change(data)
            spec = parse_job_spec(data)
        except (SpecError, IndexError) as exc:
            return self._refuse(str(exc))
        self.spec = spec
        self.error = None
        return True

    def _refuse(self, message: str) -> bool:
        log.warning("panel: %s", message)
        self.error = message
        return False
