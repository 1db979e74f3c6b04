# The production image: the web processes (the Procfile's web line), and with another command the
# release step and the mail worker (compose.yaml). Slim, no compiler, runs as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FLASK_APP=webapp \
    PORT=8000

WORKDIR /app
RUN groupadd --system --gid 10001 renkei \
 && useradd --system --uid 10001 --gid renkei --home-dir /app --shell /usr/sbin/nologin renkei

# Dependencies first (a layer that changes only with pyproject.toml), then the code. Editable, as the
# README installs it: templates/, static/ and migrations/ are read from /app.
COPY pyproject.toml ./
COPY webapp ./webapp
RUN pip install -e '.[postgres,redis]'
# The web runs under python -OO (the Procfile): its bytecode (docstrings and asserts left out) compiled
# here once, since the image writes none at run time (PYTHONDONTWRITEBYTECODE) and each worker would.
RUN python -OO -m compileall -q -j 0 -x '/tests?/' /usr/local/lib/python3.11 webapp
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY gunicorn.conf.py Procfile ./

# Written at start-up: static/'s hashed, compressed copies (build/static) and the instance folder.
RUN mkdir -p build instance && chown renkei:renkei build instance
USER renkei:renkei

EXPOSE 8000
# /healthz is the bare route: the process answers. Readiness (database, Redis) is /readyz.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]

# The Procfile's web line (gunicorn binds 0.0.0.0:$PORT when PORT is set); tests/test_deploy.py keeps them equal.
CMD ["python", "-OO", "-m", "gunicorn", "--worker-class", "gthread", "--workers", "2", "--threads", "8", "--timeout", "30", "webapp:create_app()"]
