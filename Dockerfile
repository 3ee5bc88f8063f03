# One image for every fleet role; the command picks the role (scf dispatcher | scf gateway | scf worker).
# `scf worker` starts one worker process per visible core unless --processes (or SCF_PROCESSES) says
# otherwise: in a container say it, a CPU limit does not change the cores it sees. The supervisor answers
# the probes on 9464 for all its children. docs/deployment.md: compose and Kubernetes.
# Debian 12 (bookworm), the release the project is tested on.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SCF_DATA_DIR=/var/lib/scf \
    SCF_GATEWAY_HOST=0.0.0.0 \
    SCF_METRICS_PORT=9464 \
    SERVICE_CONNECTOR_FACTORY_PORT=8306

WORKDIR /app

# Tesseract reads PDF pages that have no text layer (OCR). Not pinned to a Debian revision: bookworm's
# security updates replace the old one on the mirror, so a pin breaks the build; the base image's Debian
# release fixes the major version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr \
    && rm -rf /var/lib/apt/lists/*

# A numeric user and group (Kubernetes' runAsNonRoot can only check a number) owning a data dir outside
# /app, which stays root-owned and read-only to the fleet.
RUN groupadd --system --gid 10001 scf \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/scf --no-create-home \
       --shell /usr/sbin/nologin scf \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/scf

# The locked set first (its layer survives code changes), then the project without re-resolving.
COPY requirements/fleet.lock ./requirements/
RUN pip install --no-cache-dir -r requirements/fleet.lock
COPY pyproject.toml README.md ./
COPY scf ./scf
RUN pip install --no-cache-dir --no-deps .

USER 10001:10001
# 8306: the HTTP gateway (scf gateway); 9464: probes and Prometheus metrics of every role.
EXPOSE 8306 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9464/healthz', timeout=3)"]
CMD ["scf", "worker", "--processes", "1"]
