# The identity service image: gunicorn, non-root, migrations and config/ beside the code.
#   docker build -t identity .
#   docker run -e IDENTITY_DATABASE_URL=... -e IDENTITY_KEYCLOAK_URL=... -p 8000:8000 identity
# Schema: run `identity db upgrade` once per release (a job or init container) before the workers.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    IDENTITY_BIND=0.0.0.0:8000

RUN useradd --system --uid 10001 --create-home --home-dir /home/identity identity
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml setup.cfg README.md ./
COPY identity/__init__.py identity/__init__.py
COPY keycloak_spi_bridge/__init__.py keycloak_spi_bridge/__init__.py
RUN pip install -e . && pip check

COPY identity ./identity
COPY keycloak_spi_bridge ./keycloak_spi_bridge
COPY migrations ./migrations
COPY config ./config

USER identity
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["gunicorn", "--config", "config/gunicorn.conf.py", "identity:create_app()"]
