#!/bin/bash
# Every kind of file hostd's Traefik writer puts in the watched directory validates against
# the official Traefik v3 file-provider JSON schema (tests/data/traefik, draft-07). TOML is
# read with Python's tomllib and checked with Debian's python3-jsonschema. The validator is
# first shown to accept the schema's own example and to reject a broken file.
set -euo pipefail
samples=$1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$samples" "$out"
"$(dirname "$0")/traefik_schema_check.py" "$out" 12
