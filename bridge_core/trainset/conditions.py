"""Lighting conditions a layout is rendered under, each with the prompt that describes it.

Light values are in Blender's units (sun: W/m^2, point lamps: W, world: background
strength) and colours are linear RGB. Fog is applied after rendering, from depth, so it
costs nothing in Cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Condition:
    """One lighting set-up: an optional sun, a uniform sky, optional ceiling lamps, fog."""

    name: str
    prompt: str
    sky_color: RGB
    sky_strength: float
    sun_strength: float = 0.0  # 0: no sun
    sun_elevation: float = 55.0  # degrees above the horizon
    sun_azimuth: float = 30.0  # degrees from +X towards +Y
    sun_color: RGB = (1.0, 0.95, 0.88)
    lamp_power: float = 0.0  # W per lamp; 0: no lamps
    lamp_color: RGB = (1.0, 0.5, 0.12)  # low-pressure sodium orange
    lamp_grid: tuple[int, int] = (3, 2)  # lamps along x and y under the roof
    fog_color: RGB = (0.6, 0.6, 0.6)
    fog_distance: float = 0.0  # metres at which 63% of the colour is fog; 0: no fog


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition(
            name="daylight",
            prompt="A warehouse in bright daylight streaming through skylights, photorealistic.",
            sky_color=(0.55, 0.7, 1.0),
            sky_strength=1.2,
            sun_strength=4.0,
        ),
        Condition(
            name="night",
            prompt="A warehouse at night lit by orange sodium-vapour lamps, photorealistic.",
            sky_color=(0.02, 0.03, 0.06),
            sky_strength=0.05,
            lamp_power=250.0,
        ),
        Condition(
            name="fog",
            prompt="A hazy warehouse filled with thick grey fog, photorealistic.",
            sky_color=(0.75, 0.78, 0.8),
            sky_strength=1.0,
            sun_strength=1.0,
            sun_elevation=70.0,
            fog_color=(0.55, 0.57, 0.6),
            fog_distance=14.0,
        ),
        Condition(
            name="overcast",
            prompt="A warehouse under cold, overcast bluish light, photorealistic.",
            sky_color=(0.5, 0.62, 0.85),
            sky_strength=1.3,
        ),
    )
}
