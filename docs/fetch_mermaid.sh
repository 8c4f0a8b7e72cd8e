#!/usr/bin/env bash
# Fetch the pinned Mermaid build the docs site serves itself (Material would load it from a CDN):
# `npm pack` of the exact version from the npm registry, checked against its pinned sha512, then
# package/dist/mermaid.min.js with a licence line on top, written atomically to the target.
# Usage: bash docs/fetch_mermaid.sh [TARGET]   (default docs/assets/javascripts/mermaid.min.js)
set -euo pipefail
VERSION=11.17.2
INTEGRITY='sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=='
cd "$(dirname "$0")/.."
target=${1:-docs/assets/javascripts/mermaid.min.js}
command -v npm >/dev/null || { echo "error: npm is needed to fetch Mermaid $VERSION for the docs (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "mermaid@$VERSION" --silent >/dev/null)
tgz="$tmp/mermaid-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
[ "$got" = "$INTEGRITY" ] || { echo "error: mermaid-$VERSION.tgz has $got, expected $INTEGRITY" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp" package/dist/mermaid.min.js
mkdir -p "$(dirname "$target")"
{ echo "/*! mermaid $VERSION (npm pack mermaid@$VERSION, package/dist/mermaid.min.js) | MIT License | Copyright (c) 2014 - 2022 Knut Sveidqvist | https://github.com/mermaid-js/mermaid */"
  cat "$tmp/package/dist/mermaid.min.js"; } > "$target.tmp"
mv "$target.tmp" "$target"
