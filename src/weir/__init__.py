"""Weir: an AI gateway in front of OpenAI-compatible and Anthropic APIs."""

__version__ = "0.1.0"
