#!/usr/bin/env bash
# Regenerate migrations/versions/0001_initial.py from the SQLModel tables.
# Only while MLOps Hub has no release: once a schema has shipped, add new revisions instead
# (`.venv/bin/alembic revision --autogenerate -m "..."`).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
rm -f migrations/versions/0001_initial.py
DATABASE_URL="sqlite:///$tmp/gen.db" .venv/bin/alembic -x unused=1 \
  -c alembic.ini revision --autogenerate -m "initial schema" --rev-id 0001 >/dev/null
mv migrations/versions/0001_initial_schema.py migrations/versions/0001_initial.py
echo "regenerated migrations/versions/0001_initial.py"
