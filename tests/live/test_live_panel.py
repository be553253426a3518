"""The extension and its panel against the omni stand-in: lifecycle, wiring, runs, preview."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from live_data import EXT_DIR, FRAMES
from pxr import Sdf, Usd

from bridge_core.live.models import ModelCache
from bridge_core.run.layout import RUNS_FOLDER

STUB_DIR = EXT_DIR.parents[1] / "tests" / "live" / "omni_stub"


def _stage() -> Usd.Stage:
    """Two labelled prims, one per schema: UsdSemantics LabelsAPI and legacy Semantics."""
    stage = Usd.Stage.CreateInMemory()
    forklift = stage.DefinePrim("/World/Forklift", "Xform")
    forklift.CreateAttribute("semantics:labels:class", Sdf.ValueTypeNames.TokenArray).Set(
        ["forklift"]
    )
    pallet = stage.DefinePrim("/World/Pallet", "Cube")
    prefix = "semantic:Semantics:params:"
    pallet.CreateAttribute(prefix + "semanticType", Sdf.ValueTypeNames.String).Set("class")
    pallet.CreateAttribute(prefix + "semanticData", Sdf.ValueTypeNames.String).Set("pallet")
    return stage


@pytest.fixture
def panel(kit, tmp_path):
    from cosmos.transfer.bridge.panel import CosmosTransferPanel
    from cosmos.transfer.bridge.writer import CosmosTransferWriter

    kit.rep.WriterRegistry.register(CosmosTransferWriter)  # as the extension does
    kit.usd.stage = _stage()
    panel = CosmosTransferPanel(output_dir=str(tmp_path / "cap"))
    kit.ui.draw()  # Kit draws the window: its frames build their rows
    yield panel
    panel.destroy()


def _flat_data(frame: dict) -> dict:
    """What each attached annotator returns for one frame of one render product."""
    return {k: v for k, v in frame.items() if k not in ("trigger_outputs", "reference_time")}


async def _click(panel, key: str) -> None:
    """Press a panel button and wait for the run or preview it started."""
    panel.widgets[key].call_clicked_fn()
    if panel._task is not None:
        await asyncio.gather(panel._task, return_exceptions=True)


def test_extension_toml_names_a_module_that_exists():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((EXT_DIR / "config" / "extension.toml").read_text())
    package = config["package"]
    assert (EXT_DIR / package["readme"]).is_file() and (EXT_DIR / package["changelog"]).is_file()
    assert config["dependencies"]["omni.kit.uiapp"] == {"optional": True}
    assert "omni.replicator.core" in config["dependencies"]
    (module,) = config["python"]["module"]
    assert (EXT_DIR / module["name"].replace(".", "/") / "extension.py").is_file()
    assert config["settings"]["exts"]["cosmos.transfer.bridge"]["show_panel"] is True
    assert config["test"]
    # omni.kit.pipapi ignores requirements unless use_online_index is on, and with it on pip
    # installs them into Kit's own folder without seeing the app's torch (a second torch):
    # the package is installed beforehand instead (docs/README.md).
    assert not config["python"].get("pipapi", {}).get("requirements")


def test_extension_without_the_package_says_how_to_install(tmp_path):
    # A Python that has only the omni stand-in and the extension: no bridge_core.
    script = f"""
