"""Gymnasium spaces for chat environments.

Observations are message lists; actions are model text or OpenAI-style assistant messages. ``render_messages``
turns a conversation into the text ``render()`` shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sandgym import _core

_ROLES = {"system", "user", "assistant", "tool"}


class Messages(spaces.Space[list]):
    """A list of chat messages in the OpenAI shape (``{"role": ..., "content": ...}``)."""

    def __init__(self, seed: int | np.random.Generator | None = None) -> None:
        """Create the space."""
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        """Message lists have no fixed-size numeric form."""
        return False

    def contains(self, x: Any) -> bool:
        """Whether ``x`` is a list of well-formed messages."""
        return isinstance(x, list) and all(
            isinstance(m, dict) and m.get("role") in _ROLES and isinstance(m.get("content", ""), str) for m in x
        )

    def sample(self, mask: Any = None, probability: Any = None) -> list:
        """A random one-message conversation."""
        return [{"role": "user", "content": str(self.np_random.integers(0, 1000))}]

    def __repr__(self) -> str:
        """Readable name."""
        return "Messages()"

    def __eq__(self, other: object) -> bool:
        """All message spaces are equal."""
        return isinstance(other, Messages)


class ChatAction(spaces.Space[Any]):
    """Model text (``str``, parsed for tool calls) or an assistant message dict with ``tool_calls``.

    ``sample()`` draws a random call of one of the env's tools, as Hermes ``<tool_call>`` text.
    """

    def __init__(self, tools: list[dict], seed: int | np.random.Generator | None = None) -> None:
        """Create the space over the env's tool schemas."""
        super().__init__(shape=None, dtype=None, seed=seed)
        self.tools = tools

    @property
    def is_np_flattenable(self) -> bool:
        """Actions have no fixed-size numeric form."""
        return False

    def contains(self, x: Any) -> bool:
        """Whether ``x`` is text or an assistant-message dict."""
        if isinstance(x, str):
            return True
        return isinstance(x, dict) and isinstance(x.get("tool_calls", []), list)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A random tool call with string arguments, as model text."""
        if not self.tools:
            return "I do not know."
        tool = self.tools[int(self.np_random.integers(0, len(self.tools)))]
        function = tool.get("function", tool)
        params = function.get("parameters", {}).get("properties", {})
        args = {name: str(self.np_random.integers(0, 100)) for name in params}
        return _core.render_tool_call(function["name"], args)

    def __repr__(self) -> str:
        """Readable name."""
        return f"ChatAction(tools={[t.get('function', t).get('name') for t in self.tools]})"

    def __eq__(self, other: object) -> bool:
        """Equal when the tools are."""
        return isinstance(other, ChatAction) and other.tools == self.tools


def render_messages(messages: list[dict]) -> str:
    """A conversation as text, one ``[role] content`` line per message and one line per tool call."""
    lines = []
    for m in messages:
        lines.append(f"[{m['role']}] {m.get('content') or ''}")
        for call in m.get("tool_calls") or []:
            lines.append(f"    -> {call['name']}({call['arguments']})")
    return "\n".join(lines)
