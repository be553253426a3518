"""The extension started inside Kit: writer registered, panel window open."""

import omni.kit.test
import omni.replicator.core as rep
import omni.ui as ui

from ..panel import TITLE
from ..writer import WRITER_NAME


class TestExtension(omni.kit.test.AsyncTestCase):
    async def test_writer_is_registered(self) -> None:
        self.assertIn(WRITER_NAME, rep.WriterRegistry.get_writers())

    async def test_panel_is_open(self) -> None:
        self.assertIsNotNone(ui.Workspace.get_window(TITLE))
