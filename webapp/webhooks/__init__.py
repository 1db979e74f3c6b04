"""Signed events for fintech apps: the union tells an app at once when its access has ended.

A client registered with a webhook URL (`clients add … --webhook-url`, `clients set-webhook`) gets
an event whenever a consent of its is revoked (by the customer, by staff) or the tokens of one are
revoked for a replayed code or refresh token. events.py queues the event in the revocation's own
transaction (webhook_outbox); sender.py signs it with the union's key (keys.py, ES256, published at
`{issuer}/jwks.json`) and POSTs it, once, retried with back-off while the app's server is down
(the claim rule of webapp/deliveries.py); targets.py keeps the POST away from internal addresses.
"""
