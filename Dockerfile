# The service under gunicorn, as a non-root user. The install steps are those of the
# README (`pip install .`), which CI runs, since no container engine runs on our CI.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SPINE_CDS_HOST=0.0.0.0 \
    SPINE_CDS_PORT=8080 \
    SPINE_CDS_DATABASE_PATH=/var/lib/spine-cds/spine-cds.sqlite3

RUN useradd --system --create-home --home-dir /home/spine-cds --uid 10001 spine-cds \
    && mkdir -p /var/lib/spine-cds && chown spine-cds /var/lib/spine-cds

WORKDIR /opt/spine-cds
COPY pyproject.toml README.md hooks.json ./
COPY cds_service ./cds_service
COPY fhir_mappers ./fhir_mappers
RUN python -m pip install --upgrade pip && python -m pip install .

USER spine-cds
EXPOSE 8080
VOLUME ["/var/lib/spine-cds"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status == 200 else 1)"
CMD ["spine-cds", "serve"]
