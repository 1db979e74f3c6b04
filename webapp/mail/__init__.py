"""Completion mail: an outbox row per message, sent by a retrying sender."""
