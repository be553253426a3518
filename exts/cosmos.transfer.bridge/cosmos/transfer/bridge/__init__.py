"""cosmos.transfer.bridge: the Kit extension (lifecycle, Replicator writer, omni.ui panel).

``cosmos`` and ``cosmos.transfer`` are namespace packages (no __init__.py), so other
packages under the same top-level name can share Kit's interpreter with this one.
"""

from .extension import CosmosTransferBridgeExtension
from .writer import WRITER_NAME, CosmosTransferWriter

__all__ = ["WRITER_NAME", "CosmosTransferBridgeExtension", "CosmosTransferWriter"]
