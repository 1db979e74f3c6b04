"""RFC 8414 metadata per union at /.well-known/oauth-authorization-server/{tenant} (CONTRACT §5)."""
from __future__ import annotations

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata


@pytest.mark.parametrize("tenant", ["amami", "maruhachi"])
def test_metadata_has_the_contract_fields(client, tenant):
    response = client.get(f"/.well-known/oauth-authorization-server/{tenant}")
    assert response.status_code == 200 and response.is_json
    meta = response.get_json()
    iss = f"https://renkei.test/{tenant}"
    assert meta["issuer"] == iss
    assert meta["authorization_endpoint"] == f"{iss}/oauth/authorize"
    assert meta["token_endpoint"] == f"{iss}/oauth/token"
    assert meta["revocation_endpoint"] == f"{iss}/oauth/revoke"
    assert meta["introspection_endpoint"] == f"{iss}/oauth/introspect"
    assert meta["scopes_supported"] == ["accounts"]
    assert meta["response_types_supported"] == ["code"]
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post",
                                                                  "private_key_jwt"}
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["pushed_authorization_request_endpoint"] == f"{iss}/oauth/par"
    assert meta["require_pushed_authorization_requests"] is False  # per client: a fapi2 client must
    assert {"ES256", "PS256"} <= set(meta["dpop_signing_alg_values_supported"])
    AuthorizationServerMetadata(meta).validate()


def test_metadata_endpoints_are_the_real_ones(client):
    meta = client.get("/.well-known/oauth-authorization-server/amami").get_json()
    for key in ("token_endpoint", "revocation_endpoint", "introspection_endpoint",
                "pushed_authorization_request_endpoint"):
        path = meta[key].removeprefix("https://renkei.test")
        assert client.post(path, data={}).status_code in (400, 401)  # exists, wants client authentication


def test_metadata_of_an_unknown_union_is_404(client):
    assert client.get("/.well-known/oauth-authorization-server/nowhere").status_code == 404
