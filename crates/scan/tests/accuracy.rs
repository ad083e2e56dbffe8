//! Accuracy on the generated small-business corpus: precision and recall per kind.
//!
//! The corpus generator (custody-testkit) builds values from the published rules on its
//! own, plants them in realistic files beside hard negatives (Luhn-valid order ids, floats,
//! timestamps, UUIDs, hashes, ZIP+4, ISBNs, invalid SSN shapes), and writes the ground
//! truth. A finding is a true positive when it overlaps a planted value of the same kind.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use common::Collect;
use custody_detect::Kind;
use custody_scan::{NoProgress, ScanOptions, Scanner};
use custody_testkit::{Options, Profile, generate};

/// The kinds with a structural validator, and the targets from the issue.
const MEASURED: [&str; 6] = ["credit_card", "us_ssn", "iban", "us_bank_routing", "email", "phone"];
const MIN_PRECISION: f64 = 0.99;
const MIN_RECALL: f64 = 0.98;

struct Truth {
    path: String,
    kind: String,
    offset: u64,
    length: u64,
}

fn read_truth(dir: &Path) -> Vec<Truth> {
    let text = std::fs::read_to_string(dir.join("truth.jsonl")).expect("truth file");
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("truth line is JSON");
            Truth {
                path: v["path"].as_str().unwrap().to_string(),
                kind: v["kind"].as_str().unwrap().to_string(),
                offset: v["offset"].as_u64().unwrap(),
                length: v["length"].as_u64().unwrap(),
            }
        })
        .collect()
}

/// A planted value's span and whether a finding covered it.
struct Planted {
    start: u64,
    end: u64,
    found: bool,
}

#[derive(Default, Debug)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

fn measure(profile: Profile, seed: u64) -> BTreeMap<String, Counts> {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let mut opts = Options::new(profile, &corpus);
    opts.seed = seed;
    opts.size_mb = 8;
    generate(&opts).expect("generate the accuracy corpus");
    let truth = read_truth(&corpus);

    let options = ScanOptions {
        roots: vec![corpus.clone()],
        exclude: vec!["truth.jsonl".into(), "negatives.jsonl".into(), ".ignore".into()],
        ..ScanOptions::default()
    };
    let mut sink = Collect(Vec::new(), Vec::new());
    Scanner::new(options).unwrap().run(&mut sink, &NoProgress).unwrap();
    assert!(sink.1.is_empty(), "nothing in the corpus should be skipped: {:?}", sink.1);

    let mut by_file: HashMap<(&str, &str), Vec<Planted>> = HashMap::new();
    for t in &truth {
        let planted = Planted { start: t.offset, end: t.offset + t.length, found: false };
        by_file.entry((t.path.as_str(), t.kind.as_str())).or_default().push(planted);
    }
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut examples: Vec<String> = Vec::new();
    for f in &sink.0 {
        let kind = f.kind.as_str();
        // JSON values carry their key path after a `!`; the truth names the file.
        let file = f.path.split_once('!').map_or(&*f.path, |(file, _)| file);
        let spans = by_file.get_mut(&(file, kind));
        let hit = spans.and_then(|spans| {
            spans.iter_mut().find(|p| f.offset < p.end && f.offset + f.length > p.start)
        });
        let c = counts.entry(kind.to_string()).or_default();
        if let Some(planted) = hit {
            // Two findings over one planted value count once.
            if !planted.found {
                c.tp += 1;
                planted.found = true;
            }
        } else {
            c.fp += 1;
            if MEASURED.contains(&kind) && examples.len() < 40 {
                examples.push(format!("FP {kind} {}:{} ({:?})", f.path, f.line, f.reasons));
            }
        }
    }
    for ((path, kind), spans) in &by_file {
        for p in spans.iter().filter(|p| !p.found) {
            counts.entry((*kind).to_string()).or_default().fn_ += 1;
            if MEASURED.contains(kind) && examples.len() < 80 {
                examples.push(format!("FN {kind} {path} @{}", p.start));
            }
        }
    }
    for e in &examples {
        eprintln!("{e}");
    }
    counts
}

#[test]
fn precision_and_recall_per_structured_kind() {
    let mut failures = Vec::new();
    // The dense accuracy profile at two seeds, and a small slice of the sparse throughput
    // profile (logs, NDJSON events, sales exports: other templates, other negatives).
    for (profile, seed) in
        [(Profile::Accuracy, 42), (Profile::Accuracy, 7), (Profile::Throughput, 5)]
    {
        let counts = measure(profile, seed);
        eprintln!(
            "{} seed {seed}:  kind               precision  recall    tp    fp    fn",
            profile.as_str()
        );
        for (kind, c) in &counts {
            let precision = c.tp as f64 / (c.tp + c.fp).max(1) as f64;
            let recall = c.tp as f64 / (c.tp + c.fn_).max(1) as f64;
            let measured = MEASURED.contains(&kind.as_str());
            eprintln!(
                "{}        {kind:<18} {precision:>9.4} {recall:>7.4} {:>5} {:>5} {:>5}",
                if measured { "*" } else { " " },
                c.tp,
                c.fp,
                c.fn_
            );
            if measured && (precision < MIN_PRECISION || recall < MIN_RECALL) {
                failures.push(format!(
                    "seed {seed} {kind}: precision {precision:.4}, recall {recall:.4}"
                ));
            }
        }
        for kind in MEASURED {
            let c = &counts[kind];
            assert!(c.tp >= 40, "seed {seed}: only {} {kind} planted and found", c.tp);
            assert!(kind.parse::<Kind>().is_ok());
        }
    }
    assert!(
        failures.is_empty(),
        "targets missed (precision ≥ {MIN_PRECISION}, recall ≥ {MIN_RECALL}):\n{}",
        failures.join("\n")
    );
}
