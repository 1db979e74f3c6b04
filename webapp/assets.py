"""Static files as a CDN would serve them: named by their content, compressed once, cached for a year.

At start-up every file under static/ is hashed, and a copy named by its content
(`app.css` → `app.<12 hex digits of its SHA-256>.css`) is written to the build folder with its
gzip and brotli copies beside it, unless that content is already there: an unchanged file costs
one read and one hash, so there is no build step to forget and no manifest that can go stale.
WhiteNoise serves exactly those copies in front of Flask (a static request never reaches Flask,
its limiter or its before-request work), with `Cache-Control: max-age=31536000, public, immutable`
and the compressed copy the browser accepts; `url_for('static', filename='app.css')` returns the
hashed URL. Any other /static/ URL falls through to Flask, where an unknown name is a 404.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import posixpath
import re
import tempfile

from flask import Flask
from whitenoise import WhiteNoise
from whitenoise.compress import Compressor

HASHED_NAME = re.compile(r"\.[0-9a-f]{12}(\.[^./]+)?$")
ONE_YEAR = 365 * 24 * 60 * 60


class StaticFiles(WhiteNoise):
    # WhiteNoise's "forever" is ten years; a year is the figure caches and CDNs expect.
    FOREVER = ONE_YEAR


def hashed_name(name: str, content: bytes) -> str:
    """`htmx.min.js` → `htmx.min.<12 hex digits of the content's SHA-256>.js`."""
    stem, extension = posixpath.splitext(name)
    return f"{stem}.{hashlib.sha256(content).hexdigest()[:12]}{extension}"


def build(source: pathlib.Path, target: pathlib.Path) -> dict[str, str]:
    """A copy of each file under `source` in `target` under its hashed name, with its compressed
    copies (`.br`, `.gz`, where they are at least 5 % smaller); returns {name: hashed name}.

    Each file is written whole under a temporary name and renamed, the compressed copies first,
    so a worker starting next to another one never finds half a file.
    """
    compressor = Compressor(quiet=True)
    manifest = {}
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        name = path.relative_to(source).as_posix()
        content = path.read_bytes()
        manifest[name] = hashed = hashed_name(name, content)
        copy = target / hashed
        if copy.exists():
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        if compressor.should_compress(name):
            for suffix, compress in ((".br", compressor.compress_brotli), (".gz", compressor.compress_gzip)):
                packed = compress(content)
                if len(packed) <= 0.95 * len(content):
                    _write_whole(copy.with_name(copy.name + suffix), packed)
        _write_whole(copy, content)
    return manifest


def _write_whole(path: pathlib.Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _nosniff(headers, path: str, url: str) -> None:
    headers["X-Content-Type-Options"] = "nosniff"


def default_target(static_folder: str | os.PathLike) -> pathlib.Path:
    """Where the copies go unless STATIC_BUILD_DIR says: `build/static` beside the static folder."""
    return pathlib.Path(static_folder).parent / "build" / "static"


def init_app(app: Flask) -> None:
    target = pathlib.Path(app.config.get("STATIC_BUILD_DIR") or default_target(app.static_folder))
    manifest = build(pathlib.Path(app.static_folder), target)
    app.extensions["static_files"] = manifest

    files = StaticFiles(app.wsgi_app, immutable_file_test=lambda path, url: bool(HASHED_NAME.search(url)),
                        add_headers_function=_nosniff)
    for hashed in manifest.values():
        files.add_file_to_dictionary(f"{app.static_url_path}/{hashed}", str(target / hashed))
    app.wsgi_app = files

    @app.url_defaults
    def hashed_static_url(endpoint: str, values: dict) -> None:
        """url_for('static', filename='app.css') → /static/app.<hash>.css"""
        if endpoint == "static" and values.get("filename") in manifest:
            values["filename"] = manifest[values["filename"]]
