"""Checks the modern-dialect ClickHouse DDL against a current ClickHouse (chDB, in process).

usage: chdb_check.py DDL_FILE ARCHIVE_DIR ENCODED_DIR [QUERIES_JSON]

Creates the tables of DDL_FILE twice (databases `canh` and `canh_rb`), loads every table's
Parquet files of ARCHIVE_DIR (the archive's layout: TABLE/date=…/hour=…/*.parquet) into the first
every TABLE.rowbinary of ENCODED_DIR (Canh's RowBinary encoder) into the second and every
TABLE.native (Canh's Native encoder) into a third, and prints one JSON object per table: rows in
each, and whether they all hold the same rows.
QUERIES_JSON, a JSON list of [title, sql] pairs, is run over the loaded tables afterwards; one
last object lists the titles of those that failed, with the error.
Exits non-zero, with ClickHouse's message, when a statement of the DDL or a load fails.
"""
import glob
import json
import os
import sys

from chdb import session

ddl_file, archive, rowbinary = sys.argv[1:4]
s = session.Session()
ddl = open(ddl_file).read()
for db in ("canh", "canh_rb", "canh_nat"):
    for stmt in ddl.split(";\n"):
        if stmt.strip():
            s.query(stmt.replace("`canh`", "`%s`" % db))


def rows(db, table):
    return s.query("SELECT * FROM %s.%s ORDER BY tuple(*) FORMAT JSONEachRow" % (db, table)).bytes().decode()


for table in ("events", "flows", "alerts"):
    parquet = glob.glob(os.path.join(archive, table, "**", "*.parquet"), recursive=True)
    for f in parquet:
        s.query("INSERT INTO canh.%s SELECT * FROM file('%s', Parquet)" % (table, f))
    rb = os.path.join(rowbinary, table + ".rowbinary")
    if os.path.exists(rb):
        structure = s.query(
            "SELECT arrayStringConcat(groupArray(concat('`', name, '` ', type)), ', ') FROM "
            "(SELECT name, type FROM system.columns WHERE database = 'canh_rb' AND table = '%s' "
            "AND default_kind != 'ALIAS' ORDER BY position)" % table,
            "TabSeparatedRaw",
        ).bytes().decode().strip()
        s.query("INSERT INTO canh_rb.%s SELECT * FROM file('%s', RowBinary, '%s')"
                % (table, rb, structure.replace("'", "\\'")))
    native = os.path.join(rowbinary, table + ".native")
    if os.path.exists(native):
        s.query("INSERT INTO canh_nat.%s SELECT * FROM file('%s', Native)" % (table, native))
    a, b, c = rows("canh", table), rows("canh_rb", table), rows("canh_nat", table)
    print(json.dumps({
        "table": table,
        "parquet_rows": a.count("\n"),
        "rowbinary_rows": b.count("\n"),
        "native_rows": c.count("\n"),
        "same": a == b and (a == c or not os.path.exists(native)),
        "sample": a.splitlines()[:1],
    }))

if len(sys.argv) > 4:
    failed = []
    for title, sql in json.load(open(sys.argv[4])):
        try:
            s.query(sql)
        except Exception as e:  # the query's error, reported to the caller
            failed.append([title, str(e)[:500]])
    print(json.dumps({"failed_queries": failed}))
