"""An even sample of a collection's texts: what identification and readability checks read."""

from __future__ import annotations

from collections.abc import Sequence


def spread_sample(texts: Sequence[str], size: int, chars: int) -> list[str]:
    """At most ``size`` of ``texts``, evenly spread, each cut to ``chars`` characters."""
    step = max(1, len(texts) // size)
    return [text[:chars] for text in texts[::step][:size]]
