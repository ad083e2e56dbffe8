//! Fuzzes the mail readers: the first byte picks a message (eml) or a mailbox (mbox).
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((pick, rest)) = data.split_first() else { return };
    common::run(if pick % 2 == 0 { "message.eml" } else { "Inbox.mbox" }, rest);
});
