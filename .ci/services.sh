# Real services for the test suite: a PostgreSQL server (Debian's packages) and an MLflow tracking
# server with a Postgres backend store. Source it (`. .ci/services.sh`) after `make setup`: it
# exports the URLs the integration tests use, so the whole graph is materialized against a
# Postgres-backed Dagster instance and the MLflow server. `make services` runs it too.
#
#   LLM_ASSETS_TEST_POSTGRES_URL  a role that may create databases (one per test session)
#   LLM_ASSETS_TEST_MLFLOW_URI    the MLflow server (backend store: database `mlflow`)
set -euo pipefail

PG_USER=llm_assets
# Distinctive on purpose: test_security.py looks for it in everything a run recorded.
PG_PASSWORD=ci-pg-pw-5e8d1b
MLFLOW_PORT=${LLM_ASSETS_CI_MLFLOW_PORT:-5055}
STATE=${LLM_ASSETS_CI_STATE:-$PWD/var/ci}
mkdir -p "$STATE"

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "services: installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
cluster=$(pg_lsclusters --no-header | awk 'NR == 1 {print $1 " " $2}')
if [ -z "$cluster" ]; then
  pg_createcluster 15 main >/dev/null
  cluster="15 main"
fi
# shellcheck disable=SC2086
pg_ctlcluster $cluster start 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 && break
  sleep 1
done
pg_isready -h 127.0.0.1

as_postgres() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAc "$1"; }
if [ "$(as_postgres "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != "1" ]; then
  as_postgres "CREATE ROLE $PG_USER LOGIN CREATEDB"
fi
as_postgres "ALTER ROLE $PG_USER PASSWORD '$PG_PASSWORD'"
if [ "$(as_postgres "SELECT 1 FROM pg_database WHERE datname = 'mlflow'")" != "1" ]; then
  as_postgres "CREATE DATABASE mlflow OWNER $PG_USER"
fi

export LLM_ASSETS_TEST_POSTGRES_URL="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:5432/postgres"
export LLM_ASSETS_TEST_MLFLOW_URI="http://127.0.0.1:$MLFLOW_PORT"

if ! curl -fsS "$LLM_ASSETS_TEST_MLFLOW_URI/health" >/dev/null 2>&1; then
  echo "services: starting the MLflow server on $LLM_ASSETS_TEST_MLFLOW_URI"
  nohup .venv/bin/mlflow server \
    --backend-store-uri "postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:5432/mlflow" \
    --serve-artifacts --artifacts-destination "$STATE/mlflow-artifacts" \
    --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 2 \
    >"$STATE/mlflow-server.log" 2>&1 &
  for _ in $(seq 1 120); do
    curl -fsS "$LLM_ASSETS_TEST_MLFLOW_URI/health" >/dev/null 2>&1 && break
    sleep 1
  done
  if ! curl -fsS "$LLM_ASSETS_TEST_MLFLOW_URI/health" >/dev/null; then
    tail -30 "$STATE/mlflow-server.log"
    exit 1
  fi
fi
echo "services: PostgreSQL and MLflow ($LLM_ASSETS_TEST_MLFLOW_URI) are up"
set +euo pipefail
