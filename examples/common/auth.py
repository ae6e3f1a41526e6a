"""Bearer JWTs (HS256): ``sub`` is the actor, the ``roles`` claim its roles."""

from __future__ import annotations

import time
from collections.abc import Iterable

import jwt

import paymentorch as po

ISSUER = "paymentorch-example"
AUDIENCE = "paymentorch-api"


class AuthError(Exception):
    """The request has no valid token (401)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


def make_token(
    secret: str, subject: str, roles: Iterable[str], *, ttl: int = 3600, audience: str = AUDIENCE
) -> str:
    """A signed token for ``subject`` with ``roles``, valid for ``ttl`` seconds."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "roles": list(roles),
        "iss": ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def actor_from_header(secret: str, authorization: str | None) -> po.Actor:
    """The actor named by a ``Bearer`` token; ``AuthError`` for anything else."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():  # schemes are case-insensitive
        raise AuthError("a bearer token is required")
    try:
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"the token is not valid: {exc}") from None
    roles = claims.get("roles", [])
    if not isinstance(roles, list):
        raise AuthError("the roles claim must be a list")
    known = {r.value for r in po.Role}
    return po.Actor(str(claims["sub"]), roles={r for r in roles if r in known})


def require_reader(actor: po.Actor) -> None:
    """Reads need any paymentorch role; the library leaves read access to the host."""
    if not actor.roles:
        raise po.PermissionDenied(actor.id, "read payments", "PaymentUser or PaymentAdmin")


def require_admin(actor: po.Actor) -> None:
    """Processor callbacks carry no actor of the library's: the example asks for an admin."""
    if po.Role.ADMIN not in actor.roles:
        raise po.PermissionDenied(actor.id, "deliver processor callbacks", "PaymentAdmin")
