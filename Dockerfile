# One image for every fleet role; the command picks the role (scf dispatcher | scf worker | scf up).
# `scf worker` / `scf up` start one worker process per visible core unless --processes (or
# SCF_PROCESSES) says otherwise; the supervisor answers the health check on 9464 for all of them.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
# Tesseract reads PDF pages that have no text layer (OCR).
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr \
    && rm -rf /var/lib/apt/lists/*
# The locked set first (its layer survives code changes), then the project without re-resolving.
COPY requirements/fleet.lock ./requirements/
RUN pip install --no-cache-dir -r requirements/fleet.lock
COPY pyproject.toml README.md ./
COPY scf ./scf
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 scf
USER scf
EXPOSE 9464
HEALTHCHECK CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:9464/healthz', timeout=3)"
CMD ["scf", "worker"]
