"""``cosmos-bridge capture``: render a BasicWriter dataset from a USD scene, headless.

Registered by bridge_core/cli.py; pxr and warp are imported only when the command runs, so
the rest of the CLI works without the ``capture`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bridge_core.errors import BridgeError, InputError
from bridge_core.outputs import staged_folder
from bridge_core.terminal import console, progress_bar


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1280x704"`` -> (1280, 704); InputError naming --resolution otherwise."""
    width, sep, height = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        size = int(width), int(height)
    except ValueError:
        raise InputError(f"expected WIDTHxHEIGHT, got {text!r}", None, "--resolution") from None
    if min(size) <= 0:
        raise InputError(f"width and height must be positive, got {text!r}", None, "--resolution")
    return size


def capture(
    scene: Annotated[Path, typer.Argument(help="USD scene (.usd, .usda, .usdc, .usdz).")],
    camera: Annotated[
        list[str],
        typer.Option(help="Camera prim path; repeat for several (one render product each)."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder to write (created).")],
    frames: Annotated[
        str | None,
        typer.Option(help="Time codes START:STOP (stop excluded); default: the whole stage."),
    ] = None,
    resolution: Annotated[str, typer.Option(help="WIDTHxHEIGHT in pixels.")] = "1280x704",
    device: Annotated[str, typer.Option(help="Warp device: cpu, cuda or cuda:N.")] = "cpu",
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out.")] = False,
) -> None:
    """Capture depth, segmentation, normals, camera params and shaded RGB from a USD scene in
    Replicator BasicWriter layout (flat for one camera, one folder per camera otherwise)."""
    from bridge_core.spec.models import parse_frames

    try:
        from bridge_core.capture.capture import capture_scene, resolve_time_codes
        from bridge_core.capture.scene import read_scene
    except ImportError as exc:
        raise BridgeError(
            f"capture needs usd-core and warp-lang ({exc}); "
            "install them with: pip install 'cosmos-transfer-bridge[capture]'"
        ) from exc
    try:
        frame_range = parse_frames(frames)
    except ValueError as exc:
        raise InputError(str(exc), None, "--frames") from exc
    size = parse_resolution(resolution)
    loaded = read_scene(scene)
    # Checked before anything is written: a bad range leaves --out untouched.
    views = len(resolve_time_codes(loaded, frame_range)) * len(camera)
    with (
        staged_folder(out, overwrite, [scene]) as staging,
        progress_bar() as progress,
    ):
        task = progress.add_task(f"capturing {scene.name}", total=views)
        result = capture_scene(
            loaded,
            camera,
            staging,
            frame_range,
            size,
            device,
            lambda: progress.advance(task),
        )
    per_view = 1000 * result.seconds / max(result.views, 1)
    console.print(
        f"wrote {len(result.time_codes)} frame(s) x {len(camera)} camera(s) at "
        f"{size[0]}x{size[1]} to [bold]{out}[/] ({per_view:.0f} ms per view on {device})"
    )
    if len(camera) > 1:
        for product, prim in result.render_products.items():
            console.print(f"  {product}: {prim}")
