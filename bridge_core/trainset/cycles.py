"""Target frames for a layout: Blender Cycles (bpy, CPU) renders the same USD stage and camera.

The stage is imported once; per lighting condition only the lights and world change, so
Cycles keeps its scene (persistent data) across frames and conditions. Blender's USD importer
maps time code t to frame t and keeps the camera's film and focal length, so the renders are
pixel-aligned with the capture's controls. Cycles' Depth pass is the distance to the image
plane (checked against the capture's distance_to_image_plane), written once per frame.

bpy is imported inside the functions: importing bridge_core must not need Blender.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bridge_core.trainset.conditions import CONDITIONS, Condition
from bridge_core.trainset.layouts import CAMERA, CLASSES

BACKGROUND_DEPTH = 1e9  # Cycles writes 1e10 where a ray hits nothing
# Per class: (principled roughness, texture kind, texture scale, texture contrast). The
# texture modulates the stage's displayColor so parts keep their authored colours.
SURFACES: dict[str, tuple[float, str, float, float]] = {
    "floor": (0.8, "noise", 1.5, 0.35),  # concrete
    "wall": (0.9, "noise", 3.0, 0.12),  # plaster
    "shelf": (0.4, "noise", 20.0, 0.05),  # painted metal
    "pallet": (0.7, "wave", 4.0, 0.35),  # wood grain
    "box": (0.85, "noise", 12.0, 0.15),  # cardboard
    "forklift": (0.35, "noise", 20.0, 0.05),  # painted metal
    "person": (0.95, "noise", 40.0, 0.1),  # fabric
}
_NAME = re.compile(r"^(?P<cls>[a-z]+)_\d+(\.\d+)?$")


def _import_bpy() -> Any:
    try:
        import bpy
    except ImportError as exc:
        raise ImportError("rendering targets needs Blender as a module: pip install bpy") from exc
    return bpy


def class_of(name: str, parent_names: Sequence[str]) -> str | None:
    """The class of a Blender object from its own name or its nearest ancestor's, since the
    importer drops USD semantics but keeps prim names (``box_012``, ``box_012.001``)."""
    for candidate in (name, *parent_names):
        match = _NAME.match(candidate)
        if match and match["cls"] in CLASSES:
            return match["cls"]
    return None


def ray_length_scale(size: tuple[int, int], focal_mm: float, film_mm: float) -> np.ndarray:
    """[H,W] ratio of ray length to planar depth through each pixel centre (horizontal film
    fit, as the capture and Blender both use)."""
    w, h = size
    pixel = film_mm / w  # mm per pixel on the film
    x = (np.arange(w) + 0.5 - w / 2) * pixel / focal_mm
    y = (np.arange(h) + 0.5 - h / 2) * pixel / focal_mm
    return np.sqrt(1.0 + x[None, :] ** 2 + y[:, None] ** 2)


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def apply_fog(
    rgb: np.ndarray, distance: np.ndarray, color: Sequence[float], scale: float
) -> np.ndarray:
    """Blend [H,W,3] uint8 sRGB towards linear ``color`` by exp(-distance / scale) per pixel
    (distance [H,W] metres along the ray, inf where nothing is hit: pure fog)."""
    transmit = np.exp(-np.nan_to_num(distance, posinf=np.inf) / scale)[..., None]
    linear = _srgb_to_linear(rgb.astype(np.float64) / 255.0)
    fogged = linear * transmit + np.asarray(color, np.float64) * (1.0 - transmit)
    return np.round(_linear_to_srgb(fogged) * 255.0).astype(np.uint8)


def _surface_material(bpy: Any, cls: str) -> Any:
    """Principled BSDF over displayColor, shifted per object by its ``color`` (r: hue offset
    + 0.5, g: value scale, b: roughness offset + 0.5) and modulated by a procedural texture."""
    roughness, kind, scale, contrast = SURFACES[cls]
    mat = bpy.data.materials.new(f"trainset_{cls}")
    tree = mat.node_tree
    nodes, links = tree.nodes, tree.links
    bsdf = nodes.get("Principled BSDF") or nodes.new("ShaderNodeBsdfPrincipled")
    if nodes.get("Material Output") is None:
        links.new(bsdf.outputs[0], nodes.new("ShaderNodeOutputMaterial").inputs["Surface"])
    attr = nodes.new("ShaderNodeAttribute")
    attr.attribute_name = "displayColor"
    info = nodes.new("ShaderNodeObjectInfo")
    jitter = nodes.new("ShaderNodeSeparateColor")
    links.new(info.outputs["Color"], jitter.inputs[0])
    hsv = nodes.new("ShaderNodeHueSaturation")
    links.new(attr.outputs["Color"], hsv.inputs["Color"])
    links.new(jitter.outputs[0], hsv.inputs["Hue"])
    links.new(jitter.outputs[1], hsv.inputs["Value"])

    coords = nodes.new("ShaderNodeTexCoord")
    if kind == "wave":
        tex = nodes.new("ShaderNodeTexWave")
        tex.inputs["Distortion"].default_value = 6.0
    else:
        tex = nodes.new("ShaderNodeTexNoise")
        tex.inputs["Detail"].default_value = 6.0
    links.new(coords.outputs["Object"], tex.inputs["Vector"])
    tex.inputs["Scale"].default_value = scale
    # Texture 0..1 -> brightness factor 1 +- contrast around 1.
    gain = nodes.new("ShaderNodeMapRange")
    links.new(tex.outputs["Fac"], gain.inputs["Value"])
    gain.inputs["To Min"].default_value = 1.0 - contrast
    gain.inputs["To Max"].default_value = 1.0 + contrast
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.inputs["Factor"].default_value = 1.0
    links.new(hsv.outputs["Color"], mix.inputs["A"])
    links.new(gain.outputs["Result"], mix.inputs["B"])
    links.new(mix.outputs["Result"], bsdf.inputs["Base Color"])

    rough = nodes.new("ShaderNodeMath")
    rough.operation = "ADD"
    rough.inputs[1].default_value = roughness - 0.5
    links.new(jitter.outputs[2], rough.inputs[0])
    links.new(rough.outputs[0], bsdf.inputs["Roughness"])
    if cls == "person":
        bsdf.inputs["Sheen Weight"].default_value = 0.5
    return mat


def _assign_materials(bpy: Any, seed: int) -> None:
    """One material per class; each object gets a seeded hue/value/roughness jitter."""
    rng = np.random.default_rng(seed)
    materials = {cls: _surface_material(bpy, cls) for cls in SURFACES}
    for obj in sorted(bpy.data.objects, key=lambda o: o.name):
        if obj.type != "MESH":
            continue
        parents, p = [], obj.parent
        while p is not None:
            parents.append(p.name)
            p = p.parent
        cls = class_of(obj.name, parents)
        if cls is None:
            continue
        obj.data.materials.clear()
        obj.data.materials.append(materials[cls])
        hue, value, rough = (
            rng.uniform(-0.03, 0.03),
            rng.uniform(0.85, 1.15),
            rng.uniform(-0.1, 0.1),
        )
        obj.color = (0.5 + hue, value, 0.5 + rough, 1.0)


def _configure(
    bpy: Any, scene: Any, size: tuple[int, int], samples: int, seed: int, denoise: bool
) -> None:
    render = scene.render
    render.engine = "CYCLES"
    render.resolution_x, render.resolution_y = size
    render.resolution_percentage = 100
    render.threads_mode = "FIXED"
    render.threads = os.cpu_count() or 1
    render.use_persistent_data = True  # keep the BVH and shaders across frames/conditions
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGB"
    render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.samples = samples
    cycles.seed = seed
    cycles.use_denoising = denoise
    cycles.denoiser = "OPENIMAGEDENOISE"
    # Few bounces: diffuse interiors converge fine with 2 and it halves the path cost.
    cycles.max_bounces = 4
    cycles.diffuse_bounces = 2
    cycles.glossy_bounces = 2
    cycles.transmission_bounces = 0
    cycles.volume_bounces = 0
    cycles.transparent_max_bounces = 2
    cycles.caustics_reflective = False
    cycles.caustics_refractive = False
    scene.view_layers[0].use_pass_z = True


def _depth_output(bpy: Any, scene: Any, folder: Path) -> Any:
    """Compositor: the render goes to the group output, the Depth pass to a float EXR
    ``folder/depth.exr`` (one file, rewritten every frame). Returns the file output node."""
    tree = bpy.data.node_groups.new("trainset", "CompositorNodeTree")
    scene.compositing_node_group = tree
    layers = tree.nodes.new("CompositorNodeRLayers")
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    tree.links.new(layers.outputs["Image"], tree.nodes.new("NodeGroupOutput").inputs[0])
    out = tree.nodes.new("CompositorNodeOutputFile")
    out.directory = str(folder)
    out.file_name = "depth"
    out.format.media_type = "IMAGE"
    out.format.file_format = "OPEN_EXR"
    out.format.color_depth = "32"
    out.file_output_items.new("FLOAT", "z")
    tree.links.new(layers.outputs["Depth"], out.inputs["z"])
    return out


def _read_depth(bpy: Any, folder: Path, size: tuple[int, int]) -> np.ndarray:
    """[H,W] float32 metres from the EXR the compositor wrote, inf where nothing was hit."""
    (path,) = folder.glob("*.exr")
    image = bpy.data.images.load(str(path))
    w, h = size
    pixels = np.empty(w * h * image.channels, np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    path.unlink()
    depth = pixels.reshape(h, w, -1)[::-1, :, 0].copy()  # Blender images are stored bottom-up
    depth[depth > BACKGROUND_DEPTH] = np.inf
    return depth


def _bounds(bpy: Any) -> tuple[np.ndarray, np.ndarray]:
    """World-space (min, max) corners over the walls (all meshes if there are none)."""
    import mathutils

    objs = [o for o in bpy.data.objects if o.type == "MESH"]
    walls = [o for o in objs if o.name.startswith("wall_")] or objs
    corners = [o.matrix_world @ mathutils.Vector(c) for o in walls for c in o.bound_box]
    corners = np.array([tuple(c) for c in corners])
    return corners.min(axis=0), corners.max(axis=0)


def _set_lighting(
    bpy: Any, scene: Any, cond: Condition, bounds: tuple[np.ndarray, np.ndarray]
) -> None:
    """Replace the lights and world with those of ``cond``."""
    import mathutils

    for obj in [o for o in bpy.data.objects if o.type == "LIGHT"]:
        bpy.data.objects.remove(obj)
    world = scene.world or bpy.data.worlds.new("trainset")  # new worlds come with nodes
    scene.world = world
    background = world.node_tree.nodes.get("Background")
    background.inputs["Color"].default_value = (*cond.sky_color, 1.0)
    background.inputs["Strength"].default_value = cond.sky_strength

    if cond.sun_strength > 0:
        light = bpy.data.lights.new("sun", "SUN")
        light.energy = cond.sun_strength
        light.color = cond.sun_color
        light.angle = np.radians(2.0)
        sun = bpy.data.objects.new("sun", light)
        e, a = np.radians(cond.sun_elevation), np.radians(cond.sun_azimuth)
        towards = mathutils.Vector((-np.cos(e) * np.cos(a), -np.cos(e) * np.sin(a), -np.sin(e)))
        sun.rotation_euler = towards.to_track_quat("-Z", "Y").to_euler()
        scene.collection.objects.link(sun)
    if cond.lamp_power > 0:
        lo, hi = bounds
        nx, ny = cond.lamp_grid
        for i in range(nx):
            for j in range(ny):
                light = bpy.data.lights.new(f"lamp_{i}{j}", "POINT")
                light.energy = cond.lamp_power
                light.color = cond.lamp_color
                light.shadow_soft_size = 0.25
                lamp = bpy.data.objects.new(f"lamp_{i}{j}", light)
                lamp.location = (
                    lo[0] + (i + 0.5) / nx * (hi[0] - lo[0]),
                    lo[1] + (j + 0.5) / ny * (hi[1] - lo[1]),
                    lo[2] + 0.85 * (hi[2] - lo[2]),
                )
                scene.collection.objects.link(lamp)


def render_layout(
    stage_path: Path,
    size: tuple[int, int],
    conditions: Sequence[str],
    out_dir: Path,
    samples: int = 16,
    seed: int = 0,
    denoise: bool = True,
) -> None:
    """Render every time code of the stage's :data:`CAMERA` under each condition.

    Writes ``out_dir/<condition>/rgb_{t:04d}.png`` ([H,W,3] 8-bit sRGB) and, once,
    ``out_dir/depth_{t:04d}.npy`` ([H,W] float32 metres to the image plane, inf = no hit).
    ``size`` is (width, height); ``seed`` fixes the material jitter and Cycles' sampling.
    """
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown or not conditions:
        raise ValueError(f"conditions must be some of {sorted(CONDITIONS)}, got {list(conditions)}")
    bpy = _import_bpy()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.wm.usd_import(filepath=str(stage_path), import_cameras=True, set_frame_range=True)
    scene = bpy.context.scene
    camera = bpy.data.objects.get(CAMERA.rsplit("/", 1)[-1])
    if camera is None or camera.type != "CAMERA":
        raise ValueError(f"{stage_path} has no camera at {CAMERA}")
    scene.camera = camera
    _configure(bpy, scene, size, samples, seed, denoise)
    _assign_materials(bpy, seed)
    bounds = _bounds(bpy)
    frames = range(scene.frame_start, scene.frame_end + 1)
    # Blender keeps the film in its own units; only the ratio matters for the ray angles.
    distance_scale = ray_length_scale(size, camera.data.lens, camera.data.sensor_width)

    with tempfile.TemporaryDirectory() as tmp:
        depth_node = _depth_output(bpy, scene, Path(tmp))
        depths: dict[int, np.ndarray] = {}
        for name in conditions:
            cond = CONDITIONS[name]
            _set_lighting(bpy, scene, cond, bounds)
            folder = out_dir / name
            folder.mkdir(exist_ok=True)
            for t in frames:
                scene.frame_set(t)
                path = folder / f"rgb_{t:04d}.png"
                scene.render.filepath = str(path)
                bpy.ops.render.render(write_still=True)
                if t not in depths:
                    depths[t] = _read_depth(bpy, Path(tmp), size)
                    np.save(out_dir / f"depth_{t:04d}.npy", depths[t])
                if cond.fog_distance > 0:
                    rgb = cv2.imread(str(path))[..., ::-1]
                    fogged = apply_fog(
                        rgb, depths[t] * distance_scale, cond.fog_color, cond.fog_distance
                    )
                    cv2.imwrite(str(path), fogged[..., ::-1])
            # Depth is the same under every light: stop writing it after the first condition.
            depth_node.mute = True
