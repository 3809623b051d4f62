# spine-cds: the service under gunicorn, as uid 10001, in two stages.
#
# builder: virtual environments, dependencies from requirements.lock (pinned, with
#          hashes) before the source is copied, so a code change rebuilds only the
#          last layers; the project's wheel built with the pinned hatchling.
# runtime: the base image, the service's virtual environment and nothing else: no pip,
#          no build tools, no source tree.
#
# BASE_IMAGE is pinned by digest: the official Python slim image (Debian bookworm).
# Any image with python3 (3.11+) and its venv module will do; scripts/container-test.sh
# builds one from Debian's packages when no registry is reachable. docs/deployment.md
# says how to run it (read-only root filesystem, volumes, probes, secrets).
ARG BASE_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/build && python3 -m venv /opt/spine-cds
COPY requirements-build.lock requirements.lock /tmp/locks/
# A build network that inspects TLS needs its CA: pass it as the optional build secret
# ca-bundle (--secret id=ca-bundle,src=FILE); it is mounted for this step only, never
# stored in a layer.
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
    && /opt/build/bin/python -m pip install --require-hashes --no-deps \
        -r /tmp/locks/requirements-build.lock \
    && /opt/spine-cds/bin/python -m pip install --require-hashes --no-deps --only-binary=:all: \
        -r /tmp/locks/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md hooks.json ./
COPY fhir_mappers ./fhir_mappers
COPY cds_service ./cds_service
RUN /opt/build/bin/hatchling build --target wheel --directory /tmp/wheel \
    && /opt/spine-cds/bin/python -m pip install --no-deps /tmp/wheel/*.whl \
    && /opt/spine-cds/bin/python -m pip uninstall --yes pip setuptools \
    && /opt/spine-cds/bin/spine-cds --version

FROM ${BASE_IMAGE} AS runtime
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="spine-cds" \
      org.opencontainers.image.description="CDS Hooks service advising on repeat spine MRI/CT in treated pyogenic spondylodiscitis" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
# No pip in the image that runs (the official image ships one in /usr/local); the
# service's user, 10001, with no home and no shell; its data directory.
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall --yes --quiet pip setuptools wheel; \
    fi \
    && echo "spine-cds:x:10001:10001:spine-cds:/nonexistent:/usr/sbin/nologin" >> /etc/passwd \
    && echo "spine-cds:x:10001:" >> /etc/group \
    && mkdir -p /var/lib/spine-cds \
    && chown 10001:10001 /var/lib/spine-cds \
    && chmod 0750 /var/lib/spine-cds
COPY --from=builder /opt/spine-cds /opt/spine-cds
# The port is the default 8080 and not set here: under Kubernetes a Service named
# spine-cds injects SPINE_CDS_PORT=tcp://..., which the settings ignore (and log).
ENV PATH=/opt/spine-cds/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SPINE_CDS_HOST=0.0.0.0 \
    SPINE_CDS_DATABASE_PATH=/var/lib/spine-cds/spine-cds.sqlite3
WORKDIR /var/lib/spine-cds
USER 10001:10001
EXPOSE 8080
# Writable paths: this volume (the SQLite database; none with database_url), and a
# temporary directory for the workers' metrics files, /tmp or else /dev/shm. With a
# read-only root filesystem mount a tmpfs at /tmp (Kubernetes: an emptyDir).
VOLUME ["/var/lib/spine-cds"]
# gunicorn (PID 1) stops on SIGTERM: it stops accepting, lets running calls finish
# within its graceful timeout (8 s), then exits; stop timeouts are 10 s (docker, podman)
# or more (Kubernetes), so nothing is cut.
STOPSIGNAL SIGTERM
# Readiness, on the address and port the settings give (build with --format docker:
# the OCI image format has no health check; Kubernetes uses its own probes instead).
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 \
    CMD ["python3", "-m", "cds_service.server", "--probe", "/readyz"]
CMD ["spine-cds", "serve"]
