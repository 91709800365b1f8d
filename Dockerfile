# meshwatch: the ingest pipeline (`meshwatch run`) and its tools, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MESHWATCH_DATA_DIR=/data

RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home meshwatch \
    && mkdir -p /data \
    && chown meshwatch:meshwatch /data

WORKDIR /src
# Runtime dependencies only, pinned; then the package itself without resolving again. An
# instance of a RabbitMQ cluster (compose.yaml's `cluster` profile) adds the PostgreSQL client
# its shared checkpoints and alert state need: --build-arg CLUSTER=true.
ARG CLUSTER=false
COPY deploy/requirements.txt deploy/requirements-cluster.txt /src/deploy/
RUN pip install --no-deps -r deploy/requirements.txt \
    && if [ "$CLUSTER" = "true" ]; then pip install --no-deps -r deploy/requirements-cluster.txt; fi
COPY pyproject.toml README.md /src/
COPY meshwatch /src/meshwatch
COPY ingest /src/ingest
COPY models /src/models
COPY alerts /src/alerts
COPY simulators /src/simulators
COPY common /src/common
RUN pip install --no-deps . \
    && rm -rf /src

USER meshwatch
WORKDIR /data
EXPOSE 9464

# No curl in the slim image: ask /healthz with Python (200 while connected and subscribed).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('MESHWATCH_HTTP__PORT', '9464'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["meshwatch"]
CMD ["run"]
