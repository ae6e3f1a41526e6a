"""Bearer JWTs (HS256): ``sub`` is the actor, ``roles`` its roles, ``customer`` the one
customer a PaymentUser acts for."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

import paymentorch as po

ISSUER = "paymentorch-example"
AUDIENCE = "paymentorch-api"


class AuthError(Exception):
    """The request has no valid token (401)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class Caller:
    """Who sent a request.

    Attributes:
        actor: The library's actor (its id and roles).
        customer: The customer a PaymentUser's token is limited to; None for an admin's.
    """

    actor: po.Actor
    customer: str | None = None

    @property
    def admin(self) -> bool:
        """Holds PaymentAdmin: sees every customer and may change payments."""
        return po.Role.ADMIN in self.actor.roles


def make_token(
    secret: str,
    subject: str,
    roles: Iterable[str],
    *,
    customer: str | None = None,
    ttl: int = 3600,
    audience: str = AUDIENCE,
) -> str:
    """A signed token for ``subject`` with ``roles`` (and ``customer``), valid ``ttl`` s."""
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": subject,
        "roles": list(roles),
        "iss": ISSUER,
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
    }
    if customer is not None:
        claims["customer"] = customer
    return jwt.encode(claims, secret, algorithm="HS256")


def caller_from_header(secret: str, authorization: str | None) -> Caller:
    """The caller named by a ``Bearer`` token; ``AuthError`` for anything else."""
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
    customer = claims.get("customer")
    if customer is not None and (not isinstance(customer, str) or not customer):
        raise AuthError("the customer claim must be a customer id")
    known = {r.value for r in po.Role}
    actor = po.Actor(str(claims["sub"]), roles={r for r in roles if r in known})
    return Caller(actor, customer)
