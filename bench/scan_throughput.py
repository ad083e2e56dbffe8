#!/usr/bin/env python3
"""Scan throughput of custody against ripgrep, side by side, on one generated corpus.

Generates the throughput corpus (custody-testkit, >= 500 MB of sparse small-business files)
once, warms the page cache, then times `custody scan` (all threads and one thread) and
`rg` with an equivalent regex set for cards, SSNs, emails, phones and IBANs (rg validates
nothing). Prints medians, ratios, custody's peak RSS and its 1 -> N thread scaling, then
the scan cache: a first scan that fills it and the re-scan of the unchanged corpus.

Usage: bench/scan_throughput.py [--size-mb 512] [--runs 5] [--smoke]
  --smoke: a 16 MB corpus and one run of each, for CI (figures printed, targets not judged).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXCLUDED = {"truth.jsonl", "negatives.jsonl", ".ignore"}

# What rg searches for: the same kinds custody reports, as plain regexes.
RG_PATTERNS = [
    r"\b(?:\d{4}[ -]?){3}\d{1,7}\b",  # cards, grouped or not
    r"\b3[47]\d{2}[ -]?\d{6}[ -]?\d{5}\b",  # Amex 4-6-5
    r"\b\d{3}[- ]\d{2}[- ]\d{4}\b",  # SSN
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",  # email
    r"(?:\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b",  # phone
    r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",  # IBAN
]


def run_timed(cmd):
    """Runs cmd with stdout discarded; returns (seconds, peak RSS in MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.exit(f"{cmd[0]} failed ({code}): {err}")
    return elapsed, usage.ru_maxrss / 1024.0


def corpus_bytes(path):
    total = files = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            if name not in EXCLUDED:
                total += os.path.getsize(os.path.join(dirpath, name))
                files += 1
    return total, files


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.size_mb, args.runs = 16, 1

    rg = shutil.which("rg")
    if rg is None:
        sys.exit("ripgrep is needed for the side-by-side run: apt-get install ripgrep")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "custody", "-p", "custody-testkit"], cwd=ROOT, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT, check=True, capture_output=True, text=True)
    target = json.loads(meta.stdout)["target_directory"]
    custody = os.path.join(target, "release", "custody")
    testkit = os.path.join(target, "release", "custody-testkit")
    data = os.path.join(ROOT, "bench-data", f"throughput-{args.size_mb}")
    if not os.path.exists(os.path.join(data, "truth.jsonl")):
        subprocess.run([testkit, "generate", "--profile", "throughput", "--size-mb", str(args.size_mb), "--out", data, "--force"], check=True)
    size, files = corpus_bytes(data)
    # Warm the page cache: every tool reads from memory, not the disk.
    for dirpath, _, names in os.walk(data):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                while f.read(1 << 20):
                    pass

    excludes = [a for name in sorted(EXCLUDED) for a in ("--exclude", name)]
    cores = os.cpu_count() or 1
    # --no-cache: every run reads every file (the cache is measured on its own below).
    custody_all = [custody, "scan", "--no-cache", "--format", "jsonl", *excludes, data]
    custody_one = [custody, "scan", "--no-cache", "--threads", "1", "--format", "jsonl", *excludes, data]
    # (?-u): ASCII classes and word boundaries, rg's fastest mode for these patterns (its
    # Unicode default is about half as fast here); -c counts matching lines, its least work.
    rg_cmd = [rg, "--no-ignore", "--hidden", f"-j{cores}", "-c"]
    for p in RG_PATTERNS:
        rg_cmd += ["-e", "(?-u)" + p]
    for name in sorted(EXCLUDED):
        rg_cmd += ["-g", f"!{name}"]
    rg_cmd.append(data)

    results = {"custody": [], "custody-1": [], "rg": []}
    rss = []
    for _ in range(args.runs):
        # Interleave the tools so that machine noise hits them alike.
        t, m = run_timed(custody_all)
        results["custody"].append(t)
        rss.append(m)
        results["rg"].append(run_timed(rg_cmd)[0])
        t, m = run_timed(custody_one)
        results["custody-1"].append(t)
        rss.append(m)

    mb = size / 1e6
    med = {k: statistics.median(v) for k, v in results.items()}
    rate = {k: mb / v for k, v in med.items()}
    print(f"corpus: {mb:.1f} MB in {files} files ({os.path.relpath(data, ROOT)}), page cache warm, {cores} cores, {args.runs} runs each")
    print(f"{'':28}{'median s':>10}{'MB/s':>10}")
    print(f"{'custody scan (' + str(cores) + ' threads)':28}{med['custody']:>10.2f}{rate['custody']:>10.1f}")
    print(f"{'rg -j' + str(cores) + ' (same kinds, regex)':28}{med['rg']:>10.2f}{rate['rg']:>10.1f}")
    print(f"{'custody scan (1 thread)':28}{med['custody-1']:>10.2f}{rate['custody-1']:>10.1f}")
    ratio = rate["custody"] / rate["rg"]
    per_core = rate["custody-1"]
    scaling = med["custody-1"] / med["custody"]
    peak = max(rss)
    print(f"custody / rg throughput:      {ratio:.2f}x   (target >= 0.5x)")
    print(f"custody per core (1 thread):  {per_core:.1f} MB/s   (target >= 200 MB/s)")
    print(f"scaling 1 -> {cores} threads:       {scaling:.2f}x")
    print(f"custody peak RSS:             {peak:.1f} MB   (target <= 200 MB)")
    if not args.smoke:
        met = ratio >= 0.5 and per_core >= 200 and peak <= 200
        print("targets:", "met" if met else "NOT met")

    # The scan cache: the first scan with a data directory fills it; re-scanning the
    # unchanged corpus reuses every file's results (rg has no equivalent: it reads again).
    with tempfile.TemporaryDirectory() as cache_dir:
        cached = [custody, "--data-dir", cache_dir, "scan", "--format", "jsonl", *excludes, data]
        fill = run_timed(cached)[0]
        warm = statistics.median(run_timed(cached)[0] for _ in range(args.runs))
    print(f"{'custody scan, filling cache':28}{fill:>10.2f}{mb / fill:>10.1f}")
    print(f"{'custody re-scan, unchanged':28}{warm:>10.2f}{mb / warm:>10.1f}")
    print(f"re-scan / full scan time:     {warm / med['custody']:.3f}   (rg re-reads: 1.0 of its own time)")


if __name__ == "__main__":
    main()
