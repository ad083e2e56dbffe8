//! Ledger benchmark (not a test): durable append rate with group commit at 1, 8 and 64
//! writers beside the disk's raw fsync rate, inclusion-proof time at large sizes, and the
//! full-verification rate.
//!
//! `cargo bench -p custody-ledger --bench ledger` (sizes: `LEDGER_BENCH_SIZES=1000000,10000000`;
//! `LEDGER_BENCH_DIR` for where the data goes, default a temporary directory;
//! `LEDGER_BENCH_SECONDS` per append run, default 3).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use custody_ledger::merkle::{leaf_hash, verify_inclusion};
use custody_ledger::{Event, Ledger, LedgerOptions, Outcome};

fn event(i: u64) -> Event {
    let mut e =
        Event::new(format!("key:staff{}", i % 7), custody_ledger::Action::RecordRead, Outcome::Ok);
    e.fields = vec!["name".into(), "phone".into(), "address".into()];
    e.purpose = Some("order_fulfillment".into());
    e.request_id = Some(format!("req-{i:012}"));
    e.details.insert("n".into(), i.into());
    e
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// fsyncs per second of 4 KiB writes in `dir`: the physical ceiling for unbatched appends.
fn fsync_rate(dir: &Path) -> f64 {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = [7u8; 4096];
    let n = 300;
    let start = Instant::now();
    for _ in 0..n {
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
    }
    let rate = f64::from(n) / start.elapsed().as_secs_f64();
    std::fs::remove_file(path).unwrap();
    rate
}

fn append_rate(dir: &Path, writers: u64, seconds: f64) -> f64 {
    let ledger = Ledger::init(dir, LedgerOptions::default()).unwrap();
    let done = AtomicBool::new(false);
    let count = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let (ledger, done, count) = (&ledger, &done, &count);
            s.spawn(move || {
                let mut i = w << 40;
                while !done.load(Ordering::Relaxed) {
                    ledger.append(&event(i)).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(seconds));
        done.store(true, Ordering::Relaxed);
    });
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    let report = ledger.verify().unwrap();
    assert_eq!(report.problem, None);
    rate
}

fn main() {
    let base = std::env::var("LEDGER_BENCH_DIR")
        .map_or_else(|_| tempfile::tempdir().unwrap().keep(), Into::into);
    std::fs::create_dir_all(&base).unwrap();
    println!(
        "ledger benchmark in {} ({} cores)",
        base.display(),
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    );

    let fsyncs = fsync_rate(&base);
    println!("disk raw fsync rate (4 KiB write + fdatasync):      {fsyncs:>10.0} /s");
    for writers in [1, 8, 64] {
        let dir = base.join(format!("appends-{writers}"));
        let _ = std::fs::remove_dir_all(&dir);
        let seconds = std::env::var("LEDGER_BENCH_SECONDS").map_or(3.0, |s| s.parse().unwrap());
        let rate = append_rate(&dir, writers, seconds);
        println!(
            "durable appends/s, {writers:>2} concurrent writers:           {rate:>10.0} /s  ({:.1}x the fsync rate)",
            rate / fsyncs
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    let sizes: Vec<u64> = std::env::var("LEDGER_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    for size in sizes {
        let dir = base.join(format!("size-{size}"));
        let ledger = if Ledger::exists(&dir) {
            Ledger::open(&dir, LedgerOptions::default()).unwrap()
        } else {
            let ledger = Ledger::init(&dir, LedgerOptions::default()).unwrap();
            let start = Instant::now();
            let batch = 50_000;
            let mut i = 0;
            while i < size {
                let events: Vec<Event> = (i..(i + batch).min(size)).map(event).collect();
                ledger.append_all(&events).unwrap();
                i += batch;
            }
            println!(
                "loaded {size} events in {:.1} s (bulk, {batch} per transaction)",
                start.elapsed().as_secs_f64()
            );
            ledger
        };
        assert_eq!(ledger.size().unwrap(), size);
        let root = ledger.root(size).unwrap();
        let mut times = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let index = x % size;
            let start = Instant::now();
            let proof = ledger.inclusion_proof(index, size).unwrap();
            times.push(start.elapsed().as_secs_f64() * 1e3);
            assert!(verify_inclusion(
                &leaf_hash(&ledger.leaf(index).unwrap()),
                index,
                size,
                &proof,
                &root
            ));
        }
        println!(
            "inclusion proof at {size:>9} events: median {:.3} ms, p99 {:.3} ms",
            median(times.clone()),
            {
                times.sort_by(f64::total_cmp);
                times[times.len() * 99 / 100]
            }
        );
        let start = Instant::now();
        let report = ledger.verify().unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(report.problem, None);
        println!(
            "full verify of {size:>9} events: {secs:.1} s, {:.0} events/s",
            size as f64 / secs
        );
    }
}
