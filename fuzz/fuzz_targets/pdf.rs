//! Fuzzes custody-extract on input named `document.pdf`.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run("document.pdf", data));
