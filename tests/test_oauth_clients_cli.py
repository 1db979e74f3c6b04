"""`flask clients add` (CONTRACT §4) and `flask clients list`."""
from __future__ import annotations

import hashlib
import json

from sqlmodel import Session, select

from webapp import db
from webapp.oauth.models import OAuthClient


def test_clients_add_prints_id_and_secret_and_stores_only_a_hash(app, runner):
    result = runner.invoke(args=["clients", "add", "--tenant", "amami", "--name", "しんくみアプリwith CRECO",
                                 "--operator", "アイ・ティ・リアライズ株式会社", "--redirect-uri", "https://app.example/cb",
                                 "--redirect-uri", "https://app.example/cb2"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert set(printed) == {"client_id", "client_secret"} and len(printed["client_secret"]) >= 43
    with app.app_context(), Session(db.engine()) as s:
        row = s.exec(select(OAuthClient)).one()
    assert row.client_secret_hash == hashlib.sha256(printed["client_secret"].encode()).hexdigest()
    assert row.redirect_uris == ["https://app.example/cb", "https://app.example/cb2"] and row.tenant == "amami"


def test_clients_add_refuses_a_redirect_uri_with_a_fragment_or_unknown_union(runner):
    bad = runner.invoke(args=["clients", "add", "--tenant", "amami", "--name", "x", "--operator", "y",
                              "--redirect-uri", "https://app.example/cb#f"])
    assert bad.exit_code != 0
    unknown = runner.invoke(args=["clients", "add", "--tenant", "nowhere", "--name", "x", "--operator", "y",
                                  "--redirect-uri", "https://app.example/cb"])
    assert unknown.exit_code != 0


def test_clients_list_shows_each_client_without_its_secret(runner):
    added = json.loads(runner.invoke(args=["clients", "add", "--tenant", "maruhachi", "--name", "アプリ",
                                           "--operator", "事業者", "--redirect-uri", "https://a.example/cb"]).output)
    result = runner.invoke(args=["clients", "list", "--tenant", "maruhachi"])
    assert result.exit_code == 0
    (line,) = result.output.splitlines()
    listed = json.loads(line)
    assert listed["client_id"] == added["client_id"] and listed["operator"] == "事業者"
    assert added["client_secret"] not in result.output
    assert runner.invoke(args=["clients", "list", "--tenant", "amami"]).output == ""
