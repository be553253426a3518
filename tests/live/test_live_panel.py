"""The extension and its panel against the omni stand-in: lifecycle, wiring, runs, preview."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest
from live_data import EXT_DIR, FRAMES
from pxr import Sdf, Usd

from bridge_core.live.models import ModelCache
from bridge_core.run.layout import RUNS_FOLDER


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
    from cosmos.transfer.bridge import CosmosTransferWriter
    from cosmos.transfer.bridge.panel import CosmosTransferPanel

    kit.rep.WriterRegistry.register(CosmosTransferWriter)  # as the extension does
    kit.usd.stage = _stage()
    panel = CosmosTransferPanel(output_dir=str(tmp_path / "cap"))
    yield panel
    panel.destroy()


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


def test_each_widget_changes_its_spec_field(panel, tmp_path):
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
    assert len(state.spec.variations) == 2 and "variations.1.prompt" in w
    w["variations.1.prompt"].model.set_value("snow")
    assert state.spec.variations[1].prompt == "snow"
    w["variations.0.remove"].call_clicked_fn()
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


def test_run_reports_a_bad_output_folder_in_the_panel(kit, panel, tmp_path):
    (tmp_path / "file").write_text("")
    panel.widgets["input.dataset"].model.set_value(str(tmp_path / "file" / "cap"))
    asyncio.run(panel.run_frames())
    assert "cannot write to the output folder" in panel.widgets["message"].text
    assert any("cannot write" in msg for level, msg in kit.carb.messages if level == "error")


def test_preview_shows_before_and_after(kit, panel, recording, flat_frames):
    panel._models = ModelCache(lambda _spec: recording[1])
    kit.rep.orchestrator.annotator_data = {
        name: value
        for name, value in flat_frames[0].items()
        if name not in ("trigger_outputs", "reference_time")
    }
    asyncio.run(panel.preview())
    assert panel.widgets["message"].text == ""
    assert panel._before.size == [96, 54] and panel._after.size == [96, 54]
    assert len(panel._after.data) == 96 * 54 * 4
    assert recording[0].calls and recording[0].calls[0][0] != threading.get_ident()


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
