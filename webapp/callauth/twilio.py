"""The real telephony provider: Twilio Voice's webhook, as CONTRACT §7 states it.

- A post is read only when signed: `X-Twilio-Signature` is Base64(HMAC-SHA1) over the public URL
  (`BASE_URL` + path + query) followed by the POST parameters sorted by name, each name directly
  followed by its value, keyed by `TELEPHONY_AUTH_TOKEN`; compared in constant time.
- The call's fields are `CallSid` (letters and digits: CA + 32 hex), `From`, `To`, `Direction`.
- The answer is TwiML rejecting the call, so it is never answered and never billed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from .telephony import Answer, InboundCallReport, Malformed, NotSigned, Telephony

SIGNATURE_HEADER = "X-Twilio-Signature"
# The provider's call ids are letters and digits (CA + 32 hex); anything else is not one, and is
# not stored (PostgreSQL refuses a NUL in text).
CALL_SID = re.compile(r"[A-Za-z0-9]{1,64}")
# Rejected as busy: never answered, never billed, and the caller hears no "not in service" announcement
# (Twilio's default reason, "rejected", asks the carrier for one), as screen ④ promises (CONTRACT §7).
REJECT_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>'


def compute_signature(url: str, params: Iterable[tuple[str, str]], token: str) -> str:
    """Base64(HMAC-SHA1(token, url + name1 + value1 + name2 + value2 …)), parameters sorted by name (then value)."""
    payload = url + "".join(name + value for name, value in sorted(set(params)))
    digest = hmac.new(token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port and with the scheme's default port (the provider may sign either)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return [url]
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = userinfo + "@" if userinfo else ""
    default_port = 443 if parts.scheme == "https" else 80
    without = urlunsplit(parts._replace(netloc=prefix + parts.hostname))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{parts.hostname}:{parts.port or default_port}"))
    return list(dict.fromkeys([url, without, with_port]))


def valid_signature(url: str, params: list[tuple[str, str]], signature: str | None, token: str | None) -> bool:
    """True only for a non-empty signature equal (in constant time) to one computed with a non-empty token."""
    if not signature or not token:
        return False
    given = signature.encode("utf-8")
    ok = False
    for candidate in _url_variants(url):
        ok |= hmac.compare_digest(compute_signature(candidate, params, token).encode("ascii"), given)
    return ok


class TwilioTelephony(Telephony):
    def __init__(self, token: Callable[[], str | None]):
        self._token = token  # read at each post: TELEPHONY_AUTH_TOKEN as configured now

    def read_inbound(self, url: str, form: Sequence[tuple[str, str]],
                     headers: Mapping[str, str]) -> InboundCallReport:
        params = list(form)
        if not valid_signature(url, params, headers.get(SIGNATURE_HEADER), self._token()):
            raise NotSigned()
        fields = dict(reversed(params))  # the first value of each name, as Flask's form.get gives
        call_sid = fields.get("CallSid", "")
        if not CALL_SID.fullmatch(call_sid):
            raise Malformed("CallSid missing or malformed")
        return InboundCallReport(call_sid=call_sid, caller=fields.get("From"), dialled=fields.get("To"),
                                 direction=fields.get("Direction"))

    def reject_call(self) -> Answer:
        return Answer(REJECT_TWIML, "text/xml")
