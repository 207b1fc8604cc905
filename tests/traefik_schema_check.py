#!/usr/bin/env python3
"""Checks every file in DIR (recursively) against the official Traefik v3 file-provider JSON
schema in tests/data/traefik: each must be a hostd-<tenant>.toml route file that validates.
Usage: traefik_schema_check.py DIR [AT_LEAST]. The validator is first shown to accept the
schema's own example and to reject a broken document. Needs Debian's python3-jsonschema."""
import json, pathlib, sys, tomllib
import jsonschema

data = pathlib.Path(__file__).resolve().parent / "data" / "traefik"
out = pathlib.Path(sys.argv[1])
least = int(sys.argv[2]) if len(sys.argv) > 2 else 1
schema = json.loads((data / "traefik-v3-file-provider.json").read_text())
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)

def errors(doc):
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in v.iter_errors(doc)]

example = json.loads((data / "traefik-v3-file-provider.example.json").read_text())
assert not errors(example), errors(example)
broken = {"tcp": {"routers": {"r": {"rule": "HostSNI(`*`)", "service": "s", "tls": {"passthrough": "yes"}}},
                  "services": {"s": {"loadBalancer": {"servers": [{"port": 1}]}}}}}
assert len(errors(broken)) >= 2, "the validator must reject a non-boolean passthrough and a server without address"

files = sorted(out.rglob("*"))
checked = 0
failed = False
for f in files:
    if f.is_dir():
        continue
    if not (f.name.startswith("hostd-") and f.suffix == ".toml"):
        print(f"FAIL {f.relative_to(out)}: not a hostd-<tenant>.toml file (left in the watched directory)")
        failed = True
        continue
    doc = tomllib.loads(f.read_text())
    errs = errors(doc)
    checked += 1
    for e in errs:
        print(f"FAIL {f.relative_to(out)}: {e}")
    failed |= bool(errs)
print(f"{checked} Traefik route files checked against {schema['$id']}")
sys.exit(1 if failed or checked < least else 0)
