# The two commands: `make run` brings everything up, `make test` runs the whole suite.
SHELL := /bin/bash
VENV ?= .venv
WITH_ENV := scripts/with-env

.PHONY: run test stop install tools keycloak bootstrap db-upgrade sample-import serve clean bench-load bench-import rehearsal bench-signin bench-signin-baseline clients cluster cluster-stop cluster-test

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

tools:
	scripts/install-tools.sh

var/dev.env:
	scripts/dev-env.sh

keycloak: var/dev.env
	scripts/keycloak.sh ensure

bootstrap: install keycloak
	$(WITH_ENV) identity keycloak bootstrap

db-upgrade: install var/dev.env
	$(WITH_ENV) identity db upgrade

sample-import: install bootstrap db-upgrade
	$(WITH_ENV) identity import-profiles --profiles config/sample/profiles.jsonl.gz \
		--hashes config/sample/hashes.csv.gz --report var/sample-import/report.json

serve: install var/dev.env
	$(WITH_ENV) scripts/serve.sh start

## run: Keycloak, realm, database, service on 127.0.0.1:8000
run: install keycloak bootstrap db-upgrade sample-import serve
	@echo "Keycloak:  http://127.0.0.1:8080 (admin console: /admin, credentials in var/dev.env)"
	@echo "Service:   http://127.0.0.1:8000 (GET /readyz); make stop to stop both"
	@echo "Sample:    1,000 Kii users imported (report: var/sample-import/report.md);"
	@echo "           demo user: loginName demo, Kii password Demo-Pass-2026 (README)"

## test: the whole suite against a real Keycloak (started when none runs): the Keycloak
## provider's own unit tests (Maven), then the Python suite
# The real Cognito clients the tests drive under Node (tests/clients/js), as its lockfile pins them.
CLIENTS_JS := tests/clients/js
$(CLIENTS_JS)/node_modules/.package-lock.json: $(CLIENTS_JS)/package-lock.json
	cd $(CLIENTS_JS) && npm ci --no-audit --no-fund

clients: $(CLIENTS_JS)/node_modules/.package-lock.json

test: install tools keycloak clients
	mvn -q -B -f keycloak_spi_bridge/pom.xml test -Dkeycloak.version=$$(cat config/keycloak-version)
	$(WITH_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS)

stop:
	-scripts/serve.sh stop
	scripts/keycloak.sh stop

## cluster: the production shape on loopback: two Keycloak nodes clustered on MariaDB, two services
## (gunicorn), nginx with the production template in front (scripts/cluster.py, docs/scaling.md)
cluster: install tools
	scripts/mariadb.sh start
	$(VENV)/bin/python scripts/cluster.py start

cluster-stop:
	$(VENV)/bin/python scripts/cluster.py stop

## cluster-test: the cluster's tests alone (tests/cluster) on a cluster started for them, stopped after
cluster-test: install tools
	scripts/mariadb.sh start
	$(VENV)/bin/python scripts/cluster.py start
	$(WITH_ENV) $(VENV)/bin/pytest -p no:cacheprovider tests/cluster $(PYTEST_ARGS); \
		status=$$?; $(VENV)/bin/python scripts/cluster.py stop; exit $$status

clean: stop
	rm -rf var .cache/keycloak

## bench-load: mixed load through gunicorn against Keycloak on MariaDB (docs/benchmarks.md)
bench-load: install
	$(VENV)/bin/pip install -q -e '.[bench]'
	scripts/mariadb.sh start
	$(VENV)/bin/python scripts/bench_load.py

## bench-import: `identity import-profiles` at 100,000 and 200,000 users on Keycloak and MariaDB, the
## raw-SQL ceiling, workers x batch size (docs/benchmarks.md)
bench-import: install
	scripts/mariadb.sh start
	$(VENV)/bin/python scripts/bench_import.py

## rehearsal: cut-over night timed at USERS (default 200,000; 1,000,000 as docs/cutover.md says) and a
## quarter of it: first delivery, cut-off delivery, verify; the projected two-million window (docs/benchmarks.md)
USERS ?= 200000
rehearsal: install tools
	scripts/mariadb.sh start
	$(VENV)/bin/python scripts/rehearsal.py --users $(USERS) --fresh-server

## bench-signin: sign-in, refresh and first sign-in through the service versus Keycloak's token
## endpoint, at 8 and 2 client threads, sharing the cores and with Keycloak on its own (docs/benchmarks.md)
bench-signin: install keycloak
	scripts/mariadb.sh start
	$(VENV)/bin/python scripts/bench_signin.py
	$(VENV)/bin/python scripts/bench_signin.py --threads 2 --requests 300 --worker-sweep ""
	$(VENV)/bin/python scripts/bench_signin.py --layout split --worker-sweep ""
	$(VENV)/bin/python scripts/bench_signin.py --layout split --threads 2 --requests 300 --worker-sweep ""

## bench-signin-baseline: the same sign-in rounds, this code and BASELINE's (a git commit) side by side
BASELINE ?= HEAD~1
bench-signin-baseline: install keycloak
	scripts/mariadb.sh start
	$(VENV)/bin/python scripts/bench_signin.py --worker-sweep "" --baseline $(BASELINE)
