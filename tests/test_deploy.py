"""The deploy story, read rather than run (no registry pulls in tests): compose.yaml, the
Dockerfile and the Caddyfile say what the Procfile and webapp/config.py say."""
from __future__ import annotations

import ast
import pathlib
import re
import shlex

import pytest

yaml = pytest.importorskip("yaml")

ROOT = pathlib.Path(__file__).resolve().parent.parent
SECRET_NAMES = re.compile(r"SECRET|TOKEN|PASSWORD")


def procfile() -> dict[str, list[str]]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip() and not line.startswith("#")]
    return {name: shlex.split(command) for name, _, command in (line.partition(":") for line in lines)}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def command(service: dict) -> list[str]:
    value = service["command"]
    return shlex.split(value) if isinstance(value, str) else list(value)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    return [(m.group(1).upper(), m.group(2).strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.M)
            if not m.group(0).lstrip().startswith("#")]


def config_names() -> set[str]:
    """The environment names webapp/config.py reads: DATABASE_URL, REDIS_URL and FLASK_<setting>."""
    from webapp import config

    settings = {name for name in vars(config.Defaults) if name.isupper()}
    # Read with from_prefixed_env without a default in Defaults, or by extensions from app.config.
    settings |= {"PROXY_FIX_X_FOR", "METRICS_TOKEN", "LOG_LEVEL", "MAIL_USERNAME", "MAIL_PASSWORD", "API_RATE_LIMIT",
                 "API_AUTH_FAILURES_PER_IP"}
    return {"DATABASE_URL", "REDIS_URL"} | {f"FLASK_{name}" for name in settings}


def test_compose_runs_every_part_of_the_production_shape(compose):
    assert {"postgres", "redis", "release", "web", "mail", "webhooks", "proxy"} <= compose["services"].keys()


def test_compose_runs_the_procfiles_lines(compose):
    services, lines = compose["services"], procfile()
    assert command(services["web"]) == lines["web"]
    assert command(services["release"]) == lines["release"] == ["flask", "--app", "webapp", "db", "upgrade"]
    assert command(services["mail"]) == lines["mail"]
    assert command(services["webhooks"]) == lines["webhooks"]


def test_web_and_mail_start_only_after_the_release_step_succeeded(compose):
    for name in ("web", "mail", "webhooks"):
        assert compose["services"][name]["depends_on"]["release"]["condition"] == "service_completed_successfully"
    assert compose["services"]["release"]["restart"] == "no"


def test_servers_have_healthchecks_and_the_web_one_is_healthz(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "web", "proxy"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"


def test_app_environment_names_are_ones_the_config_reads(compose):
    known = config_names()
    example = dict(line.split("=", 1) for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    for name in ("web", "mail", "release"):
        env = compose["services"][name]["environment"]
        for key in env:
            assert key in known, key
        assert env["FLASK_PROXY_FIX_X_FOR"] == "1"
        assert {"DATABASE_URL", "REDIS_URL", "FLASK_BASE_URL"} <= env.keys()
        assert compose["services"][name]["env_file"][0]["path"] == ".env"
    app_names = {k for k in example if k.startswith("FLASK_")}
    assert {"FLASK_SECRET_KEY", "FLASK_TELEPHONY_AUTH_TOKEN", "FLASK_METRICS_TOKEN"} <= app_names
    assert app_names <= known, app_names - known


def test_no_secret_is_written_in_the_compose_file_or_the_example(compose):
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAMES.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", str(value)), (name, key)
        for key, value in (service.get("environment") or {}).items():
            password = re.search(r"://[^/@:]*:([^@]*)@", str(value))
            assert password is None or password.group(1).startswith("${"), (name, key)  # no password in a URL
    example = (ROOT / "deploy" / "env.example").read_text()
    for line in example.splitlines():
        if SECRET_NAMES.search(line.split("=")[0]) and not line.startswith("#"):
            assert line.endswith("="), line  # left empty, to be filled in
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_dockerfile_is_slim_runs_as_a_user_checks_healthz_and_serves_the_procfiles_web_line():
    steps = dockerfile()
    assert "slim" in next(args for op, args in steps if op == "FROM")
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    healthcheck = next(args for op, args in steps if op == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    import json

    cmd = json.loads(next(args for op, args in steps if op == "CMD"))
    assert cmd == procfile()["web"]
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_caddy_forwards_the_client_scheme_and_host_and_hides_metrics():
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in caddyfile
    for header, value in (("X-Forwarded-For", "{remote_host}"), ("X-Forwarded-Proto", "{scheme}"),
                          ("X-Forwarded-Host", "{host}")):
        assert re.search(rf"header_up {header} {re.escape(value)}", caddyfile), header
    assert re.search(r"@metrics path /metrics", caddyfile) and "respond @metrics 404" in caddyfile


def test_the_web_runs_under_python_OO_and_webapp_has_no_assert_statements():
    """`python -OO` leaves docstrings out of a worker's memory (~4 MB of its RSS, issue 13). It also drops
    every assert statement: a check written as one would silently not run in production. The image
    compiles that bytecode once; the benchmarks, process tests (bench/harness.py) and browser tests run it too."""
    assert procfile()["web"][:4] == ["python", "-OO", "-m", "gunicorn"]
    assert any(op == "RUN" and args.startswith("python -OO -m compileall") for op, args in dockerfile())
    for runs_the_web in ("bench/harness.py", "e2e/conftest.py"):  # the benchmarks and the browser tests run it so
        assert '"-OO", "-m", "gunicorn"' in (ROOT / runs_the_web).read_text(), runs_the_web
    asserts = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in sorted((ROOT / "webapp").rglob("*.py"))
               for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)]
    assert asserts == []


def test_make_demo_serves_the_procfiles_web_line():
    demo = (ROOT / "scripts" / "demo").read_text()
    assert "sed -n 's/^web:[[:space:]]*//p' Procfile" in demo
    assert "--worker-class" not in demo and "--workers" not in demo  # nothing of its own to drift
