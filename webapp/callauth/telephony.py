"""The telephony provider behind one small interface: how its inbound-call webhook is read and answered.

The webhook (`views.inbound`) and the call simulator (`flask telephony simulate-call`) ask
`provider()` and never know which implementation answers; they see only this module's types:

- `InboundCallReport`: the call a post reports (CallSid, caller, number dialled, direction), as
  the provider wrote them; what they mean for authentication is service.py's business.
- `NotSigned` / `Malformed`: a post the provider did not sign (403, nothing changes) or that does
  not report a call (400).
- `Answer`: what the webhook answers so that the call is rejected, never answered nor billed.

`webapp.callauth.provider()` gives the app's provider. Implementations: `TwilioTelephony` (twilio.py, Twilio Voice's wire format: CONTRACT §7) for real
calls; `SandboxTelephony` (sandbox.py, chosen by `SANDBOX`) speaks the same wire format (the
contract's simulator posts what the provider would) and can also place a simulated call.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Mapping, Sequence



@dataclasses.dataclass(frozen=True)
class InboundCallReport:
    """One call the provider reports, its fields as sent (numbers not yet normalised)."""

    call_sid: str  # the provider's id of the call: its retries repeat it
    caller: str | None  # who called (may be a withheld pseudo-number, e.g. "anonymous")
    dialled: str | None  # the number dialled: one of a union's pool numbers
    direction: str | None  # "inbound" for a call to us


@dataclasses.dataclass(frozen=True)
class Answer:
    """The webhook's answer to the provider."""

    body: str
    mimetype: str
    status: int = 200


@dataclasses.dataclass(frozen=True)
class SimulatedCall:
    """A post exactly as the provider would send it for one call: to `path`, `form` with `headers`."""

    path: str
    form: dict[str, str]
    headers: dict[str, str]


class NotSigned(Exception):
    """The post is not signed by the provider (missing or wrong signature): answer 403, change nothing."""


class Malformed(Exception):
    """A signed post that reports no usable call; str(e) says what is wrong, for the 400 answer."""


class Telephony(abc.ABC):
    """What the product asks of the telephony provider."""

    #: where the provider posts inbound calls, under BASE_URL
    webhook_path = "/telephony/inbound"

    @abc.abstractmethod
    def read_inbound(self, url: str, form: Sequence[tuple[str, str]],
                     headers: Mapping[str, str]) -> InboundCallReport:
        """The call reported by a post to `url` (the public URL the provider signed) with these form
        fields (every value, in order) and headers; raises NotSigned or Malformed."""

    @abc.abstractmethod
    def reject_call(self) -> Answer:
        """The answer that rejects the call without answering it and without an announcement."""

    def simulated_call(self, caller: str, dialled: str, call_sid: str) -> SimulatedCall:
        """The post the provider would send for call `call_sid` from `caller` to `dialled` (numbers
        as the provider writes them), signed; sandbox only."""
        raise NotImplementedError(f"{type(self).__name__}: real calls come from real phones")

