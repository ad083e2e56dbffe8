#!/usr/bin/env python3
"""Load benchmark of the vault's HTTP API, side by side with the do-it-yourself peer.

custody: `custody serve` (release build) on a fresh data directory, driven by wrk with 32
connections for: create, plain read with a purpose, masked read, search and token reveal.
Every one of these calls is audited (a ledger event made durable before the answer).

custody on PostgreSQL: two `custody serve` nodes over one PostgreSQL (vault and ledger in
it, `custody init --store`), 16 of the 32 connections on each, for create and plain read;
the figures are the two nodes' sums (throughput) and the worse node's latency.

Peer: PostgreSQL with pgcrypto, the same fields encrypted with pgp_sym_encrypt and read
back with pgp_sym_decrypt, driven by pgbench with the same 32 clients.

Usage: bench/vault_load.py [--seconds 10] [--connections 32] [--runs 3] [--smoke]
  --runs: each call is measured this many times; the medians are printed.
  --smoke: one 2-second run of each for CI (figures printed, targets not judged).
Needs: wrk (Debian package), pgbench and a PostgreSQL server on 127.0.0.1:5432 (trust auth).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASS = "bench passphrase, not a secret"
TARGETS = {"create": (1500, 20.0), "read plain": (5000, 20.0), "read masked": (5000, 20.0)}
PG_TARGETS = {"create": (800, 40.0), "read plain": (2500, 40.0)}
PG_URL = "postgres://postgres@127.0.0.1:5432/test"


def custody_binary():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "custody"], cwd=ROOT, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                          check=True, capture_output=True, text=True)
    return os.path.join(json.loads(meta.stdout)["target_directory"], "release", "custody")


def request(port, method, path, key, body=None, purpose=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if purpose:
        headers["X-Custody-Purpose"] = purpose
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = json.loads(response.read() or b"null")
    conn.close()
    return response.status, data


def customer(i):
    return {"fields": {
        "name": f"Bench Customer {i}", "email": f"bench{i}@example.com",
        "phone": f"+1 415 555 {i % 10000:04d}", "address": f"{i} Market Street, San Francisco, CA 94105",
        "card_number": "4539526018159083", "ssn": f"{200 + i:03d}-44-{1000 + i:04d}", "notes": "benchmark record"}}


LUA_CREATE = """
counter = 0
request = function()
  counter = counter + 1
  -- a different valid SSN each time (area 100-599, group 10-89, serial 0001-9999)
  local ssn = string.format("%03d-%02d-%04d", 100 + counter % 500, 10 + counter % 80, 1 + counter % 9999)
  local body = string.format('{"fields":{"name":"Load Test %d","email":"load%d@example.com","phone":"+1 415 555 %04d","address":"%d Main St, Springfield, OR 97403","card_number":"4539526018159083","ssn":"%s","notes":"load"}}', counter, counter, counter % 10000, counter, ssn)
  return wrk.format("POST", "/v1/collections/customers/records", nil, body)
