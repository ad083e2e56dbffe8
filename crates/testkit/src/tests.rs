//! End-to-end tests: generate small corpora and check them against their own truth.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::checks;
use crate::{Kind, Options, Profile, generate};

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("custody-testkit-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One parsed record of `truth.jsonl` / `negatives.jsonl`.
#[derive(Debug)]
struct Record {
    path: String,
    kind: String,
    category: Option<String>,
    offset: usize,
    length: usize,
    value: String,
    test_card: bool,
}

/// A parser for exactly the flat objects this crate writes (strings, integers, booleans).
fn parse_record(line: &str) -> Record {
    let b = line.as_bytes();
    let mut i = 0;
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let string = |i: &mut usize| -> String {
        assert_eq!(b[*i], b'"', "string expected at {i} in {line}");
        *i += 1;
        let mut out = Vec::new();
        while b[*i] != b'"' {
            if b[*i] == b'\\' {
                *i += 1;
                match b[*i] {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'u' => {
                        let hex = std::str::from_utf8(&b[*i + 1..*i + 5]).unwrap();
                        out.push(u8::from_str_radix(hex, 16).unwrap());
                        *i += 4;
                    }
                    c => out.push(c),
                }
            } else {
                out.push(b[*i]);
            }
            *i += 1;
        }
        *i += 1;
        String::from_utf8(out).unwrap()
    };
    assert_eq!(b[i], b'{');
    i += 1;
    loop {
        let key = string(&mut i);
        assert_eq!(b[i], b':');
        i += 1;
        let value = if b[i] == b'"' {
            string(&mut i)
        } else {
            let start = i;
            while b[i] != b',' && b[i] != b'}' {
                i += 1;
            }
            line[start..i].to_string()
        };
        fields.insert(key, value);
        match b[i] {
            b',' => i += 1,
            b'}' => break,
            c => panic!("unexpected {} in {line}", char::from(c)),
        }
    }
    Record {
        path: fields["path"].clone(),
        kind: fields["kind"].clone(),
        category: fields.get("category").cloned(),
        offset: fields["offset"].parse().unwrap(),
        length: fields["length"].parse().unwrap(),
        value: fields["value"].clone(),
        test_card: fields["test_card"] == "true",
    }
}

fn records(dir: &Path, name: &str) -> Vec<Record> {
    fs::read_to_string(dir.join(name)).unwrap().lines().map(parse_record).collect()
}

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn structured(path: &str) -> bool {
    [".csv", ".tsv", ".json", ".ndjson", ".sql"].iter().any(|e| path.ends_with(e))
}

fn before(content: &[u8], offset: usize) -> String {
    String::from_utf8_lossy(&content[offset.saturating_sub(20)..offset]).to_lowercase()
}

/// Checks every record's span against the file and the value against its kind's rules.
fn check_corpus(dir: &Path) -> (BTreeMap<String, u64>, u64) {
    let all = files(dir);
    let mut per_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut spans: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    let truth = records(dir, "truth.jsonl");
    let negatives = records(dir, "negatives.jsonl");
    for rec in truth.iter().chain(&negatives) {
        let content = &all[&rec.path];
        let slice = &content[rec.offset..rec.offset + rec.length];
        assert_eq!(slice, rec.value.as_bytes(), "{rec:?}");
        spans.entry(rec.path.as_str()).or_default().push((rec.offset, rec.offset + rec.length));
    }
    for rec in &truth {
        *per_kind.entry(rec.kind.clone()).or_default() += 1;
        let v = rec.value.as_str();
        let ctx = before(&all[&rec.path], rec.offset);
        let digits: String = v.chars().filter(char::is_ascii_digit).collect();
        match rec.kind.as_str() {
            "credit_card" => {
                assert!(checks::luhn_valid(v), "{rec:?}");
                assert_eq!(
                    crate::values::TEST_CARDS.contains(&digits.as_str()),
                    rec.test_card,
                    "{rec:?}"
                );
                assert!(!crate::doc::id_keyword_before(ctx.as_bytes()), "{rec:?}");
            }
            "us_ssn" => {
                assert!(checks::ssn_valid(v), "{rec:?}");
                if v.len() == 9 {
                    assert!(ctx.contains("ssn") || structured(&rec.path), "{rec:?} {ctx:?}");
                }
            }
            "iban" => assert!(checks::iban_valid(v), "{rec:?}"),
            "us_bank_routing" => {
                assert!(checks::aba_valid(v), "{rec:?}");
                assert!(
                    ["routing number", "routing #", "aba", "rtn"].iter().any(|k| ctx.contains(k))
                        || structured(&rec.path),
                    "{rec:?} {ctx:?}"
                );
            }
            "phone" if v.len() == 10 && v.bytes().all(|c| c.is_ascii_digit()) => {
                assert!(
                    ["phone", "tel", "mobile"].iter().any(|k| ctx.contains(k))
                        || structured(&rec.path),
                    "{rec:?} {ctx:?}"
                );
            }
            "email" => assert_eq!(v.matches('@').count(), 1, "{rec:?}"),
            _ => {}
        }
        assert!(!rec.test_card || rec.kind == "credit_card");
    }
    for rec in &negatives {
        let v = rec.value.as_str();
        match rec.category.as_deref().unwrap() {
            "luhn_fail" => assert!(!checks::luhn_valid(v), "{rec:?}"),
            "luhn_valid_id" => assert!(checks::luhn_valid(v), "{rec:?}"),
            "invalid_ssn" => assert!(!checks::ssn_valid(v), "{rec:?}"),
            "bad_routing_checksum" => assert!(!checks::aba_valid(v), "{rec:?}"),
            "bad_iban_checksum" => assert!(!checks::iban_valid(v), "{rec:?}"),
            _ => {}
        }
    }
    for (path, mut s) in spans {
        s.sort_unstable();
        for w in s.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlapping records in {path}: {w:?}");
        }
    }
    for (path, content) in &all {
        assert!(std::str::from_utf8(content).is_ok(), "{path} is not UTF-8");
    }
    (per_kind, negatives.len() as u64)
}

