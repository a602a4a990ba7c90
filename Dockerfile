# syntax=docker/dockerfile:1
#
# The pipeline image: the daemon in a virtualenv at /opt/pipeline, run as the
# unprivileged user `pipeline` (uid 10001, supplementary group adm). The default
# /etc/pipeline/pipeline.yaml is config/local.yaml: it reads the bundled sample logs
# and writes to an embedded ClickHouse under /var/lib/pipeline, so the image runs as is.
#
#   docker build -t pipeline:0.1.0 .
#   docker run --rm -p 9600:9600 -v /var/log:/var/log:ro pipeline:0.1.0
#
# Kubernetes mounts its own /etc/pipeline (deploy/kubernetes/); see docs/deploy.md.

# --- builder: install the distribution and its dependencies into a venv ----------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The venv lives at the path the final stage uses, so its scripts' shebangs stay valid
# when it is copied across; both stages use the same base image, so the same interpreter.
RUN python3 -m venv /opt/pipeline
ENV VIRTUAL_ENV=/opt/pipeline \
    PATH=/opt/pipeline/bin:$PATH

WORKDIR /src
COPY . .
# The same install step CI runs (`scripts/install test` there): one script, one set of pins.
RUN scripts/install
# Fail the build, not the first start, if the entry point or a component module cannot import.
RUN pipeline version && pipeline schema > /dev/null

# --- final: the venv, an unprivileged user, nothing else ------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="pipeline" \
      org.opencontainers.image.description="Log shipping and processing daemon: tail, join, parse, enrich, fan out." \
      org.opencontainers.image.licenses="Apache-2.0"

# uid/gid 10001: above every distribution's system and login ranges, so it does not
# alias a host account on bind mounts. Group adm (gid 4 on Debian and Ubuntu, in the image
# and on the host): host log files are commonly root:adm 0640, and adm lets the default
# user read them without root.
RUN groupadd --system --gid 10001 pipeline \
 && useradd --system --uid 10001 --gid pipeline --groups adm \
        --home-dir /var/lib/pipeline --no-create-home --shell /usr/sbin/nologin pipeline \
 && install -d -o pipeline -g pipeline -m 0750 /var/lib/pipeline \
 && install -d -m 0755 /etc/pipeline /usr/share/pipeline

COPY --from=builder /opt/pipeline /opt/pipeline
COPY config/ /usr/share/pipeline/config/
COPY examples/ /usr/share/pipeline/examples/
COPY config/local.yaml /etc/pipeline/pipeline.yaml

# PIPELINE_API_ADDRESS: the shipped configs bind "${PIPELINE_API_ADDRESS:-127.0.0.1:9600}";
# inside a container the API must listen on all of the container's interfaces to be
# reachable through a published port or a Kubernetes probe.
# PIPELINE_DATA_DIR: the shipped configs' data_dir (and paths under it) -> the volume.
ENV PATH=/opt/pipeline/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIPELINE_API_ADDRESS=0.0.0.0:9600 \
    PIPELINE_DATA_DIR=/var/lib/pipeline

# data_dir: checkpoints, the dead-letter queue, the embedded ClickHouse.
VOLUME /var/lib/pipeline
# The working directory holds config/ and examples/, read-only: the default config's
# relative `examples/...` paths resolve here. Give your own config an absolute data_dir.
WORKDIR /usr/share/pipeline
EXPOSE 9600

# The user `pipeline` created above, by number so Kubernetes' runAsNonRoot can verify it
# is not root. No `:group`: with an explicit group the runtime drops the supplementary
# groups from /etc/group, and adm is one of them.
USER 10001

# slim has no curl: the image's own Python does the request. Any failure (refused, 503,
# timeout) raises and exits non-zero. PIPELINE_HEALTH_URL overrides the address for a
# config whose API listens elsewhere.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ.get('PIPELINE_HEALTH_URL', 'http://127.0.0.1:9600/health'), timeout=4)"]

# The daemon handles SIGTERM itself (drain, checkpoint, exit), also as PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["pipeline"]
CMD ["run", "--config", "/etc/pipeline/pipeline.yaml"]
