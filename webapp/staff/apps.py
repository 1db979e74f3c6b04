"""連携アプリ (admin only): the union's fintech apps; register one as `flask clients add` does; disable one.

Disabling is one atomic UPDATE of the client plus the revocation of every live token it holds, in
one transaction: its API calls get 401 at once, its refresh tokens and codes stop, and a new
authorization request names an unknown client (the error page, never a redirect).
"""
from __future__ import annotations

from sqlalchemy import func, update
from sqlmodel import select

from .. import clock
from ..oauth.models import Consent, OAuthClient, Token
from ..oauth.server import revoke_tokens


def listing(s, tenant_id: str) -> list[tuple[OAuthClient, int]]:
    """The union's apps, newest first, each with its number of live consents."""
    live = (select(Consent.client_id, func.count().label("n"))
            .where(Consent.tenant == tenant_id, Consent.revoked_at.is_(None), Consent.expires_at > clock.now())
            .group_by(Consent.client_id).subquery())
    rows = s.exec(select(OAuthClient, func.coalesce(live.c.n, 0))
                  .join(live, live.c.client_id == OAuthClient.client_id, isouter=True)
                  .where(OAuthClient.tenant == tenant_id).order_by(OAuthClient.id.desc())).all()
    return [(client, count) for client, count in rows]


def find(s, tenant_id: str, client_id: str) -> OAuthClient | None:
    return s.exec(select(OAuthClient).where(OAuthClient.client_id == client_id,
                                            OAuthClient.tenant == tenant_id)).first()


def disable(s, tenant_id: str, client_id: str) -> int | None:
    """Disable the app (in the caller's transaction): None when it was already; else the tokens revoked."""
    done = s.execute(update(OAuthClient).where(OAuthClient.client_id == client_id, OAuthClient.tenant == tenant_id,
                                               OAuthClient.revoked_at.is_(None)).values(revoked_at=clock.now()))
    if done.rowcount != 1:
        return None
    return revoke_tokens(s, Token.client_id == client_id)
