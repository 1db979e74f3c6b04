"""Sandbox mode's telephony provider: the real wire format, plus calls placed by a simulator.

No telephone network stands behind a sandbox, so calls are simulated (`flask telephony
simulate-call`, the tests, the demo). A simulated call is posted exactly as the provider would post
it, signed with TELEPHONY_AUTH_TOKEN, so it travels the same webhook as a real one (CONTRACT §7):
this provider reads posts as `TwilioTelephony` does and adds `simulated_call`.
"""
from __future__ import annotations

import secrets

from .telephony import SimulatedCall
from .twilio import SIGNATURE_HEADER, TwilioTelephony, compute_signature


class SandboxTelephony(TwilioTelephony):
    def __init__(self, token, base_url):
        super().__init__(token)
        self._base_url = base_url  # the public origin the provider signs (BASE_URL)

    def simulated_call(self, caller: str, dialled: str, call_sid: str) -> SimulatedCall:
        form = {
            "CallSid": call_sid,
            "AccountSid": "AC" + secrets.token_hex(16),
            "From": caller,
            "To": dialled,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        signature = compute_signature(self._base_url() + self.webhook_path, form.items(), str(self._token()))
        return SimulatedCall(self.webhook_path, form, {SIGNATURE_HEADER: signature})
