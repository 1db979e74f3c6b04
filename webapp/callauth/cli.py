"""`flask --app webapp telephony …`: the call simulator of sandbox mode (demos, staging, fintech tests).

`simulate-call` posts to the running server exactly what the telephony provider would: a
form-encoded inbound call signed with TELEPHONY_AUTH_TOKEN over BASE_URL + /telephony/inbound
(the sandbox provider's `simulated_call`, telephony.py). It exists only in sandbox mode
(FLASK_SANDBOX=true); with sandbox off it refuses to run.
"""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from . import provider, service

telephony_cli = AppGroup("telephony", help="Telephony (incoming-call authentication).")


def _as_provider_sends(number: str) -> str:
    """Numbers go out in E.164 as the provider sends them; a withheld caller (anonymous …) as typed."""
    return service.dialled_e164(number) or number


@telephony_cli.command("simulate-call")
@click.option("--from", "caller", required=True, help="Calling number, e.g. 09011113333 (or anonymous).")
@click.option("--to", "dialled", required=True, help="The pool number dialled, e.g. 0120111001.")
@click.option("--url", default=None, help="Server origin to post to (default: BASE_URL).")
@click.option("--call-sid", default=None, help="CallSid to send (default: a new one); repeat one to test retries.")
def simulate_call(caller, dialled, url, call_sid):
    """Post a correctly signed inbound call to the running server (sandbox mode only)."""
    import requests  # here, not with the app: a web worker never needs it

    config = current_app.config
    if not config["SANDBOX"]:
        raise click.ClickException("simulate-call exists only in sandbox mode (FLASK_SANDBOX=true)")
    call = provider().simulated_call(_as_provider_sends(caller), _as_provider_sends(dialled),
                                     call_sid or service.new_call_sid())
    params = call.form
    target = (url or config["BASE_URL"]).rstrip("/") + call.path
    try:
        response = requests.post(target, data=params, headers=call.headers, timeout=10)
    except requests.RequestException as e:
        raise click.ClickException(f"could not reach {target}: {type(e).__name__}")
    click.echo(f"POST {target} From={params['From']} To={params['To']} CallSid={params['CallSid']}")
    click.echo(f"{response.status_code} {response.text.strip()}")
    if response.status_code != 200:
        raise click.ClickException(f"the server answered {response.status_code}")