import json, sys
sys.path[:0] = [{str(STUB_DIR)!r}, {str(EXT_DIR)!r}]
import carb, omni.replicator.core as rep
from cosmos.transfer.bridge import CosmosTransferBridgeExtension
ext = CosmosTransferBridgeExtension()
ext.on_startup("cosmos.transfer.bridge-0.1.1")
ext.on_shutdown()
print(json.dumps({{"log": carb.messages, "writers": list(rep.WriterRegistry.get_writers())}}))
"""
    # -I -S: no site-packages (so no numpy either; the stand-in must not need it to say so).
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    errors = [msg for level, msg in out["log"] if level == "error"]
    assert len(errors) == 1 and "not installed" in errors[0] and "pip install" in errors[0]
    assert out["writers"] == []


def test_extension_registers_writer_opens_panel_and_undoes_both(kit):
    from cosmos.transfer.bridge import CosmosTransferBridgeExtension

    ext = CosmosTransferBridgeExtension()
    ext.on_startup("cosmos.transfer.bridge-0.1.0")
    assert "CosmosTransferWriter" in kit.rep.WriterRegistry.get_writers()
    window = ext._panel.window
    assert window.title == "Cosmos Transfer" and not window.destroyed
    ext.on_shutdown()
    assert "CosmosTransferWriter" not in kit.rep.WriterRegistry.get_writers()
    assert window.destroyed and ext._panel is None


def test_extension_loads_headless_without_omni_ui(kit, monkeypatch):
    from cosmos.transfer.bridge import CosmosTransferBridgeExtension

    monkeypatch.setitem(sys.modules, "omni.ui", None)  # import fails
    ext = CosmosTransferBridgeExtension()
    ext.on_startup("cosmos.transfer.bridge-0.1.0")
    assert ext._panel is None
    assert "CosmosTransferWriter" in kit.rep.WriterRegistry.get_writers()
    ext.on_shutdown()


def test_each_widget_changes_its_spec_field(kit, panel, tmp_path):
    w, state = panel.widgets, panel.state
    w["input.dataset"].model.set_value(str(tmp_path / "elsewhere"))
    assert state.output_dir == str(tmp_path / "elsewhere")
    w["output.run_name"].model.set_value("rainy")
    assert state.spec.output.run_name == "rainy"
    w["model.id"].model.set_value("tiny")
    assert state.spec.model.id == "tiny"
    w["model.num_steps"].model.set_value(4)
    assert state.spec.model.num_steps == 4
    w["frames"].model.set_value(12)
    assert state.frames == 12

    w["variations.0.name"].model.set_value("fog")
    w["variations.0.prompt"].model.set_value("dense fog")
    w["variations.0.seed"].model.set_value(9)
    assert state.spec.variations[0].model_dump(include={"name", "prompt", "seed"}) == {
        "name": "fog",
        "prompt": "dense fog",
        "seed": 9,
    }
    w["variations.add"].call_clicked_fn()
    kit.ui.draw()  # the new rows appear when Kit next draws
    assert len(state.spec.variations) == 2 and "variations.1.prompt" in w
    w["variations.1.prompt"].model.set_value("snow")
    assert state.spec.variations[1].prompt == "snow"
    w["variations.0.remove"].call_clicked_fn()
    kit.ui.draw()
    assert [v.prompt for v in state.spec.variations] == ["snow"]
    assert "variations.1.name" not in w

    for name in ("edge", "depth", "seg", "blur"):
        w[f"controls.{name}.weight"].model.set_value(0.25)
        assert state.spec.controls[name].weight == 0.25
        w[f"controls.{name}.enabled"].model.set_value(False)
        assert not state.spec.controls[name].enabled
        w[f"controls.{name}.enabled"].model.set_value(True)
        assert state.spec.controls[name].enabled
    for name in ("edge", "blur"):
        w[f"controls.{name}.preset"].model.get_item_value_model().set_value(4)
        assert state.spec.controls[name].preset == "high"
        w[f"controls.{name}.preset"].model.get_item_value_model().set_value(0)
        assert state.spec.controls[name].preset is None
    assert "controls.depth.preset" not in w


def test_class_rules_come_from_both_label_schemas(panel):
    assert panel.classes == ["forklift", "pallet"]
    w, state = panel.widgets, panel.state
    w["controls.seg.classes.pallet.value"].model.set_value(0.7)
    assert state.class_weight("seg", "pallet") is None  # off until ticked
    w["controls.seg.classes.pallet.enabled"].model.set_value(True)
    assert state.class_weight("seg", "pallet") == pytest.approx(0.7)
    w["controls.seg.classes.pallet.value"].model.set_value(0.2)
    rules = state.spec.controls["seg"].rules
    assert [(r.classes, r.value) for r in rules] == [(["pallet"], pytest.approx(0.2))]
    w["controls.seg.classes.pallet.enabled"].model.set_value(False)
    assert state.spec.controls["seg"].rules == []


def test_refused_value_is_explained_and_the_widget_restored(panel):
    w = panel.widgets
    for name in ("edge", "depth", "seg"):
        w[f"controls.{name}.enabled"].model.set_value(False)
    w["controls.blur.enabled"].model.set_value(False)
    assert "enable at least one" in w["message"].text
    assert w["controls.blur.enabled"].model.as_bool and panel.state.spec.controls["blur"].enabled
    w["output.run_name"].model.set_value("../up")
    assert "escape the output folder" in w["message"].text
    assert panel.state.spec.output.run_name == "run"
    w["frames"].model.set_value(0)
    assert w["frames"].model.as_int == panel.state.frames == 30


def test_run_captures_frames_and_waits_off_the_main_loop(kit, panel, recording, flat_frames):
    model = recording[0]
    panel._models = ModelCache(lambda _spec: recording[1])
    w = panel.widgets
    w["frames"].model.set_value(FRAMES)
    w["input.dataset"].model.set_value(panel.state.output_dir)
    kit.rep.orchestrator.frame_source = iter(flat_frames).__next__
    asyncio.run(panel.run_frames())
    assert w["progress"].model.as_float == pytest.approx(1.0)
    assert w["status"].text.startswith("done:")
    run = panel.state.spec.input.dataset / RUNS_FOLDER / "run"
    variation = panel.state.spec.variations[0].name
    assert len(list((run / variation).glob("rgb_*.png"))) == FRAMES
    assert sum(frames for _thread, frames in model.calls) == FRAMES
    assert kit.rep.WriterRegistry._active_writers == []
    # Frames come from the panel's steps only, not also from a playing timeline.
    assert kit.rep.orchestrator.capture_on_play is False


def test_run_stops_replicator_and_kit_keeps_running_while_generating(
    kit, panel, recording, flat_frames
):
    model = recording[0]
    panel._models = ModelCache(lambda _spec: recording[1])
    panel.widgets["frames"].model.set_value(FRAMES)
    kit.rep.orchestrator.frame_source = iter(flat_frames).__next__
    model.release.clear()  # generation holds until the loop has been seen running
    safety = threading.Timer(5, model.release.set)  # a frozen loop fails instead of hanging
    safety.start()

    async def run() -> int:
        task = asyncio.ensure_future(panel.run_frames())
        updates_while_generating = 0
        while not task.done():
            await asyncio.sleep(0.01)  # one update of Kit's main loop
            if model.generating.is_set() and not model.release.is_set():
                updates_while_generating += 1
                if updates_while_generating == 3:
                    model.release.set()
        await task
        return updates_while_generating

    try:
        assert asyncio.run(run()) == 3
    finally:
        safety.cancel()
    # The panel waited for Replicator: stopped, and the writer's last clip generated.
    assert kit.rep.orchestrator.status == kit.rep.Status.STOPPED
    assert panel.widgets["status"].text.startswith("done:")
    assert sum(frames for _thread, frames in model.calls) == FRAMES


def test_run_reports_a_bad_output_folder_in_the_panel(kit, panel, tmp_path):
    (tmp_path / "file").write_text("")
    panel.widgets["input.dataset"].model.set_value(str(tmp_path / "file" / "cap"))
    asyncio.run(panel.run_frames())
    assert "cannot write to the output folder" in panel.widgets["message"].text
    assert any("cannot write" in msg for level, msg in kit.carb.messages if level == "error")


def test_preview_shows_before_and_after(kit, panel, recording, flat_frames):
    panel._models = ModelCache(lambda _spec: recording[1])
    kit.rep.orchestrator.annotator_data = _flat_data(flat_frames[0])
    asyncio.run(panel.preview())
    assert panel.widgets["message"].text == ""
    assert panel._before.size == [96, 54] and panel._after.size == [96, 54]
    # The pictures go to omni.ui as arrays: the rendered frame, opaque, and the model's grey.
    before, after = panel._before.data, panel._after.data
    assert isinstance(before, np.ndarray) and before.shape == (54, 96, 4)
    assert np.array_equal(before[..., :3], flat_frames[0]["rgb"][..., :3])
    assert (before[..., 3] == 255).all() and (after[..., :3] == 128).all()
    assert recording[0].calls and recording[0].calls[0][0] != threading.get_ident()


def test_preview_can_be_pressed_again(kit, panel, recording, flat_frames):
    panel._models = ModelCache(lambda _spec: recording[1])
    kit.rep.orchestrator.annotator_data = _flat_data(flat_frames[0])

    async def press_twice() -> None:
        await _click(panel, "preview")
        panel.widgets["status"].text = ""
        await _click(panel, "preview")

    asyncio.run(press_twice())
    assert panel.widgets["message"].text == ""
    assert panel.widgets["status"].text == "preview: before | after"
    assert len(recording[0].calls) == 2


def test_window_menu_reopens_the_closed_panel(kit):
    import omni.kit.menu.utils as menu_utils
    from cosmos.transfer.bridge import CosmosTransferBridgeExtension

    ext = CosmosTransferBridgeExtension()
    ext.on_startup("cosmos.transfer.bridge-0.1.1")
    window = ext._panel.window
    (entry,) = [item for item in menu_utils.menus["Window"] if item.name == "Cosmos Transfer"]
    window.visible = False  # the user closes the window
    assert not entry.ticked_fn()
    entry.onclick_fn()
    assert window.visible and entry.ticked_fn()
    ext.on_shutdown()
    assert entry not in menu_utils.menus["Window"]


def test_shutdown_cancels_a_capture_and_waits_for_its_threads(
    kit, recording, flat_frames, tmp_path
):
    from cosmos.transfer.bridge import CosmosTransferBridgeExtension

    model = recording[0]
    threads_before = set(threading.enumerate())
    ext = CosmosTransferBridgeExtension()
    ext.on_startup("cosmos.transfer.bridge-0.1.1")
    # A script's capture, still generating when the extension is disabled.
    writer = kit.rep.WriterRegistry.get("CosmosTransferWriter")
    writer.initialize(
        output_dir=tmp_path / "cap",
        controls={"edge": {}},
        variations=[{"name": "dusk", "prompt": "dusk"}],
        clip_length=3,
        models=ModelCache(lambda _spec: recording[1]),
    )
    writer.attach(["/Render/RenderProduct_Replicator"])
    model.release.clear()
    kit.rep.orchestrator.frame_source = iter(flat_frames).__next__
    for _ in range(FRAMES):
        kit.rep.orchestrator.step()
    assert model.generating.wait(5)  # the first clip is being generated
    threading.Timer(0.2, model.release.set).start()
    ext.on_shutdown()
    status = writer.status
    assert status.finished and status.cancelled
    assert len(model.calls) == 1  # the clip being generated finished; the rest was cancelled
    assert (tmp_path / "cap" / f"rgb_{FRAMES - 1:04d}.png").is_file()  # ground truth complete
    assert kit.rep.WriterRegistry._active_writers == []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _capture_threads(threads_before):
        time.sleep(0.01)
    assert not _capture_threads(threads_before)


def _capture_threads(before: set[threading.Thread]) -> list[str]:
    """The writer threads started since ``before`` that are still alive."""
    prefixes = ("cosmos-transfer-gen", "cosmos-transfer-io")
    return [t.name for t in set(threading.enumerate()) - before if t.name.startswith(prefixes)]


def test_open_output_folder(panel, monkeypatch, tmp_path):
    opened = []
    monkeypatch.setattr("subprocess.Popen", opened.append)
    panel.open_output()
    assert "does not exist yet" in panel.widgets["message"].text and not opened
    (tmp_path / "cap").mkdir()
    panel.open_output()
    assert opened and opened[0][-1] == str(tmp_path / "cap")


def test_run_reports_a_model_that_cannot_load(kit, panel, tmp_path):
    missing = tmp_path / "no" / "such" / "model"
    panel.widgets["model.id"].model.set_value(str(missing))
    asyncio.run(panel.run_frames())
    assert "cannot load model" in panel.widgets["message"].text
    assert not panel.widgets["status"].text.startswith("done")
