//! Fuzzes the Office readers: the first byte picks docx, xlsx, pptx, odt, ods or xls.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = data.split_first() else { return };
    let names = ["a.docx", "a.xlsx", "a.pptx", "a.odt", "a.ods", "a.xls"];
    common::run(names[usize::from(*pick) % names.len()], rest);
});
