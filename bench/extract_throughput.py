#!/usr/bin/env python3
"""Extraction + detection throughput inside documents, and database scanning speed.

1. Generates the throughput corpus (custody-testkit), packages it into every format family
   (`custody-testkit package`), and times `custody scan` over the Word, Excel (xlsx and
   legacy xls), PDF and mbox files of it, each family in a folder of its own: MB/s of the
   files as stored, and of the text custody read out of them.
2. Fills a PostgreSQL table (127.0.0.1:5432, database `test`) with 1,000,000 customer rows
   and times `custody scan postgres://…` in sample mode (10,000 rows per table) and with
   `--full`: rows read per second.

Prints medians of --runs runs. Usage: bench/extract_throughput.py [--size-mb 64] [--rows 1000000] [--runs 3] [--smoke]
  --smoke: a small corpus, 20,000 rows and one run, for CI (figures printed, nothing judged).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = {"docx": (".docx",), "xlsx": (".xlsx",), "xls": (".xls",), "pdf": (".pdf",), "mbox": (".mbox",)}
PG = ["psql", "-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1"]


def timed(cmd):
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return elapsed, proc.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.size_mb, args.rows, args.runs = 8, 20_000, 1

    subprocess.run(["cargo", "build", "--release", "-q", "-p", "custody", "-p", "custody-testkit"], cwd=ROOT, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT, check=True, capture_output=True, text=True)
    target = json.loads(meta.stdout)["target_directory"]
    custody = os.path.join(target, "release", "custody")
    testkit = os.path.join(target, "release", "custody-testkit")

    base = os.path.join(ROOT, "bench-data", f"formats-{args.size_mb}")
    corpus, packaged = os.path.join(base, "corpus"), os.path.join(base, "packaged")
    if not os.path.exists(os.path.join(packaged, "truth-by-value.jsonl")):
        shutil.rmtree(base, ignore_errors=True)
        subprocess.run([testkit, "generate", "--profile", "throughput", "--size-mb", str(args.size_mb), "--out", corpus, "--force"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([testkit, "package", "--from", corpus, "--out", packaged], check=True, stdout=subprocess.DEVNULL)
    for family, exts in FAMILIES.items():
        if os.path.isdir(os.path.join(base, family)):
            continue
        os.makedirs(os.path.join(base, family))
        for name in os.listdir(packaged):
            if name.endswith(exts):
                shutil.copy(os.path.join(packaged, name), os.path.join(base, family, name))

    print(f"documents from a {args.size_mb} MiB throughput corpus, {os.cpu_count()} cores, median of {args.runs}")
    print(f"{'family':8}{'files':>7}{'stored MB':>11}{'text MB':>9}{'median s':>10}{'stored MB/s':>13}{'text MB/s':>11}{'findings':>10}")
    for family in FAMILIES:
        folder = os.path.join(base, family)
        files = os.listdir(folder)
        stored = sum(os.path.getsize(os.path.join(folder, f)) for f in files) / 1e6
        times, text_mb, findings = [], 0.0, 0
        for _ in range(args.runs):
            t, out = timed([custody, "scan", "--format", "json", folder])
            times.append(t)
            summary = json.loads(out)["summary"]
            text_mb, findings = summary["bytes_scanned"] / 1e6, summary["findings"]
        med = statistics.median(times)
        print(f"{family:8}{len(files):>7}{stored:>11.1f}{text_mb:>9.1f}{med:>10.2f}{stored / med:>13.1f}{text_mb / med:>11.1f}{findings:>10}")

    # A 1,000,000-row customers table, filled by the server itself.
    subprocess.run(PG + ["-c", f"""
        DROP SCHEMA IF EXISTS custody_bench CASCADE; CREATE SCHEMA custody_bench;
        CREATE TABLE custody_bench.customers AS
          SELECT g AS id, 'Customer ' || g AS name, 'customer' || g || '@example.org' AS email,
                 lpad((100 + g % 500)::text, 3, '0') || '-' || lpad((10 + g % 80)::text, 2, '0') || '-' || lpad((1000 + g % 8999)::text, 4, '0') AS ssn,
                 'order ' || g || ' shipped' AS note
          FROM generate_series(1, {args.rows}) g;
        ALTER TABLE custody_bench.customers ADD PRIMARY KEY (id);"""], check=True)
    url = "postgres://postgres@127.0.0.1:5432/test"
    print(f"\nPostgreSQL table of {args.rows:,} rows (5 columns), {os.cpu_count()} cores, median of {args.runs}")
    print(f"{'mode':10}{'rows read':>12}{'median s':>10}{'rows/s':>12}")
    for mode, extra in (("sample", []), ("full", ["--full"])):
        times, rows = [], 0
        for _ in range(args.runs):
            t, out = timed([custody, "scan", "--format", "json", *extra, url])
            times.append(t)
            columns = json.loads(out)["summary"]["columns"]
            rows = max((c["rows_read"] for c in columns if "custody_bench" in c["column"]), default=0)
        med = statistics.median(times)
        print(f"{mode:10}{rows:>12,}{med:>10.2f}{rows / med:>12,.0f}")
    subprocess.run(PG + ["-c", "DROP SCHEMA custody_bench CASCADE"], check=True)


if __name__ == "__main__":
    main()
