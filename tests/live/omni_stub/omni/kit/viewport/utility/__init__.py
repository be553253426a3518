"""omni.kit.viewport.utility: the active viewport and its render product."""

from __future__ import annotations


class _Viewport:
    render_product_path = "/Render/RenderProduct_Viewport"


def get_active_viewport() -> _Viewport:
    return _Viewport()
