//! Fuzzes custody-extract on input named `archive.zip`.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run("archive.zip", data));
