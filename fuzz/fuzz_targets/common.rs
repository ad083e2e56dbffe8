//! Shared by the targets: a visitor that reads every part to the end, and small limits
//! so that a run explores parsers rather than waiting on big inputs.

use std::io;
use std::time::Duration;

use custody_extract::{Limits, Part, Skipped, Visitor, extract_bytes};

struct Drain;

impl Visitor for Drain {
    fn part(&mut self, part: Part<'_>) -> io::Result<()> {
        let mut sink = Vec::new();
        part.text.read_to_end(&mut sink).map(|_| ())
    }
    fn skipped(&mut self, _location: &str, _why: Skipped) {}
}

/// Extracts `data` as a file named `name`. A panic escaping here is a bug: parsers'
/// panics must become `Skipped::Crashed`.
pub fn run(name: &str, data: &[u8]) {
    // libFuzzer's hook aborts on any panic, even one custody catches and reports as
    // `parser_crash` (as it must for third-party parsers): keep panics silent, so only a
    // panic that escapes custody-extract aborts the run and is reported.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let limits = Limits {
        max_unpacked: 8 << 20,
        max_total: 32 << 20,
        max_time: Duration::from_secs(5),
        ..Limits::default()
    };
    let _ = extract_bytes(name, data.to_vec(), &limits, &mut Drain);
}
