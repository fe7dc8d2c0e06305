# Vidivo's production image: `vidivo serve` by default; `vidivo worker`, `vidivo migrate`,
# `vidivo check` and `vidivo signing-key` from the same image (see compose.yaml, docs/DEPLOY.md).

# Builder: the locked runtime dependencies (no test tooling) and the app, in one venv.
FROM python:3.12-slim AS builder
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/vidivo
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes, not on every edit.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project
COPY README.md ./
COPY src ./src
RUN uv sync --locked --no-dev --no-editable

# Runtime: the venv on a slim Python, run by an unprivileged user.
FROM python:3.12-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/vidivo --create-home vidivo
COPY --from=builder /opt/vidivo /opt/vidivo
ENV PATH=/opt/vidivo/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    VIDIVO_DATA_DIR=/var/lib/vidivo
USER 10001:10001
WORKDIR /var/lib/vidivo
# The signing key (VIDIVO_SIGNING_KEY_PATH defaults to $VIDIVO_DATA_DIR/jwt-signing-key.pem).
VOLUME ["/var/lib/vidivo"]
EXPOSE 8000
# /healthz answers while the process is up; /readyz (the database answers) is the load
# balancer's check. The worker serves no HTTP: compose.yaml turns this off for it.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["vidivo", "serve", "--host", "0.0.0.0", "--port", "8000"]
