"""pipeline: an asyncio log shipping and processing daemon."""

__version__ = "0.1.0"

__all__ = ["__version__"]
