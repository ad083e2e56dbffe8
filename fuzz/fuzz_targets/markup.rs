//! Fuzzes the text formats: the first byte picks HTML, RTF, JSON or NDJSON.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = data.split_first() else { return };
    let names = ["page.html", "letter.rtf", "data.json", "events.ndjson"];
    common::run(names[usize::from(*pick) % names.len()], rest);
});
