"""Static files as a CDN serves them (issue 9): named by their content, cached for a year as
immutable, the compressed copy the browser accepts; each union's theme.css likewise."""
import gzip
import pathlib
import random
import re

import brotli
import pytest

from conftest import text_of
from webapp import assets

STATIC = pathlib.Path(__file__).resolve().parents[1] / "static"
LINKED = re.compile(r'(?:href|src)="(/static/[^"]+|/[a-z]+/theme\.[^"]+)"')


def linked_files(client, tenant="amami") -> dict[str, str]:
    """The page's static and theme URLs, keyed by what they are: app.css, htmx, logo, theme."""
    urls = LINKED.findall(text_of(client.get(f"/{tenant}/faq")))
    return {key: next(u for u in urls if pattern in u)
            for key, pattern in (("app.css", "/static/app."), ("htmx", "/static/htmx-"),
                                 ("logo", f"/static/tenants/{tenant}/logo."), ("theme", "/theme."))}


def test_pages_link_static_files_by_the_hash_of_their_content(client):
    urls = linked_files(client)
    assert re.fullmatch(r"/static/app\.[0-9a-f]{12}\.css", urls["app.css"])
    assert re.fullmatch(r"/static/htmx-2\.0\.11\.min\.[0-9a-f]{12}\.js", urls["htmx"])
    assert re.fullmatch(r"/static/tenants/amami/logo\.[0-9a-f]{12}\.svg", urls["logo"])
    assert client.get(urls["app.css"]).data == (STATIC / "app.css").read_bytes()
    assert client.get(urls["htmx"]).data == (STATIC / "htmx-2.0.11.min.js").read_bytes()


def test_hashed_static_files_are_cached_for_a_year_as_immutable(client):
    for url in linked_files(client).values():
        response = client.get(url)
        assert response.status_code == 200, url
        cache_control = {part.strip() for part in response.headers["Cache-Control"].split(",")}
        assert {"max-age=31536000", "immutable", "public"} <= cache_control, url
        assert "no-cache" not in cache_control and "no-store" not in cache_control


def test_gzip_copy_is_served_to_a_browser_that_accepts_gzip(client):
    url = linked_files(client)["htmx"]
    response = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert gzip.decompress(response.data) == (STATIC / "htmx-2.0.11.min.js").read_bytes()
    assert response.content_length < 20_000  # 52 KB as it is


def test_brotli_copy_is_preferred_when_accepted(client):
    url = linked_files(client)["app.css"]
    response = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.headers["Content-Encoding"] == "br"
    assert brotli.decompress(response.data) == (STATIC / "app.css").read_bytes()


def test_a_browser_without_compression_gets_the_file_as_it_is(client):
    response = client.get(linked_files(client)["app.css"])
    assert "Content-Encoding" not in response.headers
    assert response.data == (STATIC / "app.css").read_bytes()


def test_static_files_say_nosniff(client):
    assert client.get(linked_files(client)["htmx"]).headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_hashed_name_is_404(client):
    real = linked_files(client)["app.css"]
    assert client.get("/static/app.0123456789ab.css").status_code == 404
    assert client.get(real.replace("/app.", "/missing.")).status_code == 404


def test_static_requests_never_reach_flask(app, client):
    """WhiteNoise answers before Flask: no before-request work, no limiter, no session."""
    urls = linked_files(client)
    reached = []
    app.view_functions["static"] = lambda **kw: reached.append(kw) or "flask"
    for key in ("app.css", "htmx", "logo"):
        response = client.get(urls[key])
        assert response.status_code == 200 and response.data != b"flask"
        assert "X-RateLimit-Limit" not in response.headers and "Set-Cookie" not in response.headers
    assert reached == []


def test_a_changed_file_gets_a_new_name_with_compressed_copies(tmp_path):
    source, target = tmp_path / "static", tmp_path / "build"
    (source / "css").mkdir(parents=True)
    (source / "css" / "site.css").write_text("body{color:#123456}\n" * 50)
    first = assets.build(source, target)["css/site.css"]
    (source / "css" / "site.css").write_text("body{color:#654321}\n" * 50)
    second = assets.build(source, target)["css/site.css"]

    assert re.fullmatch(r"css/site\.[0-9a-f]{12}\.css", first) and first != second
    for name in (first, second):
        assert (target / name).read_text().startswith("body{color:#")
        assert gzip.decompress((target / f"{name}.gz").read_bytes()) == (target / name).read_bytes()
        assert brotli.decompress((target / f"{name}.br").read_bytes()) == (target / name).read_bytes()
    assert not list(target.rglob(".*.part")), "no temporary file is left behind"


def test_a_file_compression_cannot_shrink_has_no_compressed_copy(tmp_path):
    source, target = tmp_path / "static", tmp_path / "build"
    source.mkdir()
    (source / "noise.js").write_bytes(random.Random(9).randbytes(4096))
    name = assets.build(source, target)["noise.js"]
    assert (target / name).exists()
    assert not (target / f"{name}.gz").exists() and not (target / f"{name}.br").exists()


# --- theme.css: one per union, named by its content -------------------------------------------------

def test_each_union_has_its_own_theme_url_and_colours(client):
    amami, maruhachi = linked_files(client, "amami")["theme"], linked_files(client, "maruhachi")["theme"]
    assert re.fullmatch(r"/amami/theme\.[0-9a-f]{12}\.css", amami)
    assert re.fullmatch(r"/maruhachi/theme\.[0-9a-f]{12}\.css", maruhachi)
    assert amami.split("/theme.")[1] != maruhachi.split("/theme.")[1]
    amami_css, maruhachi_css = client.get(amami), client.get(maruhachi)
    assert amami_css.mimetype == "text/css" and "--primary:#00703c" in text_of(amami_css)
    assert "--primary:#b3261e" in text_of(maruhachi_css) and "#00703c" not in text_of(maruhachi_css)


def test_theme_css_is_cached_for_a_year_as_immutable(client):
    response = client.get(linked_files(client)["theme"])
    cache_control = {part.strip() for part in response.headers["Cache-Control"].split(",")}
    assert {"public", "max-age=31536000", "immutable"} <= cache_control
    assert "no-store" not in response.headers["Cache-Control"]


def test_another_unions_or_a_stale_theme_version_is_404(client):
    amami, maruhachi = linked_files(client, "amami")["theme"], linked_files(client, "maruhachi")["theme"]
    assert client.get("/amami/theme.0123456789ab.css").status_code == 404
    assert client.get(maruhachi.replace("/maruhachi/", "/amami/")).status_code == 404
    assert client.get(amami).status_code == 200


@pytest.fixture
def recoloured(tmp_path):
    """The unions' configuration with amami's primary colour changed."""
    folder = tmp_path / "tenants"
    folder.mkdir()
    for path in (pathlib.Path(__file__).resolve().parents[1] / "webapp" / "tenants").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        if path.stem == "amami":
            assert 'primary = "#00703c"' in text
            text = text.replace('primary = "#00703c"', 'primary = "#123456"')
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


def test_new_colours_get_a_new_theme_url(client, recoloured, tmp_path):
    from conftest import make_app

    before = linked_files(client)["theme"]
    other = make_app(f"sqlite:///{tmp_path / 'recoloured.sqlite3'}", TENANTS_DIR=str(recoloured)).test_client()
    after = linked_files(other)["theme"]
    assert after != before and "--primary:#123456" in text_of(other.get(after))
    assert linked_files(other, "maruhachi")["theme"] == linked_files(client, "maruhachi")["theme"]