#[test]
fn accuracy_spans_match_and_values_validate() {
    let dir = Scratch::new("acc-spans");
    let mut opts = Options::new(Profile::Accuracy, &dir.0);
    opts.seed = 11;
    let summary = generate(&opts).unwrap();
    let (per_kind, negatives) = check_corpus(&dir.0);
    for kind in Kind::ALL {
        assert_eq!(
            per_kind.get(kind.as_str()).copied().unwrap_or(0),
            summary.positives_of(kind),
            "{kind}"
        );
    }
    for kind in Kind::MEASURED {
        assert!(summary.positives_of(kind) >= 300, "{summary}");
    }
    assert_eq!(negatives, summary.total_negatives());
    assert!(summary.total_negatives() >= summary.total_positives(), "{summary}");
    assert!((100..=300).contains(&summary.files), "{summary}");
    assert!(dir.0.join(".backup/old_customers.csv").is_file());
    assert!(dir.0.join("config/.env").is_file());
}

#[test]
fn accuracy_is_deterministic_per_seed() {
    let a = Scratch::new("det-a");
    let b = Scratch::new("det-b");
    let c = Scratch::new("det-c");
    let mut opts = Options::new(Profile::Accuracy, &a.0);
    opts.seed = 5;
    generate(&opts).unwrap();
    opts.out.clone_from(&b.0);
    generate(&opts).unwrap();
    opts.out.clone_from(&c.0);
    opts.seed = 6;
    generate(&opts).unwrap();
    let (fa, fb, fc) = (files(&a.0), files(&b.0), files(&c.0));
    assert!(fa == fb, "same seed must give identical files");
    assert!(fa["truth.jsonl"] != fc["truth.jsonl"], "another seed must differ");
}

#[test]
fn throughput_small_corpus_checks_out() {
    let dir = Scratch::new("tp");
    let mut opts = Options::new(Profile::Throughput, &dir.0);
    opts.size_mb = 2;
    let summary = generate(&opts).unwrap();
    let target = 2 << 20;
    assert!(summary.bytes >= target && summary.bytes < target * 2, "{summary}");
    let (per_kind, _) = check_corpus(&dir.0);
    assert!(per_kind.len() >= 6, "{per_kind:?}");
    // Sparse: on average more than a kilobyte between planted values.
    assert!(summary.bytes / summary.total_positives() > 1024, "{summary}");
}

#[test]
fn refuses_a_foreign_non_empty_directory() {
    let dir = Scratch::new("foreign");
    fs::create_dir_all(&dir.0).unwrap();
    fs::write(dir.0.join("precious.txt"), "keep me").unwrap();
    let mut opts = Options::new(Profile::Accuracy, &dir.0);
    opts.overwrite = true;
    assert!(generate(&opts).is_err());
    assert!(dir.0.join("precious.txt").is_file());

    let prev = Scratch::new("previous");
    let mut opts = Options::new(Profile::Accuracy, &prev.0);
    generate(&opts).unwrap();
    assert!(generate(&opts).is_err(), "needs overwrite");
    opts.overwrite = true;
    generate(&opts).unwrap();
}

#[test]
fn json_strings_are_escaped() {
    let mut out = Vec::new();
    crate::doc::push_json_str(&mut out, "a\"b\\c\nd\u{1}é");
    assert_eq!(String::from_utf8(out).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001é\"");
}
