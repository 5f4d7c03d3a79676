#!/usr/bin/env bash
# Makes the Python environment the client end-to-end tests run in:
#   crates/apiserver/tests/python/setup.sh VENV
# The official client (PyPI `kubernetes`) and pytest, plus the end-to-end tests
# that ship in the client's source distribution (the dynamic client's, sync and
# asyncio), copied into the installed package where their relative imports
# expect them, and fedmesh's stand-in for the unpublished `e2e_test.base`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$1"
version=37.0.2
python3 -m venv "$venv"
"$venv/bin/pip" install -q "kubernetes==$version" pytest
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/pip" download -q --no-deps --no-binary :all: "kubernetes==$version" -d "$work"
tar -xzf "$work/kubernetes-$version.tar.gz" -C "$work"
src="$work/kubernetes-$version/kubernetes"
pkg="$("$venv/bin/python" -c 'import kubernetes, os; print(os.path.dirname(kubernetes.__file__))')"
cp "$src/dynamic/test_client.py" "$src/dynamic/test_discovery.py" "$pkg/dynamic/"
cp "$src/aio/dynamic/client_test.py" "$src/aio/dynamic/discovery_test.py" "$pkg/aio/dynamic/"
mkdir -p "$pkg/e2e_test" "$pkg/aio/e2e_test"
: > "$pkg/e2e_test/__init__.py"
: > "$pkg/aio/e2e_test/__init__.py"
cp "$here/e2e_base_sync.py" "$pkg/e2e_test/base.py"
cp "$here/e2e_base_aio.py" "$pkg/aio/e2e_test/base.py"
echo "Python client test environment ready in $venv"
