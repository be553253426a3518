"""cosmos.transfer.bridge: the Kit extension (lifecycle, Replicator writer, omni.ui panel).

``cosmos`` and ``cosmos.transfer`` are namespace packages (no __init__.py), so other
packages under the same top-level name can share Kit's interpreter with this one. The
writer (``.writer``) and the panel (``.panel``) need the cosmos-transfer-bridge package
in the app's Python; this module does not, so the extension starts and says what to
install when it is missing.
"""

from .extension import CosmosTransferBridgeExtension

__all__ = ["CosmosTransferBridgeExtension"]
