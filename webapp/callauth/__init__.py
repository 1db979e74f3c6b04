"""Incoming-call authentication (着信認証): screens ③ ④, the telephony webhook, the call status."""