end
"""

LUA_PICK = """
ids = {%s}
counter = 0
request = function()
  counter = counter + 1
  local x = ids[(counter %% #ids) + 1]
  %s
end
"""


def wrk(port, key, name, lua, seconds, connections, purpose=None):
    return wrk_many([port], key, name, lua, seconds, connections, purpose)


def wrk_many(ports, key, name, lua, seconds, connections, purpose=None):
    """wrk against each port at once, the connections split between them: throughput
    summed, latency of the worse."""
    headers = ["-H", f"Authorization: Bearer {key}", "-H", "Content-Type: application/json"]
    if purpose:
        headers += ["-H", f"X-Custody-Purpose: {purpose}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    each = max(1, connections // len(ports))
    threads = max(1, 2 // len(ports))
    procs = [subprocess.Popen(["wrk", f"-t{threads}", f"-c{each}", f"-d{seconds}s", "--latency", "-s", script,
                               *headers, f"http://127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True)
             for port in ports]
    outs = [p.communicate()[0] for p in procs]
    os.unlink(script)
    parsed = [parse_wrk(name, out) for out in outs]
    return {"name": name, "rps": sum(r["rps"] for r in parsed), "p50": max(r["p50"] for r in parsed),
            "p99": max(r["p99"] for r in parsed), "errors": sum(r["errors"] for r in parsed),
            "socket": " ".join(r["socket"] for r in parsed).strip()}


def parse_wrk(name, out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"name": name, "rps": rps, "p50": pct(50), "p99": pct(99),
            "errors": int(errors.group(1)) if errors else 0,
            "socket": socket_errors.group(1) if socket_errors else ""}


def psql(sql):
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, capture_output=True, text=True)


PG_CREATE = """\\set n random(1, 1000000000)
INSERT INTO bench_customers (name, email, phone, address, card_number, ssn, notes, email_hash)
VALUES (pgp_sym_encrypt('Load Test ' || :n, 'bench-key'), pgp_sym_encrypt('load' || :n || '@example.com', 'bench-key'),
        pgp_sym_encrypt('+1 415 555 0100', 'bench-key'), pgp_sym_encrypt(:n || ' Main St, Springfield, OR 97403', 'bench-key'),
        pgp_sym_encrypt('4539526018159083', 'bench-key'), pgp_sym_encrypt('219-44-7321', 'bench-key'),
        pgp_sym_encrypt('load', 'bench-key'), md5('load' || :n || '@example.com'));
"""

PG_READ = """\\set id random(1, 200)
SELECT pgp_sym_decrypt(name, 'bench-key'), pgp_sym_decrypt(email, 'bench-key'), pgp_sym_decrypt(phone, 'bench-key'),
       pgp_sym_decrypt(address, 'bench-key'), pgp_sym_decrypt(card_number, 'bench-key'), pgp_sym_decrypt(ssn, 'bench-key'),
       pgp_sym_decrypt(notes, 'bench-key') FROM bench_customers WHERE id = :id;
"""


def pgbench(name, script_text, seconds, connections):
    work = tempfile.mkdtemp()
    script = os.path.join(work, "script.sql")
    with open(script, "w") as f:
        f.write(script_text)
    out = subprocess.run(["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-c", str(connections), "-j", "2",
                          "-T", str(seconds), "-f", script, "-l", "--log-prefix", os.path.join(work, "log"), "test"],
                         capture_output=True, text=True, check=True, cwd=work).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latencies = []
    for log in os.listdir(work):
        if log.startswith("log"):
            with open(os.path.join(work, log)) as f:
                latencies += [int(line.split()[2]) / 1000 for line in f if line.strip()]
    shutil.rmtree(work)
    latencies.sort()
    return {"name": name, "rps": tps, "p50": statistics.median(latencies),
            "p99": latencies[int(len(latencies) * 0.99) - 1], "errors": 0, "socket": ""}


def median_of(runs):
    """The median of each figure over several runs of one call."""
    out = dict(runs[0])
    for figure in ("rps", "p50", "p99"):
        out[figure] = statistics.median(r[figure] for r in runs)
    out["errors"] = sum(r["errors"] for r in runs)
    return out


def init(custody, data, env, extra=()):
    """`custody init` (with the reveal limit lifted for the load); the owner's key."""
    out = subprocess.run([custody, "--data-dir", data, "init", *extra], env=env, check=True, capture_output=True,
                         text=True).stdout
    key = re.search(r"ck_[0-9a-f]+_[0-9a-f]+", out).group(0)
    config_path = os.path.join(data, "config.toml")
    with open(config_path) as f:
        config = f.read()
    with open(config_path, "w") as f:
        for limit in ("reveals_per_minute = 600", "searches_per_minute = 300", "writes_per_minute = 600"):
            config = config.replace(limit, limit.split(" = ")[0] + " = 1000000000")
        f.write(config)
    return key


def serve(custody, data, env):
    log = open(os.path.join(data, "server.log"), "w")
    server = subprocess.Popen([custody, "--data-dir", data, "serve", "--listen", "127.0.0.1:0"], env=env,
                              stdout=subprocess.PIPE, stderr=log, text=True)
    port = int(re.search(r"127\.0\.0\.1:(\d+)", server.stdout.readline()).group(1))
    return server, port


def seed_and_calls(ports, key):
    """200 customers (through the first node), and the wrk script of each call."""
    ids, tokens = [], []
    for i in range(200):
        status, created = request(ports[0], "POST", "/v1/collections/customers/records", key, customer(i),
                                  purpose="billing")
        assert status == 201, created
        ids.append(created["id"])
        tokens.append(created["tokens"]["card_number"])
    id_list = ",".join(f'"{i}"' for i in ids)
    token_list = ",".join(f'"{t}"' for t in tokens)
    read = 'return wrk.format("GET", "/v1/collections/customers/records/" .. x)'
    search = 'return wrk.format("GET", "/v1/collections/customers/records?email=" .. x)'
    reveal = 'return wrk.format("POST", "/v1/tokens/reveal", nil, \'{"token":"\' .. x .. \'"}\')'
    emails = ",".join(f'"bench{i}@example.com"' for i in range(200))
    return [
        ("create", LUA_CREATE, None),
        ("read plain", LUA_PICK % (id_list, read), "billing"),
        ("read masked", LUA_PICK % (id_list, read), None),
        ("search", LUA_PICK % (emails, search), None),
        ("token reveal", LUA_PICK % (token_list, reveal), "billing"),
    ]


def verify_ledger(custody, data):
    verify = subprocess.run([custody, "--data-dir", data, "ledger", "verify"], capture_output=True, text=True)
    events = re.search(r"OK: (\d+) events", verify.stdout + verify.stderr)
    if verify.returncode != 0:
        print(f"Ledger verification FAILED in {data}: {verify.stdout}{verify.stderr}")
    return (events.group(1) if events else "?"), verify.returncode == 0


def drop_schemas(schema):
    psql(f"DROP SCHEMA IF EXISTS {schema}_vault CASCADE; DROP SCHEMA IF EXISTS {schema}_ledger CASCADE;")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    seconds = 2 if args.smoke else args.seconds
    runs = 1 if args.smoke else args.runs
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    custody = custody_binary()
    env = dict(os.environ, CUSTODY_PASSPHRASE=PASS)
    verify_ok = True

    # One node on the embedded SQLite store.
    data = tempfile.mkdtemp(prefix="custody-bench-")
    key = init(custody, data, env)
    server, port = serve(custody, data, env)
    try:
        calls = seed_and_calls([port], key)
        results = [median_of([wrk(port, key, name, lua, seconds, args.connections, purpose=purpose)
                              for _ in range(runs)]) for name, lua, purpose in calls]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    events, ok = verify_ledger(custody, data)
    verify_ok &= ok
    shutil.rmtree(data)

    # Two nodes over one PostgreSQL.
    schema = f"bench_{os.getpid()}"
    drop_schemas(schema)
    node_a = tempfile.mkdtemp(prefix="custody-bench-a-")
    pg_key = init(custody, node_a, env, ["--store", PG_URL, "--schema", schema])
    node_b = tempfile.mkdtemp(prefix="custody-bench-b-")
    shutil.rmtree(node_b)
    shutil.copytree(node_a, node_b, ignore=shutil.ignore_patterns("*.lock"))
    servers = [serve(custody, d, env) for d in (node_a, node_b)]
    ports = [p for _, p in servers]
    try:
        calls = seed_and_calls(ports, pg_key)
        pg_results = [median_of([wrk_many(ports, pg_key, name, lua, seconds, args.connections, purpose=purpose)
                                 for _ in range(runs)]) for name, lua, purpose in calls
                      if name in PG_TARGETS]
    finally:
        for s_, _ in servers:
            s_.send_signal(signal.SIGTERM)
        for s_, _ in servers:
            s_.wait(timeout=60)
    pg_events, ok = verify_ledger(custody, node_b)
    verify_ok &= ok
    shutil.rmtree(node_a)
    shutil.rmtree(node_b)
    drop_schemas(schema)

    psql("DROP TABLE IF EXISTS bench_customers; CREATE EXTENSION IF NOT EXISTS pgcrypto; "
         "CREATE TABLE bench_customers (id bigserial PRIMARY KEY, name bytea, email bytea, phone bytea, address bytea, "
         "card_number bytea, ssn bytea, notes bytea, email_hash text); CREATE INDEX ON bench_customers (email_hash);")
    for i in range(200):
        psql(PG_CREATE.replace("\\set n random(1, 1000000000)\n", "").replace(":n", str(i)))
    peer = [median_of([pgbench(name, script, seconds, args.connections) for _ in range(runs)])
            for name, script in [("create", PG_CREATE), ("read plain", PG_READ)]]
    psql("DROP TABLE bench_customers;")

    print(f"\nVault API load, {args.connections} connections, median of {runs} run(s) of {seconds} s, this machine ({os.cpu_count()} cores)")
    print(f"{'call':<14} {'custody req/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}   target")
    for r in results:
        target = TARGETS.get(r["name"])
        verdict = ""
        if target and not args.smoke:
            ok = r["rps"] >= target[0] and r["p99"] <= target[1]
            verdict = f">= {target[0]}/s, p99 <= {target[1]:.0f} ms: {'met' if ok else 'NOT met'}"
        print(f"{r['name']:<14} {r['rps']:>14,.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8}   {verdict} {r['socket']}")
    print(f"\nTwo custody nodes over one PostgreSQL (vault and ledger there), {args.connections // 2} connections each")
    print(f"{'call':<14} {'custody req/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}   target")
    for r in pg_results:
        target = PG_TARGETS[r["name"]]
        verdict = ""
        if not args.smoke:
            ok = r["rps"] >= target[0] and r["p99"] <= target[1]
            verdict = f">= {target[0]}/s, p99 <= {target[1]:.0f} ms: {'met' if ok else 'NOT met'}"
        print(f"{r['name']:<14} {r['rps']:>14,.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['errors']:>8}   {verdict} {r['socket']}")
    print(f"\nPeer: PostgreSQL + pgcrypto (pgp_sym_encrypt/decrypt on the same 7 fields), pgbench, {args.connections} clients")
    print(f"{'call':<14} {'peer tx/s':>14} {'p50 ms':>8} {'p99 ms':>8}   SQLite node / peer   2 PG nodes / peer")
    for p in peer:
        ours = next(r for r in results if r["name"] == p["name"])
        pg = next(r for r in pg_results if r["name"] == p["name"])
        print(f"{p['name']:<14} {p['rps']:>14,.0f} {p['p50']:>8.2f} {p['p99']:>8.2f}   "
              f"{ours['rps'] / p['rps']:>8.2f}x {'':10} {pg['rps'] / p['rps']:>8.2f}x (reads: target >= 2x)")
    print(f"\nLedgers after the runs: SQLite {events} events, PostgreSQL {pg_events} events, "
          + ("both verified" if verify_ok else "verification FAILED"))
    if not verify_ok or any(r["errors"] for r in results + pg_results):
        sys.exit(1)


if __name__ == "__main__":
    main()
