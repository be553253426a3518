"""Kit-side tests, run by the extension.toml [[test]] section inside Kit.

The logic is tested without Kit in the repository's tests/live; these only check that
the extension came up in a real app.
"""

from .test_extension import TestExtension

__all__ = ["TestExtension"]
