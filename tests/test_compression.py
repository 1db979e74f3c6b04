"""HTML and JSON go compressed to a browser that accepts it (issue 9), above a minimum size, and
compression changes nothing else: a flow page stays uncacheable and keeps its security headers."""
import gzip
import json

import brotli

from conftest import text_of

GZIP = {"Accept-Encoding": "gzip"}


def test_flow_page_is_gzipped_and_still_never_stored(amami):
    amami.start()
    response = amami.client.get("/amami/flow/account", headers=GZIP)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(response.data).decode()
    assert "API連携認証（ご利用口座情報入力）" in html
    assert response.content_length < len(html.encode()) / 2
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    vary = {v.strip() for v in response.headers["Vary"].split(",")}
    assert {"Accept-Encoding", "HX-Request"} <= vary


def test_htmx_partial_is_compressed_too(amami):
    amami.start()
    amami.account(htmx=True)  # HX-Redirect to ②
    response = amami.client.get("/amami/flow/customer", headers={**GZIP, "HX-Request": "true"})
    assert response.headers["Content-Encoding"] == "gzip"
    partial = gzip.decompress(response.data).decode()
    assert "お名前" in partial and "<html" not in partial
    assert response.headers["Cache-Control"] == "no-store"


def test_brotli_when_the_browser_prefers_it(client):
    response = client.get("/amami/faq", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.headers["Content-Encoding"] == "br"
    assert "よくあるご質問" in brotli.decompress(response.data).decode()


def test_json_is_compressed(client):
    response = client.get("/amami/api/v1/openapi.json", headers=GZIP)
    assert response.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.data))["openapi"].startswith("3.1")


def test_small_responses_are_sent_as_they_are(client):
    response = client.get("/healthz", headers=GZIP)
    assert "Content-Encoding" not in response.headers and response.data == b"ok"


def test_a_client_that_asks_for_no_compression_gets_none(client):
    response = client.get("/amami/faq")
    assert "Content-Encoding" not in response.headers
    assert "よくあるご質問" in text_of(response)
