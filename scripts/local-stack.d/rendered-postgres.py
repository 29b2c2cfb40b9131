#!/usr/bin/env python3
"""Reads what the local PostgreSQL takes from the rendered database component, for
scripts/local-stack.

Usage:
  rendered-postgres.py settings CLUSTER_YAML   the CloudNativePG Cluster's bootstrap database and
                                               owner, then its postgresql.parameters as
                                               postgresql.conf lines
  rendered-postgres.py sql FILE                the SQL of a .sql file, or of every data key ending
                                               in .sql of a rendered ConfigMap, in key order

Only the settings a single local server can take are read; storage, instances, images and
the operator's own settings have no local counterpart.
"""
import sys

import yaml


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def settings(path):
    cluster = load(path)
    if not isinstance(cluster, dict) or cluster.get("kind") != "Cluster":
        sys.exit(f"rendered-postgres: {path}: not a CloudNativePG Cluster")
    spec = cluster.get("spec") or {}
    initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
    print(f"database={initdb.get('database', 'app')}")
    print(f"owner={initdb.get('owner', initdb.get('database', 'app'))}")
    postgresql = spec.get("postgresql") or {}
    for key, value in sorted((postgresql.get("parameters") or {}).items()):
        quoted = str(value).replace("'", "''")
        print(f"param {key} = '{quoted}'")
    libraries = postgresql.get("shared_preload_libraries") or []
    if libraries:
        print(f"param shared_preload_libraries = '{','.join(libraries)}'")


def sql(path):
    if not path.endswith((".yaml", ".yml")):
        with open(path, encoding="utf-8") as f:
            sys.stdout.write(f.read())
        return
    data = (load(path) or {}).get("data") or {}
    keys = sorted(k for k in data if k.endswith(".sql"))
    if not keys:
        sys.exit(f"rendered-postgres: {path}: no data key ending in .sql")
    for key in keys:
        sys.stdout.write(f"-- {path}: {key}\n{data[key]}\n")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("settings", "sql"):
        sys.exit(__doc__)
    {"settings": settings, "sql": sql}[sys.argv[1]](sys.argv[2])


if __name__ == "__main__":
    main()
