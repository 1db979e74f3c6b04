"""HTML and JSON go compressed to a browser that accepts it (issue 9), above a minimum size, and
compression changes nothing else: a flow page stays uncacheable and keeps its security headers."""
import gzip
import json

import brotli
import pytest

from conftest import text_of

GZIP = {"Accept-Encoding": "gzip"}


def test_flow_page_is_gzipped_and_still_never_stored(amami):
    amami.start()
    response = amami.client.get("/amami/flow/account", headers=GZIP)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(response.data).decode()
    assert "API連携認証（ご利用口座情報入力）" in html
    assert response.content_length < len(html.encode()) * 0.6  # gzip level 1: ~50 %
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


# --- the hook reads the headers once (extensions.Compress): the same answers as stock Flask-Compress ---

def _body(size: int, streamed: bool):
    text = ("本文 text " * size)[:size].encode()[:size]  # `size` bytes (a kana split at the end is fine)
    if streamed == "list":  # a sequence of parts: not a stream, and no Content-Length until counted
        return [text[:size // 2], text[size // 2:]]
    return (part for part in [text]) if streamed else text


# (what, status, the body's length in bytes, streamed, extra headers)
KINDS = [
    ("a short page", 200, 40, False, {}),
    ("a long page", 200, 3000, False, {"Vary": "HX-Request"}),
    ("a long page varying on accept-encoding", 200, 3000, False, {"Vary": "accept-encoding"}),
    ("a long page with an empty vary", 200, 3000, False, {"Vary": ""}),
    ("a long page with two varies", 200, 3000, False, [("Vary", "Cookie"), ("Vary", "HX-Request")]),
    ("long json", 200, 3000, False, {"Content-Type": "application/json"}),
    ("long json with a charset", 200, 3000, False, {"Content-Type": "application/json; charset=utf-8"}),
    ("a long image", 200, 3000, False, {"Content-Type": "image/png"}),
    ("already encoded", 200, 3000, False, {"Content-Encoding": "gzip"}),
    ("a long error page", 404, 3000, False, {}),
    ("a redirect", 303, 0, False, {"Location": "/amami/flow/customer"}),
    ("a stream", 200, 3000, True, {}),
    ("a list of parts without its length", 200, 3000, "list", {}),
    ("a length that is not a number", 200, 3000, False, {"Content-Length": "many"}),
    ("a negative length", 200, 3000, False, {"Content-Length": "-1"}),
    ("just under the minimum", 200, 499, False, {"Content-Type": "text/plain"}),
    ("just at the minimum", 200, 500, False, {"Content-Type": "text/plain"}),
    ("a strong etag", 200, 3000, False, {"ETag": '"v1"'}),
    ("a weak etag", 200, 3000, False, {"ETag": 'W/"v1"'}),
    ("a last-modified date", 200, 3000, False, {"Last-Modified": "Sun, 06 Dec 2026 00:00:00 GMT"}),
    ("a date of its own", 200, 3000, False, {"Date": "Sun, 06 Dec 2026 00:00:00 GMT"}),
]
ENCODINGS = [None, "gzip", "gzip, deflate, br, zstd", "br;q=0, gzip;q=0", "identity", "deflate", "br"]
# A conditional or partial request, with a browser's Accept-Encoding.
REQUESTS = [{"If-None-Match": '"v1:gzip"'}, {"If-None-Match": '"v1"'},
            {"If-Modified-Since": "Sun, 06 Dec 2026 00:00:00 GMT"}, {"Range": "bytes=0-9"},
            {"If-Match": '"v2"'}]


def _stock_and_ours(app, extra, size, streamed, status, headers, method="GET"):
    import flask_compress

    from webapp.extensions import compress

    stock = flask_compress.Compress()
    stock.__dict__.update(compress.__dict__)
    answers = []
    for hook in (compress.after_request, stock.after_request):
        with app.test_request_context("/amami/faq", method=method, headers=headers):
            response = app.response_class(_body(size, streamed), status,
                                          extra if isinstance(extra, list) else dict(extra))
            if "Content-Length" in dict(extra):
                response.headers["Content-Length"] = dict(extra)["Content-Length"]
            response = hook(response)
            answers.append((response.status_code, list(response.headers.items()), response.get_data()))
    return answers


def _same_but_the_date(ours, stock, extra):
    """The same answer, but for the Date that Werkzeug's make_conditional adds to what the stock hook
    compressed: gunicorn drops an app's Date and sends its own (checked below). A Date the response
    set itself is kept by both."""
    if "Date" not in dict(extra):
        ours, stock = ((status, [h for h in headers if h[0] != "Date"], body) for status, headers, body in (ours, stock))
    return ours == stock


@pytest.mark.parametrize("what,status,size,streamed,extra", KINDS, ids=[k[0] for k in KINDS])
def test_the_hook_answers_as_stock_flask_compress(app, what, status, size, streamed, extra):
    """Each kind of response, to each kind of Accept-Encoding and to conditional and partial
    requests, by GET and HEAD: the same headers in order (but Werkzeug's Date), the same body, the
    same status, as the stock hook gives."""
    asked = [({"Accept-Encoding": e} if e else {}) for e in ENCODINGS]
    asked += [{"Accept-Encoding": "gzip, deflate, br, zstd", **r} for r in REQUESTS]
    for headers in asked:
        for method in ("GET", "HEAD"):
            ours, stock = _stock_and_ours(app, extra, size, streamed, status, headers, method)
            assert _same_but_the_date(ours, stock, extra), (what, headers, method, ours, stock)


def test_the_hook_compresses_a_whole_page_itself(app):
    """The page and JSON kinds are compressed by our hook, not handed to the stock one (a mutation
    that always hands over would pass the comparison above)."""
    from unittest import mock

    import flask_compress

    from webapp.extensions import compress

    with mock.patch.object(flask_compress.Compress, "after_request", side_effect=AssertionError("handed over")):
        for content_type in ("text/html; charset=utf-8", "application/json"):
            with app.test_request_context("/amami/faq", headers={"Accept-Encoding": "gzip"}):
                response = compress.after_request(app.response_class(_body(3000, False), 200,
                                                                     {"Content-Type": content_type}))
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(response.get_data()) == _body(3000, False)
            assert response.headers["Content-Length"] == str(len(response.get_data()))


def test_gunicorn_sends_its_own_date_whatever_the_app_says():
    """Why leaving out make_conditional's Date changes nothing a client sees."""
    from gunicorn import util

    assert util.is_hoppish("Date")


# --- zstd from a compressor kept between answers (extensions.Compress._zstd) ---

def test_a_kept_zstd_compressor_gives_what_a_fresh_one_gives():
    from backports import zstd

    from webapp.extensions import compress

    pages = [_body(size, False) for size in (3000, 86_000, 500, 3000)]
    for level in (1, 3):
        assert [compress._zstd(page, level) for page in pages] == [zstd.compress(page, level) for page in pages]


def test_a_frame_broken_off_never_reaches_the_next_answer(monkeypatch):
    """A compressor that fails part-way through a page (here: after taking half of it in) is not
    kept: the next answer is its own page alone, not the end of the other one's frame."""
    import flask_compress
    from backports import zstd

    from webapp.extensions import compress

    real = zstd.ZstdCompressor

    class FailsOnce:  # a real compressor inside (zstd's cannot be subclassed)
        CONTINUE, FLUSH_FRAME = real.CONTINUE, real.FLUSH_FRAME
        failed = False

        def __init__(self, level):
            self.inner = real(level=level)

        def compress(self, data, mode):
            if not FailsOnce.failed:
                FailsOnce.failed = True
                self.inner.compress(data[: len(data) // 2], mode=real.CONTINUE)
                raise MemoryError("part-way")
            return self.inner.compress(data, mode)

    secret, page = b"another customer's page " * 100, _body(3000, False)
    alone = zstd.compress(page, 1)
    monkeypatch.setattr(compress, "_zstd_kept", {})
    monkeypatch.setattr(flask_compress.flask_compress.compression.zstd, "ZstdCompressor", FailsOnce)
    with pytest.raises(MemoryError):
        compress._zstd(secret, 1)
    assert compress._zstd(page, 1) == alone


def test_parallel_answers_each_get_their_own_page():
    from concurrent.futures import ThreadPoolExecutor

    from backports import zstd

    from webapp.extensions import compress

    pages = [(f"page {n} ".encode() * (50 + n * 37)) for n in range(64)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        compressed = list(pool.map(lambda page: compress._zstd(page, 1), pages))
    assert [zstd.decompress(c) for c in compressed] == pages
