#!/usr/bin/env bash
# Installs checkov, the third-party policy suite that tests/chart/test_checkov.py runs over the
# rendered chart and a child Job, into its own virtual environment, .tools/checkov (ignored by
# git). Its own venv: checkov pins boto3 1.35, the project needs a newer one. Every package is
# pinned in tools/checkov-constraints.txt, so pip resolves nothing freely.
# Idempotent: returns at once when the pinned version is installed and runs.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.tools/checkov"
CONSTRAINTS="$ROOT/tools/checkov-constraints.txt"
VERSION="$(sed -n 's/^checkov==//p' "$CONSTRAINTS")"
PYTHON="${PYTHON:-python3}"

if [[ -x "$VENV/bin/checkov" ]] && [[ "$("$VENV/bin/checkov" --version 2>/dev/null)" == "$VERSION" ]]; then
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -c "$CONSTRAINTS" "checkov==$VERSION"
"$VENV/bin/checkov" --version >/dev/null
