#!/usr/bin/env python3
"""Schema drift: does the live database have every column the rendered schema creates?

Usage: schema-drift.py STACK SCHEMA_CONFIGMAP DATABASE

The expected tables are not a second list of columns: the rendered schema ConfigMap (whose
`readings` DDL the compiler generates from ehs_contract::reading::FIELDS) is applied to an empty
scratch database, and PostgreSQL itself says what it created. That is compared with DATABASE:
every expected table, column (with its type and NOT NULL) and primary key must be there. The
schema-init SQL is `CREATE TABLE IF NOT EXISTS`, so a field added to the reading after the table
was created never reaches it; the sink (`schema.evolution=none`) would then fail every record
into its dead-letter topic, which nobody watching `readings` would notice.

Exit 0 when nothing is missing, 1 with one `schema drift:` line per finding, 2 on errors.
"""

import os
import subprocess
import sys

COLUMNS = """SELECT c.table_name, c.column_name, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM information_schema.columns c
JOIN pg_attribute a ON a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
                   AND a.attname = c.column_name
WHERE c.table_schema = 'public' ORDER BY c.table_name, c.ordinal_position"""

PRIMARY_KEYS = """SELECT i.indrelid::regclass::text, string_agg(a.attname, ',' ORDER BY k.ord)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisprimary GROUP BY 1"""


def die(message):
    print(f"schema-drift: error: {message}", file=sys.stderr)
    sys.exit(2)


def admin_psql(stack, database, *args):
    result = subprocess.run(
        [stack, "admin-psql", "-d", database, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        die(f"psql in database {database} failed: {result.stderr.strip()}")
    return result.stdout


def describe(stack, database):
    """({table: {column: (type, not null)}}, {table: primary key columns})"""
    tables, keys = {}, {}
    for line in admin_psql(stack, database, "-At", "-F", "\t", "-c", COLUMNS).splitlines():
        table, column, sql_type, not_null = line.split("\t")
        tables.setdefault(table, {})[column] = (sql_type, not_null == "t")
    for line in admin_psql(stack, database, "-At", "-F", "\t", "-c", PRIMARY_KEYS).splitlines():
        table, columns = line.split("\t")
        keys[table] = columns.split(",")
    return tables, keys


def expected_schema(stack, schema, database):
    """What the rendered schema creates on an empty database owned by DATABASE's owner (the
    schema SQL switches to that role), read back from PostgreSQL."""
    owner = admin_psql(
        stack, database, "-At", "-c", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
    ).strip()
    scratch = f"ehs_schema_expected_{os.getpid()}"
    admin_psql(stack, "postgres", "-c", f'DROP DATABASE IF EXISTS "{scratch}"')
    admin_psql(stack, "postgres", "-c", f'CREATE DATABASE "{scratch}" OWNER "{owner}"')
    try:
        applied = subprocess.run(
            [stack, "apply-sql", "--database", scratch, schema], capture_output=True, text=True, check=False
        )
        if applied.returncode != 0:
            die(f"{schema} does not apply to an empty database: {applied.stderr.strip()}")
        return describe(stack, scratch)
    finally:
        admin_psql(stack, "postgres", "-c", f'DROP DATABASE IF EXISTS "{scratch}"')


def findings(expected, live, schema, database):
    (want_tables, want_keys), (have_tables, have_keys) = expected, live
    source = f"{schema} (the reading's table is generated from ehs_contract::reading::FIELDS)"
    out = []
    for table, columns in want_tables.items():
        have = have_tables.get(table)
        if have is None:
            out.append(f"table {table} of {source} does not exist in database {database}")
            continue
        for column, (sql_type, not_null) in columns.items():
            spelled = f"{sql_type}{' NOT NULL' if not_null else ''}"
            if column not in have:
                out.append(
                    f"column {table}.{column} ({spelled}) is in {source} but not in the table in database "
                    f"{database}; records carrying it cannot be written (the sink sends them to its dead-letter "
                    f"topic). Deploy it: ALTER TABLE {table} ADD COLUMN {column} {spelled} (with a DEFAULT if "
                    f"the table has rows), or recreate the table"
                )
            elif have[column] != (sql_type, not_null):
                got = f"{have[column][0]}{' NOT NULL' if have[column][1] else ''}"
                out.append(f"column {table}.{column} is {got} in database {database}, {spelled} in {source}")
        if want_keys.get(table) != have_keys.get(table):
            out.append(
                f"table {table}'s primary key is ({', '.join(have_keys.get(table, []))}) in database {database}, "
                f"({', '.join(want_keys.get(table, []))}) in {source}; the sink's upsert needs the latter"
            )
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    stack, schema, database = sys.argv[1:]
    expected = expected_schema(stack, schema, database)
    if not expected[0]:
        die(f"{schema} creates no table in schema public")
    problems = findings(expected, describe(stack, database), schema, database)
    for problem in problems:
        print(f"schema drift: {problem}")
    if problems:
        sys.exit(1)
    columns = sum(len(c) for c in expected[0].values())
    print(f"schema: database {database} has all {columns} columns of {', '.join(sorted(expected[0]))} that {schema} creates")


if __name__ == "__main__":
    main()
