"""The "Cosmos Transfer" window: omni.ui widgets over a bridge_core.live.PanelState.

Every widget writes its value through one PanelState setter (kept in ``widgets`` under
the spec field it edits); a refused value shows the reason in the panel and puts the
widget back. Nothing slow runs on Kit's main loop: the capture steps with
``await rep.orchestrator.step_async()``, generation runs on the writer's worker thread,
model loading and previews run in this panel's ThreadPoolExecutor; their results and
UI updates come back through the loop (``asyncio.wrap_future``, ``run_in_executor``,
``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import carb
import omni.kit.app
import omni.replicator.core as rep
import omni.ui as ui
import omni.usd
from omni.kit.viewport.utility import get_active_viewport

from bridge_core.live.augmenter import LiveStatus
from bridge_core.live.models import ModelCache
from bridge_core.live.panel_state import PRESETS, PanelState, default_spec
from bridge_core.live.preview import preview_frame, rgba_array
from bridge_core.live.stage import semantic_classes
from bridge_core.spec.models import CONTROL_NAMES, PRESET_CONTROLS

from .writer import ANNOTATORS, WRITER_NAME, make_annotators

TITLE = "Cosmos Transfer"
PRESET_ITEMS: tuple[str, ...] = ("default", *PRESETS)
_LABEL = 96  # label column width, pixels
_PREVIEW_HEIGHT = 120


class CosmosTransferPanel:
    """The window; ``widgets`` maps each edited spec field to its widget."""

    def __init__(self, output_dir: str | None = None, state: PanelState | None = None):
        self.state = state or PanelState(default_spec(output_dir) if output_dir else None)
        self.widgets: dict[str, Any] = {}
        self.classes = self._stage_classes()
        self._models = ModelCache()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="cosmos-transfer-panel")
        self._busy = False
        self._cancel_requested = False
        self._writer: Any = None
        self._task: asyncio.Future[Any] | None = None
        self._syncing = False
        self._before = ui.ByteImageProvider()
        self._after = ui.ByteImageProvider()
        self.window = ui.Window(
            TITLE, width=440, height=800, dockPreference=ui.DockPreference.LEFT_BOTTOM
        )
        with self.window.frame:
            self._build()

    @property
    def visible(self) -> bool:
        return self.window.visible

    def set_visible(self, visible: bool) -> None:
        """Show or hide the window (the Window menu entry; its close button only hides it)."""
        self.window.visible = visible

    def destroy(self) -> None:
        """Stop any run and release the window (on_shutdown)."""
        self.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.widgets.clear()
        self.window.destroy()
        self._models.clear()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        s = self.state
        with ui.ScrollingFrame(), ui.VStack(spacing=4, height=0):
            with ui.CollapsableFrame(title="Job", height=0), ui.VStack(spacing=2, height=0):
                self._string("input.dataset", "Output folder", s.output_dir, s.set_output_dir)
                self._string("output.run_name", "Run name", s.spec.output.run_name, s.set_run_name)
                self._string(
                    "model.id",
                    "Model",
                    s.spec.model.id,
                    s.set_model_id,
                    tooltip="default, tiny, a hub id or a local folder",
                )
                self._row("Steps")
                self._bind(
                    "model.num_steps",
                    ui.IntField(),
                    s.spec.model.num_steps,
                    lambda m: s.set_num_steps(m.as_int),
                    lambda: s.spec.model.num_steps,
                )
            with ui.CollapsableFrame(title="Variations", height=0):
                self._variations = ui.Frame(build_fn=self._build_variations)
            with ui.CollapsableFrame(title="Controls", height=0):
                self._controls = ui.Frame(build_fn=self._build_controls)
            with ui.CollapsableFrame(title="Preview", height=0), ui.VStack(spacing=2, height=0):
                self._button("preview", "Preview viewport", lambda: self._start(self.preview))
                with ui.HStack(height=_PREVIEW_HEIGHT):
                    ui.ImageWithProvider(self._before)
                    ui.ImageWithProvider(self._after)
            with ui.CollapsableFrame(title="Run", height=0), ui.VStack(spacing=2, height=0):
                with ui.HStack(height=0):
                    ui.Label("Frames", width=_LABEL)
                    self._bind(
                        "frames",
                        ui.IntField(),
                        s.frames,
                        lambda m: s.set_frames(m.as_int),
                        lambda: s.frames,
                    )
                    self._button("run", "Run", lambda: self._start(self.run_frames))
                    self._button("cancel", "Cancel", self.cancel)
                self.widgets["progress"] = ui.ProgressBar()
                self.widgets["status"] = ui.Label("", alignment=ui.Alignment.LEFT_CENTER)
                self._button("open_output", "Open output folder", self.open_output)
            self.widgets["message"] = ui.Label("", alignment=ui.Alignment.LEFT_CENTER)

    def _build_variations(self) -> None:
        s = self.state
        for key in [k for k in self.widgets if k.startswith("variations.")]:
            del self.widgets[key]
        with ui.VStack(spacing=4, height=0):
            for i, variation in enumerate(s.spec.variations):
                with ui.HStack(height=0, spacing=4):
                    self._bind(
                        f"variations.{i}.name",
                        ui.StringField(),
                        variation.name,
                        lambda m, i=i: s.set_variation_name(i, m.as_string),
                    )
                    ui.Label("seed", width=32)
                    self._bind(
                        f"variations.{i}.seed",
                        ui.IntField(width=60),
                        variation.seed,
                        lambda m, i=i: s.set_variation_seed(i, m.as_int),
                        lambda i=i: s.spec.variations[i].seed,
                    )
                    self._button(f"variations.{i}.remove", "Remove", lambda i=i: self._remove(i))
                self._bind(
                    f"variations.{i}.prompt",
                    ui.StringField(multiline=True, height=48),
                    variation.prompt or "",
                    lambda m, i=i: s.set_variation_prompt(i, m.as_string),
                )
            self._button("variations.add", "Add variation", self._add)

    def _build_controls(self) -> None:
        for key in [k for k in self.widgets if k.startswith("controls.")]:
            del self.widgets[key]
        with ui.VStack(spacing=4, height=0):
            for name in CONTROL_NAMES:
                self._build_control(name)
            self._button("classes.refresh", "Reload classes from the stage", self.refresh_classes)

    def _build_control(self, name: str) -> None:
        s, key = self.state, f"controls.{name}"
        control = s.control(name)
        with ui.CollapsableFrame(title=name, height=0), ui.VStack(spacing=2, height=0):
            with ui.HStack(height=0, spacing=4):
                self._bind(
                    f"{key}.enabled",
                    ui.CheckBox(width=20),
                    control.enabled,
                    lambda m: s.set_control_enabled(name, m.as_bool),
                    lambda: s.control(name).enabled,
                )
                ui.Label("weight", width=48)
                self._bind(
                    f"{key}.weight",
                    ui.FloatSlider(min=0.0, max=1.0, step=0.05),
                    control.weight,
                    lambda m: s.set_control_weight(name, m.as_float),
                    lambda: s.control(name).weight,
                )
                if name in PRESET_CONTROLS:
                    selected = PRESET_ITEMS.index(control.preset or "default")
                    combo = ui.ComboBox(selected, *PRESET_ITEMS)
                    self._bind_combo(f"{key}.preset", combo, name)
            for label in self.classes:
                self._build_class_rule(name, label)

    def _build_class_rule(self, name: str, label: str) -> None:
        s, key = self.state, f"controls.{name}.classes.{label}"
        value = s.class_weight(name, label)
        with ui.HStack(height=0, spacing=4):
            ui.Label("", width=20)
            on = ui.CheckBox(width=20)
            ui.Label(label, width=_LABEL, tooltip=f"a weight of its own for class {label}")
            slider = ui.FloatSlider(min=0.0, max=1.0, step=0.05)
        self._bind(
            f"{key}.enabled",
            on,
            value is not None,
            lambda m: s.set_class_weight(name, label, slider.model.as_float if m.as_bool else None),
            lambda: s.class_weight(name, label) is not None,
        )
        self._bind(
            f"{key}.value",
            slider,
            1.0 if value is None else value,
            lambda m: s.set_class_weight(name, label, m.as_float) if on.model.as_bool else True,
        )

    def _row(self, text: str, tooltip: str = "") -> None:
        ui.Label(text, width=_LABEL, alignment=ui.Alignment.LEFT_CENTER, tooltip=tooltip)

    def _string(
        self, key: str, text: str, value: str, setter: Callable[[str], bool], tooltip: str = ""
    ) -> None:
        with ui.HStack(height=0):
            self._row(text, tooltip)
            # No restore on refusal: the user is typing, and a half-typed value may be invalid.
            self._bind(key, ui.StringField(tooltip=tooltip), value, lambda m: setter(m.as_string))

    def _button(self, key: str, text: str, fn: Callable[[], None]) -> None:
        self.widgets[key] = ui.Button(text, clicked_fn=fn, height=0)

    # ------------------------------------------------------------------ wiring

    def _bind(
        self,
        key: str,
        widget: Any,
        value: Any,
        write: Callable[[Any], bool],
        current: Callable[[], Any] | None = None,
    ) -> None:
        """Show ``value``, then send each change of the widget through ``write``."""
        widget.model.set_value(value)
        self.widgets[key] = widget
        model = widget.model

        def changed(m: Any) -> None:
            if not self._syncing:
                self._changed(write(m), model, current)

        model.add_value_changed_fn(changed)

    def _bind_combo(self, key: str, combo: Any, name: str) -> None:
        index = combo.model.get_item_value_model()
        self.widgets[key] = combo

        def changed(_model: Any, _item: Any) -> None:
            if not self._syncing:
                ok = self.state.set_control_preset(name, PRESET_ITEMS[index.as_int])
                current = PRESET_ITEMS.index(self.state.control(name).preset or "default")
                self._changed(ok, index, lambda: current)

        combo.model.add_item_changed_fn(changed)

    def _changed(self, ok: bool, model: Any, current: Callable[[], Any] | None) -> None:
        self._show_message(self.state.error)
        if not ok and current is not None:
            self._syncing = True
            try:
                model.set_value(current())
            finally:
                self._syncing = False

    def _add(self) -> None:
        if self.state.add_variation():
            self._variations.rebuild()
        self._show_message(self.state.error)

    def _remove(self, index: int) -> None:
        if self.state.remove_variation(index):
            self._variations.rebuild()
        self._show_message(self.state.error)

    def refresh_classes(self) -> None:
        """Read the stage's semantic classes again and rebuild the class rows."""
        self.classes = self._stage_classes()
        self._controls.rebuild()

    def _stage_classes(self) -> list[str]:
        stage = omni.usd.get_context().get_stage()
        return semantic_classes(stage) if stage is not None else []

    # ------------------------------------------------------------------ actions

    def _start(self, job: Callable[[], Any]) -> None:
        if self._busy:
            self._show_message("a run or preview is already going; cancel it first")
            return
        # Kept: the event loop holds tasks only weakly.
        self._task = asyncio.ensure_future(job())

    async def run_frames(self) -> None:
        """Capture ``state.frames`` frames of the viewport through the writer, then wait for
        generation off the main loop."""
        if self.state.error:
            self._show_message(f"fix this first: {self.state.error}", error=True)
            return
        self._busy, self._cancel_requested = True, False
        loop = asyncio.get_running_loop()
        frames = self.state.frames

        def on_status(status: LiveStatus) -> None:
            loop.call_soon_threadsafe(self._show_status, status, frames)

        writer = None
        try:
            writer = rep.WriterRegistry.get(WRITER_NAME)
            writer.initialize(spec=self.state.spec, models=self._models, on_status=on_status)
            if writer.error is not None:
                self._show_message(writer.error, error=True)
                return
            self._writer = writer
            self._show_message(None)
            # Frames come from step_async only, not from a playing timeline as well.
            rep.orchestrator.set_capture_on_play(False)
            writer.attach([get_active_viewport().render_product_path])
            await omni.kit.app.get_app().next_update_async()
            for _ in range(frames):
                if self._cancel_requested:
                    break
                await rep.orchestrator.step_async()
            # As Isaac Sim's examples do before detaching: the last frames reach write()
            # and Replicator stops, restoring its capture settings. Stopping calls
            # on_final_frame, which starts the last clip on the writer's worker.
            await rep.orchestrator.wait_until_complete_async()
            writer.detach(wait=False)
            finishing = writer.finish_async()
            if finishing is None:  # a frame could not be written: the writer turned off
                self._show_message(writer.error, error=True)
                return
            result = await asyncio.wrap_future(finishing)
            if result.error is None:
                self._set_text("status", f"done: {result.run_dir}")
        except Exception as exc:
            self._show_message(f"run failed: {exc}", error=True)
            if writer is not None:  # stop it and let its threads end
                writer.cancel()
                writer.detach(wait=False)
                writer.finish_async()
        finally:
            self._writer = None
            self._busy = False

    async def preview(self) -> None:
        """Render the viewport once and show it before and after the first variation."""
        self._busy = True
        loop = asyncio.get_running_loop()
        spec = self.state.spec
        try:
            data = await self._render_viewport()
            self._set_text("status", f"preview: loading {spec.model.id!r} and generating")
            model = await loop.run_in_executor(self._executor, self._models.get, spec.model)
            result = await loop.run_in_executor(self._executor, preview_frame, spec, data, model)
            self._before.set_data_array(*rgba_array(result.before))
            self._after.set_data_array(*rgba_array(result.after))
            self._set_text("status", "preview: before | after")
            self._show_message(model.notes[0] if model.notes else None)
        except Exception as exc:
            self._show_message(f"preview failed: {exc}", error=True)
        finally:
            self._busy = False

    async def _render_viewport(self) -> dict[str, Any]:
        """One frame of every annotator the writer reads, from the active viewport."""
        attached = []
        try:
            render_product = get_active_viewport().render_product_path
            for annotator in make_annotators():
                annotator.attach([render_product])
                attached.append(annotator)
            rep.orchestrator.set_capture_on_play(False)
            await rep.orchestrator.step_async()
            # Copies: Replicator reuses the buffers on the next frame.
            data = {
                name: annotator.get_data(do_array_copy=True)
                for name, annotator in zip(ANNOTATORS, attached, strict=True)
            }
            await rep.orchestrator.wait_until_complete_async()
            return data
        finally:
            # Once each: detaching an annotator that is not attached raises (annotators.py).
            for annotator in attached:
                annotator.detach()

    def cancel(self) -> None:
        """Stop capturing; generation stops after the frame it is writing."""
        self._cancel_requested = True
        if self._writer is not None:
            self._writer.cancel()

    def open_output(self) -> None:
        """Open the output folder in the system's file browser."""
        path = Path(self.state.output_dir)
        if not path.is_dir():
            self._show_message(f"{path} does not exist yet: run a capture first", error=True)
            return
        if sys.platform == "win32":
            os.startfile(path)
        else:
            subprocess.Popen(["open" if sys.platform == "darwin" else "xdg-open", str(path)])

    # ------------------------------------------------------------------ feedback

    def _show_status(self, status: LiveStatus, frames: int) -> None:
        variations = len(self.state.spec.variations)
        done = min(status.frames_captured, frames) + status.frames_generated
        self.widgets["progress"].model.set_value(done / (frames * (1 + variations)))
        text = (
            f"captured {status.frames_captured}/{frames}, "
            f"generated {status.frames_generated}/{frames * variations}"
        )
        self._set_text("status", text + (" (cancelled)" if status.cancelled else ""))
        if status.error is not None:
            self._show_message(status.error)
        elif status.notes:
            self._show_message(status.notes[0])

    def _set_text(self, key: str, text: str) -> None:
        if key in self.widgets:
            self.widgets[key].text = text

    def _show_message(self, message: str | None, error: bool = False) -> None:
        self._set_text("message", message or "")
        if message and error:
            carb.log_error(f"{TITLE}: {message}")
