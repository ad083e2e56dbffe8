//! Reading in chunks is invisible: any chunk size reports the same findings at the same
//! offsets, lines and columns as reading a file whole, including values that straddle a
//! chunk boundary and files with no line breaks at all.

use std::io;

use custody_scan::{Finding, NoProgress, ScanOptions, Scanner, Sink, Skip};

#[derive(Default)]
struct Collect(Vec<(String, &'static str, u64, u64, u64, u64)>);

impl Sink for Collect {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        self.0.push((f.path.to_string(), f.kind.as_str(), f.offset, f.length, f.line, f.column));
        Ok(())
    }
    fn skipped(&mut self, s: &Skip) -> io::Result<()> {
        panic!("unexpected skip: {s:?}");
    }
}

fn scan(
    dir: &std::path::Path,
    chunk_size: usize,
) -> Vec<(String, &'static str, u64, u64, u64, u64)> {
    let options = ScanOptions {
        roots: vec![dir.to_path_buf()],
        chunk_size,
        threads: 1,
        ..ScanOptions::default()
    };
    let mut sink = Collect::default();
    Scanner::new(options).unwrap().run(&mut sink, &NoProgress).unwrap();
    sink.0.sort_unstable();
    sink.0
}

/// Values that fill a file densely, so that chunk boundaries fall inside many of them.
const VALUES: &[&str] = &[
    "card 4539 5260 1815 9083",
    "SSN 773-12-3456",
    "mail jane.sample@example.com",
    "IBAN DE89 3704 0044 0532 0130 00",
    "call (415) 837-2671",
    "key AKIAQ3EGRWT5ZJX7KP2M",
    "order 12 of 40 at 3.50",
];

#[test]
fn every_chunk_size_reports_the_same_findings() {
    let dir = tempfile::tempdir().unwrap();
    // Many short lines, one very long line, and a mix of both.
    let mut lines = String::new();
    let mut one_line = String::new();
    for i in 0..3000 {
        let v = VALUES[i % VALUES.len()];
        lines.push_str(v);
        lines.push('\n');
        one_line.push_str(v);
        one_line.push_str(if i % 3 == 0 { " ; " } else { " " });
    }
    std::fs::write(dir.path().join("lines.txt"), &lines).unwrap();
    std::fs::write(dir.path().join("one-line.txt"), &one_line).unwrap();
    std::fs::write(dir.path().join("mixed.txt"), format!("{one_line}\n{lines}{one_line}")).unwrap();

    let whole = scan(dir.path(), 64 << 20);
    assert!(whole.len() > 10_000, "{}", whole.len());
    // The smallest chunk the scanner allows is twice the overlap; odd sizes put boundaries
    // at every position relative to the values.
    for chunk in [4_500, 4_501, 4_999, 5_003, 7_919, 12_345, 65_536, 262_144] {
        let got = scan(dir.path(), chunk);
        let first_difference = got.iter().zip(&whole).position(|(a, b)| a != b);
        assert!(
            got == whole,
            "chunk size {chunk}: {} findings, {} expected; first difference at {first_difference:?}",
            got.len(),
            whole.len()
        );
    }
}

/// Regression: a short first line followed by a line longer than a chunk pinned the split
/// point at the end of the first line, and the scan never advanced.
#[test]
fn a_short_line_then_a_huge_line_does_not_stall() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,notes\n");
    while text.len() < 700_000 {
        text.push_str("lorem ipsum dolor sit amet ");
    }
    text.push_str("card 4539 5260 1815 9083\n");
    std::fs::write(dir.path().join("export.csv"), &text).unwrap();
    let path = dir.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(scan(&path, 8 * 1024));
    });
    let found = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the scan finishes");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "credit_card");
    assert_eq!(found[0].4, 2, "line");
}
