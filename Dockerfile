# Two images from one file:
#   docker build --target keycloak -t identity-keycloak .   Keycloak (pinned, from Maven Central) with
#                                                             the keycloak_spi_bridge provider built in
#   docker build -t identity .                               the identity service (the default, last stage)
# Schema: run `identity db upgrade` once per release (a job or init container) before the workers.

ARG KEYCLOAK_VERSION=26.7.3

# --- the provider and the Keycloak distribution, both through Maven ---------------------------
FROM maven:3.9-eclipse-temurin-21 AS keycloak-build
ARG KEYCLOAK_VERSION
WORKDIR /build
RUN mvn -q -B dependency:copy -Dartifact=org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:zip \
        -DoutputDirectory=/build \
    && apt-get update -q && apt-get install -y -q --no-install-recommends unzip && rm -rf /var/lib/apt/lists/* \
    && unzip -q keycloak-quarkus-dist-${KEYCLOAK_VERSION}.zip \
    && mv keycloak-${KEYCLOAK_VERSION} /opt/keycloak
COPY keycloak_spi_bridge/pom.xml keycloak_spi_bridge/pom.xml
RUN mvn -q -B -f keycloak_spi_bridge/pom.xml dependency:go-offline -Dkeycloak.version=${KEYCLOAK_VERSION} \
        -Dkeycloak.dist=/opt/keycloak
COPY keycloak_spi_bridge/src keycloak_spi_bridge/src
# Compiled against the distribution's own keycloak-model-jpa (the pom says why).
RUN mvn -q -B -f keycloak_spi_bridge/pom.xml package -Dkeycloak.version=${KEYCLOAK_VERSION} -Dkeycloak.dist=/opt/keycloak \
    && cp keycloak_spi_bridge/target/keycloak-spi-bridge.jar /opt/keycloak/providers/
# The China login and email themes (Simplified Chinese first, nothing loaded from outside).
COPY config/keycloak/themes/ /opt/keycloak/themes/
# Optimised for MariaDB/MySQL, health and metrics on, behind a proxy that sets X-Forwarded-*.
RUN /opt/keycloak/bin/kc.sh build --db=mariadb --health-enabled=true --metrics-enabled=true

# --- the Keycloak image ------------------------------------------------------------------------
FROM eclipse-temurin:21-jre AS keycloak
RUN useradd --system --uid 10002 --home-dir /opt/keycloak keycloak
COPY --from=keycloak-build --chown=keycloak:keycloak /opt/keycloak /opt/keycloak
USER keycloak
EXPOSE 8080 9000
# KC_DB_URL, KC_DB_USERNAME, KC_DB_PASSWORD, KC_HOSTNAME, KC_BOOTSTRAP_ADMIN_*, and
# IDENTITY_BRIDGE_SECRET (the bridge's shared secret) come from the environment.
ENTRYPOINT ["/opt/keycloak/bin/kc.sh", "start", "--optimized", "--proxy-headers=xforwarded", "--http-enabled=true"]

# --- the identity service (default) ------------------------------------------------------------
FROM python:3.11-slim AS service

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    IDENTITY_BIND=0.0.0.0:8000 \
    IDENTITY_KEYCLOAK_PROXY=false

RUN useradd --system --uid 10001 --create-home --home-dir /home/identity identity
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml setup.cfg README.md ./
COPY identity/__init__.py identity/__init__.py
RUN pip install -e . && pip check

COPY identity ./identity
COPY migrations ./migrations
COPY config ./config

USER identity
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["gunicorn", "--config", "config/gunicorn.conf.py", "identity:create_app()"]
