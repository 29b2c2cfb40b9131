#!/usr/bin/env python3
"""`scripts/pipeline schema-check` against the running pipeline's PostgreSQL: it passes on the
table `up` deployed, and fails naming the field when the table lacks one.

Run with the pipeline's environment: eval "$(scripts/pipeline env)"; python3 tests/pipeline/schema_drift.py
Cases:
- `deployed-table-matches`: the live `readings` has every column of the rendered schema.
- `field-added-to-the-schema`: the rendered schema ConfigMap with one more reading field (what
  adding a field to ehs_contract::reading::FIELDS and rendering does), checked against the live
  table, which `CREATE TABLE IF NOT EXISTS` never changes: the check fails naming that field.
- `column-missing-from-the-table`: a scratch database with the rendered schema applied and then
  one column dropped, for each column outside the primary key (those cannot be dropped): the
  check fails naming it, and no other column.
Prints cargo-style `test result:` lines so scripts/test counts them.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK = f"{ROOT}/scripts/local-stack"
SCRATCH = "ehs_schema_drift_test"


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: eval \"$(scripts/pipeline env)\" first")
    return value


def schema_check(*args):
    result = subprocess.run(
        [f"{ROOT}/scripts/pipeline", "schema-check", *args], capture_output=True, text=True, check=False
    )
    return result.returncode, result.stdout + result.stderr


def admin_sql(database, sql):
    return subprocess.run(
        [STACK, "admin-psql", "-d", database, "-At", "-c", sql], capture_output=True, text=True, check=True
    ).stdout


def deployed_table_matches():
    code, output = schema_check()
    print(f"  {output.strip()}")
    return [] if code == 0 else [f"schema-check exited {code} on the deployed table"]


def field_added_to_the_schema():
    """A field the table does not have, added where the compiler would put it: a column line of
    the generated CREATE TABLE."""
    field = f"drift_probe_{os.getpid()}"
    schema = env("EHS_STACK_POSTGRES_SCHEMA")
    with open(schema, encoding="utf-8") as f:
        configmap = yaml.safe_load(f)
    sql, added = re.subn(
        r"(CREATE TABLE IF NOT EXISTS readings \(\n)", rf"\g<1>    {field} double precision NOT NULL,\n",
        configmap["data"]["schema.sql"],
    )
    if added != 1:
        return [f"{schema} has no `CREATE TABLE IF NOT EXISTS readings (` to add a field to"]
    configmap["data"]["schema.sql"] = sql
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(configmap, f)
    try:
        code, output = schema_check("--schema", f.name)
    finally:
        os.unlink(f.name)
    print(f"  {output.strip()}")
    failures = []
    if code != 1:
        failures.append(f"schema-check exited {code}, expected 1 for a table without {field}")
    if not re.search(rf"column readings\.{field} \(double precision NOT NULL\) is in .* but not in the table", output):
        failures.append(f"the message does not name the missing field {field}: {output.strip()}")
    return failures


def column_missing_from_the_table():
    failures = []
    admin_sql("postgres", f'DROP DATABASE IF EXISTS "{SCRATCH}"')
    admin_sql("postgres", f'CREATE DATABASE "{SCRATCH}" OWNER ehs')
    try:
        subprocess.run([STACK, "apply-sql", "--database", SCRATCH, env("EHS_STACK_POSTGRES_SCHEMA")],
                       capture_output=True, check=True)
        columns = admin_sql(SCRATCH, "SELECT column_name FROM information_schema.columns "
                                     "WHERE table_name = 'readings' ORDER BY ordinal_position").split()
        key = admin_sql(SCRATCH, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                                 "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'readings'::regclass "
                                 "AND i.indisprimary").split()
        droppable = [c for c in columns if c not in key]
        if not droppable:
            return ["readings has no column outside its primary key to drop"]
        for column in droppable:
            admin_sql(SCRATCH, f"ALTER TABLE readings DROP COLUMN {column}")
            code, output = schema_check("--database", SCRATCH)
            print(f"  without {column}: exit {code}: {output.strip().splitlines()[0]}")
            named = set(re.findall(r"column readings\.(\w+) \(", output))
            if code != 1 or named != {column}:
                failures.append(f"without {column}: exit {code}, columns named missing {sorted(named)}: {output.strip()}")
            # Back, so the next case drops exactly one column.
            admin_sql(SCRATCH, "DROP TABLE readings")
            subprocess.run([STACK, "apply-sql", "--database", SCRATCH, env("EHS_STACK_POSTGRES_SCHEMA")],
                           capture_output=True, check=True)
    finally:
        admin_sql("postgres", f'DROP DATABASE IF EXISTS "{SCRATCH}"')
    return failures


def main():
    env("EHS_STACK_POSTGRES_SCHEMA")
    cases = {
        "deployed-table-matches": deployed_table_matches,
        "field-added-to-the-schema": field_added_to_the_schema,
        "column-missing-from-the-table": column_missing_from_the_table,
    }
    passed = failed = 0
    for name in sys.argv[1:] or list(cases):
        t0 = time.monotonic()
        failures = cases[name]()
        print(f"test schema_drift::{name} ... {'FAILED' if failures else 'ok'} ({time.monotonic() - t0:.1f} s)")
        for failure in failures:
            print(f"  FAIL {failure}")
        passed, failed = passed + (not failures), failed + bool(failures)
    print(f"test result: {'ok' if not failed else 'FAILED'}. {passed} passed; {failed} failed; 0 ignored")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
