//! Accuracy inside containers and documents: the generated corpus, packaged by the testkit
//! into every format family custody reads (nested zip, tar.gz, gz, docx, pptx, odt, xlsx,
//! legacy xls, ods, PDF, HTML, RTF, eml with attachments, mbox, SQLite), scanned as a user would.
//!
//! Offsets differ per format, so a finding is a true positive when the same file holds a
//! planted value of the same kind with the same characters (whitespace aside); each planted
//! value counts once. Targets (the issue): precision ≥ 0.99 and recall ≥ 0.97 per
//! structured kind, per format family.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::Collect;
use custody_scan::{NoProgress, ScanOptions, Scanner};
use custody_testkit::{Options, Profile, formats, generate};

const MEASURED: [&str; 6] = ["credit_card", "us_ssn", "iban", "us_bank_routing", "email", "phone"];
const MIN_PRECISION: f64 = 0.99;
const MIN_RECALL: f64 = 0.97;

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[derive(Default)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

#[test]
fn precision_and_recall_per_kind_per_format_family() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let mut opts = Options::new(Profile::Accuracy, &corpus);
    opts.seed = 11;
    opts.size_mb = 1;
    generate(&opts).expect("generate the corpus");
    let packaged = dir.path().join("formats");
    let truth = formats::package(&corpus, &packaged).expect("package the corpus");

    let options = ScanOptions { roots: vec![packaged.clone()], ..ScanOptions::default() };
    let mut sink = Collect(Vec::new(), Vec::new());
    Scanner::new(options).unwrap().run(&mut sink, &NoProgress).unwrap();
    assert!(sink.1.is_empty(), "nothing should be skipped: {:?}", sink.1);

    // Planted values per (file, kind, value), with how many times each was planted.
    let mut planted: HashMap<(String, String, String), (u64, &'static str)> = HashMap::new();
    let mut family_of: HashMap<String, &'static str> = HashMap::new();
    for p in &truth {
        family_of.insert(p.file.clone(), p.family);
        planted
            .entry((p.file.clone(), p.kind.clone(), squeeze(&p.value)))
            .or_insert((0, p.family))
            .0 += 1;
    }
    let mut counts: BTreeMap<(&str, String), Counts> = BTreeMap::new();
    let mut examples = Vec::new();
    for f in &sink.0 {
        let file = f.path.split_once('!').map_or(&*f.path, |(file, _)| file).to_string();
        let family = family_of.get(&file).copied().unwrap_or("?");
        let kind = f.kind.as_str().to_string();
        let key = (file, kind.clone(), squeeze(f.value.expose()));
        let c = counts.entry((family, kind.clone())).or_default();
        match planted.get_mut(&key) {
            Some((left, _)) if *left > 0 => {
                *left -= 1;
                c.tp += 1;
            }
            // The same value found again (planted once, said twice) is not a new error.
            Some(_) => {}
            None => {
                c.fp += 1;
                if MEASURED.contains(&kind.as_str()) && examples.len() < 30 {
                    examples.push(format!("FP {kind} {} ({:?})", f.path, f.reasons));
                }
            }
        }
    }
    for ((file, kind, _), (left, family)) in &planted {
        if *left > 0 {
            counts.entry((family, kind.clone())).or_default().fn_ += left;
            if MEASURED.contains(&kind.as_str()) && examples.len() < 60 {
                examples.push(format!("FN {kind} {file} ×{left}"));
            }
        }
    }
    for e in &examples {
        eprintln!("{e}");
    }
    let mut failures = Vec::new();
    eprintln!("family   kind               precision  recall    tp    fp    fn");
    for ((family, kind), c) in &counts {
        let precision = c.tp as f64 / (c.tp + c.fp).max(1) as f64;
        let recall = c.tp as f64 / (c.tp + c.fn_).max(1) as f64;
        let measured = MEASURED.contains(&kind.as_str());
        eprintln!(
            "{family:<8} {}{kind:<18} {precision:>9.4} {recall:>7.4} {:>5} {:>5} {:>5}",
            if measured { "*" } else { " " },
            c.tp,
            c.fp,
            c.fn_
        );
        if measured && (precision < MIN_PRECISION || recall < MIN_RECALL) {
            failures.push(format!("{family} {kind}: precision {precision:.4}, recall {recall:.4}"));
        }
    }
    let families: std::collections::BTreeSet<&str> = counts.keys().map(|(f, _)| *f).collect();
    for family in [
        "zip", "tar.gz", "gz", "docx", "odt", "pptx", "pdf", "html", "rtf", "eml", "mbox", "xlsx",
        "xls", "ods", "sqlite",
    ] {
        assert!(families.contains(family), "no findings at all in the {family} family");
    }
    assert!(failures.is_empty(), "targets missed:\n{}", failures.join("\n"));
}
