//! Fuzzes the compressed streams and tar: the first byte picks gzip, zstd or tar.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = data.split_first() else { return };
    let names = ["a.txt.gz", "a.txt.zst", "a.tar"];
    common::run(names[usize::from(*pick) % names.len()], rest);
});
