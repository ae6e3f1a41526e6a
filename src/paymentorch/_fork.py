"""Noticing fork(): connections and threads a child inherits belong to its parent.

A store remembers ``generation`` when it connects; when it differs at its next call, the
process is a child of the one that connected, and the store connects anew. What it
inherited goes to ``abandon``: kept referenced, never closed, because closing an
inherited connection would end the parent's session.
"""

from __future__ import annotations

import os

generation = 0
_inherited: list[object] = []


def abandon(*objects: object) -> None:
    """Keep what a child inherited from being closed or finalized in the child."""
    _inherited.extend(objects)


def _after_fork_in_child() -> None:
    global generation  # noqa: PLW0603 - one counter for the process, by nature
    generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)
