"""The run's engine set (`--engines`) is what the app really uses, and REDIS_URL puts rate limits in Redis."""
from __future__ import annotations

import conftest
from webapp import create_app


def test_the_app_runs_on_the_chosen_engine_set(app, client):
    dialect = app.extensions["db_engine"].dialect.name
    storage = app.config["RATELIMIT_STORAGE_URI"]
    assert client.get("/amami/faq").status_code == 200  # counted against the service-wide limit
    if conftest.ENGINES == "postgres":
        import redis

        assert (dialect, storage.split(":")[0]) == ("postgresql", "redis")
        prefix = app.config["RATELIMIT_KEY_PREFIX"]  # its own: no counter shared with another test
        assert redis.Redis.from_url(storage).keys(f"*{prefix}*"), "the request was not counted in Redis"
    else:
        assert (dialect, storage) == ("sqlite", "memory://")


def test_redis_url_puts_the_limits_in_redis_with_a_fall_back_to_memory(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://redis.internal:6379/0")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"})
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://redis.internal:6379/0"
    assert app.config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] is True
    assert app.config["RATELIMIT_STORAGE_OPTIONS"]["socket_timeout"] == app.config["REDIS_TIMEOUT_SECONDS"]
    app.extensions["db_engine"].dispose()


def test_without_redis_url_the_limits_are_in_memory(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"})
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    app.extensions["db_engine"].dispose()
