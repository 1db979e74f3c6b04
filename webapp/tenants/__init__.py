"""Credit unions (tenants): each one's configuration, loaded once at start-up from `<id>.toml`.

A tenant is resolved from the first URL segment (`/{tenant}/...`); an unknown id is a 404.
Templates are chosen per tenant by name (`tenants/<id>/<name>` before `<name>`), never by `if`.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import pathlib
import re
import tomllib

from flask import Flask, abort, current_app, g

from .. import service_hours


@dataclasses.dataclass(frozen=True)
class AccountType:
    code: str
    name: str


@dataclasses.dataclass(frozen=True)
class Contact:
    department: str
    phone: str
    email: str
    hours: str

    @property
    def tel_uri(self) -> str:
        return "tel:" + self.phone.replace("-", "")


@dataclasses.dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    manual_name: str
    copyright: str
    tagline: str
    terms_url: str
    lock_threshold: int  # consecutive identity failures (② and ⑤) that lock an account until 00:00 JST
    consent_days: int  # 認可期間: how long a consent (and every token under it) lasts
    history_months: int  # how far back the account API serves transactions
    mail_sender: str
    mail_domain: str
    call_pool: tuple[str, ...]
    account_types: tuple[AccountType, ...]
    contact: Contact
    theme: dict
    faq: dict
    maintenance: tuple[service_hours.Rule, ...]

    def account_type_name(self, code: str) -> str | None:
        return next((t.name for t in self.account_types if t.code == code), None)

    def templates(self, name: str) -> list[str]:
        """Candidate template names, this union's override first."""
        return [f"tenants/{self.id}/{name}", name]

    @functools.cached_property
    def theme_css(self) -> str:
        """This union's colours as CSS variables (configuration, not code; no inline styles under our CSP)."""
        return (":root{"
                f"--primary:{_colour(self.theme.get('primary'), '#1a5fb4')};"
                f"--primary-text:{_colour(self.theme.get('primary_text'), '#ffffff')};"
                "}\n")

    @functools.cached_property
    def theme_version(self) -> str:
        """Names theme_css by its content, so its URL changes exactly when the colours do."""
        return hashlib.sha256(self.theme_css.encode()).hexdigest()[:12]


def _colour(value, default: str) -> str:
    return value if isinstance(value, str) and re.fullmatch(r"#[0-9a-fA-F]{3,8}", value) else default


def _parse(raw: dict) -> Tenant:
    return Tenant(
        id=raw["id"],
        name=raw["name"],
        manual_name=raw.get("manual_name", ""),
        copyright=raw["copyright"],
        tagline=raw.get("tagline", ""),
        terms_url=raw["terms_url"],
        lock_threshold=int(raw["lock_threshold"]),
        consent_days=int(raw["consent_days"]),
        history_months=int(raw.get("history_months", 3)),
        mail_sender=raw["mail_sender"],
        mail_domain=raw.get("mail_domain", ""),
        call_pool=tuple(raw["call_pool"]),
        account_types=tuple(AccountType(str(t["code"]), t["name"]) for t in raw["account_types"]),
        contact=Contact(**raw["contact"]),
        theme=dict(raw.get("theme", {})),
        faq=dict(raw.get("faq", {})),
        maintenance=service_hours.validate(raw.get("maintenance", ()), raw["id"]),
    )


def load_tenants(folder: str | pathlib.Path) -> dict[str, Tenant]:
    tenants = {}
    for path in sorted(pathlib.Path(folder).glob("*.toml")):
        with path.open("rb") as f:
            tenant = _parse(tomllib.load(f))
        if tenant.id != path.stem:
            raise ValueError(f"{path}: id {tenant.id!r} does not match the file name")
        tenants[tenant.id] = tenant
    if not tenants:
        raise ValueError(f"no tenant configuration in {folder}")
    return tenants


def init_app(app: Flask) -> None:
    folder = app.config.get("TENANTS_DIR") or pathlib.Path(__file__).parent
    app.extensions["tenants"] = load_tenants(folder)


def all_tenants() -> dict[str, Tenant]:
    return current_app._get_current_object().extensions["tenants"]  # no proxy lookup: every request


def get_tenant(tenant_id: str) -> Tenant:
    tenant = all_tenants().get(tenant_id)
    if tenant is None:
        abort(404)
    return tenant


def pull_tenant(endpoint, values) -> None:
    """Blueprint url_value_preprocessor: `/{tenant}/...` → g.tenant."""
    if values is not None and "tenant" in values:
        g._get_current_object().tenant = get_tenant(values.pop("tenant"))


def add_tenant(endpoint, values) -> None:
    """url_defaults: url_for() inside a tenant's pages keeps the tenant."""
    if "tenant" not in values and getattr(g, "tenant", None) is not None:
        values["tenant"] = g.tenant.id


def current() -> Tenant:
    return g._get_current_object().tenant


# --- a union's template names (its overrides), found once per app -------------------------------

class Themes(dict):
    """One union's template names: `name` → its override if the union has one, else `name` itself.

    Found once per name and kept: a miss costs Jinja a loader search (a stat and an exception) each
    time, four or five times a page. Not kept while templates auto-reload (debug), so a new override
    shows at once there. Templates call `theme(name)`, which is this dict's own lookup (brand() in
    web.py hands each page its union's), not a function reaching for `g` and the app on each call."""

    def __init__(self, env, tenant) -> None:
        super().__init__()
        self.env, self.tenant = env, tenant

    def __missing__(self, name: str) -> str:
        if self.tenant is None:
            return name
        resolved = self.env.select_template(self.tenant.templates(name)).name
        if not self.env.auto_reload:
            self[name] = resolved
        return resolved


def themes(tenant) -> Themes:
    """The union's (or, for None, no union's) template names, kept per app."""
    app = current_app._get_current_object()  # every page: one context lookup
    kept = app.extensions.setdefault("themed_templates", {})
    key = tenant.id if tenant is not None else None
    found = kept.get(key)
    if found is None:
        found = kept[key] = Themes(app.jinja_env, tenant)
    return found
