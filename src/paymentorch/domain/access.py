"""Who may do what: actors, roles and the role policy."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from paymentorch.domain.actions import Permission, permission_for
from paymentorch.domain.errors import FieldError, PermissionDenied, ValidationError


class Role(enum.StrEnum):
    """A role an actor can hold."""

    ADMIN = "PaymentAdmin"
    USER = "PaymentUser"


def _roles(value: Iterable[Role | str] | Role | str) -> frozenset[Role]:
    names = (value,) if isinstance(value, str) else value  # one role, or several
    try:
        return frozenset(Role(r) for r in names)
    except (TypeError, ValueError):
        allowed = ", ".join(r.value for r in Role)
        raise ValidationError(
            [FieldError("roles", f"must be roles among {allowed}", "choice")]
        ) from None


@attrs.frozen
class Actor:
    """Someone (a person or a process) acting on payments.

    Attributes:
        id: Recorded in audit entries and events.
        roles: The roles held (one, or several); strings are read as ``Role`` values.
    """

    id: str
    roles: frozenset[Role] = attrs.field(factory=frozenset, converter=_roles)

    @classmethod
    def system(cls, id: str = "system") -> Actor:
        """An actor holding every role, for workers and scripts."""
        return cls(id, roles=frozenset(Role))


@attrs.frozen
class RolePolicy:
    """Which roles each operation needs; holding any one of them is enough.

    Attributes:
        create: Roles allowed to create payments.
        change: Roles allowed to confirm, fail and cancel, and to use the bulk operations.
    """

    create: frozenset[Role] = frozenset({Role.USER, Role.ADMIN})
    change: frozenset[Role] = frozenset({Role.ADMIN})

    def check(self, actor: Actor, action: str) -> None:
        """Raise ``PermissionDenied`` unless ``actor`` may perform ``action`` (a name a
        person asks by, from the table of actions, or an operator tool's)."""
        creates = permission_for(action) is Permission.CREATE
        needed = self.create if creates else self.change
        if not isinstance(actor, Actor):
            raise PermissionDenied(str(actor), action, "an Actor")
        if actor.roles.isdisjoint(needed):
            raise PermissionDenied(actor.id, action, " or ".join(sorted(r.value for r in needed)))
