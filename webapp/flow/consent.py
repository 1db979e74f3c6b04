"""⑥ SOA206 情報連携認可: the customer allows (許可する) or refuses (拒否する) the client's access.

The screen names the client's registered operator, the scope, the union's 認可期間 and the ご注意
list. 許可する works only with the API利用規定 box ticked; unticked, the screen says so (never a
400). 許可する grants in one transaction: the flow's last step ends it (steps.finish_last_step) with
oauth.consents.grant_consent inside, and the browser goes back to the client with the code (303);
拒否する posts to the cancel screen, which ends the flow "denied" and returns `error=access_denied`
to the client.
"""
from __future__ import annotations

from flask import g, request
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired

from .. import messages
from ..messages import AGREE_LABEL, AGREE_REQUIRED, CLIENT_GONE
from ..mail import kick
from ..oauth.consents import AccountLocked, ClientGone, grant_consent, prepare_consent
from ..render import go, render_blank, render_page
from .blueprint import bp
from .steps import client_vary, end_flow, finish_last_step, flow_step, log_step, no_flow_response


class ConsentForm(FlaskForm):
    agree = BooleanField(AGREE_LABEL, validators=[DataRequired(message=AGREE_REQUIRED)])


@bp.route("/consent", methods=["GET", "POST"])
@flow_step("consent", with_client=True)
def consent():
    flow = g.flow
    client = g.client
    if request.method == "GET":
        return render_blank("flow/consent.html", ConsentForm, vary=client_vary(client), client=client, alert=None)
    form = ConsentForm()
    alert = None
    if form.validate_on_submit():
        try:
            # what writes nothing first, outside the transaction (on SQLite: before the write gate)
            prepared = prepare_consent(flow, g.tenant, client)
            granted = finish_last_step(flow, "consented", lambda s: grant_consent(s, flow, g.tenant, client, prepared),
                                       describe=lambda granted: granted.log_detail)
        except AccountLocked:
            log_step(flow, "consent", "locked", detail="B84")
            alert = messages.lock_alert(just_locked=False)
        except ClientGone as gone:
            # its redirect URI can no longer be trusted: no way back, no code
            end_flow(flow, "client_gone", event="consent", result="refused", detail=f"client gone: {gone}"[:200])
            return render_page("flow/consent_client_gone.html", status=400, message=CLIENT_GONE)
        else:
            if granted is None:
                return no_flow_response()
            if granted.outbox_id is not None:
                kick(granted.outbox_id)
            return go(granted.location)
    return render_page("flow/consent.html", form=form, client=client, alert=alert)
