//! JSON and NDJSON: scanned as written (offsets, lines and the `"key": value` context stay
//! exact), with every value labelled by its key path (`$.customers[3].ssn`; NDJSON records
//! are numbered like an array, `$[41].email`). The labeller is a tolerant tokenizer: text
//! that is not valid JSON still gets scanned, with whatever labels it earned.

use crate::{Cx, Label, Skipped};

pub(crate) fn json(
    cx: &mut Cx<'_, '_>,
    location: &str,
    ndjson: bool,
    bytes: &[u8],
) -> Result<(), Skipped> {
    let labels = key_paths(bytes, ndjson);
    cx.keyed_text(location, bytes, &labels)
}

#[derive(Clone, Copy)]
enum Level {
    /// In an object: the position of the current member, and whether its key was seen.
    Object { member: usize, has_key: bool },
    /// In an array: the current index.
    Array { index: usize },
}

/// A key as it appears in a path: a plain name, else its position (a key that is not a
/// plain name may itself be customer data, such as a map keyed by email address, and
/// locations are printed unmasked).
fn key_segment(raw: &[u8], member: usize) -> String {
    // A plain name: starts with a letter or `_`, at most 40 characters, and no run of
    // four digits (a map keyed by card number or SSN must not print them).
    let plain = matches!(raw.first(), Some(b) if b.is_ascii_alphabetic() || *b == b'_')
        && raw.len() <= 40
        && raw.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        && !raw.windows(4).any(|w| w.iter().all(u8::is_ascii_digit));
    if plain { format!(".{}", String::from_utf8_lossy(raw)) } else { format!("{{{member}}}") }
}

/// Longest key path kept: deeper levels are not spelled out (a document nested a
/// million levels deep must not make a million-level path per value).
const MAX_PATH: usize = 256;
/// Most labels kept per document (values past it are scanned without a key path).
const MAX_LABELS: usize = 1_000_000;

/// Appends a level to a path unless the path is already at its longest.
fn push_level(path: &mut String, level: &str) {
    if path.len() + level.len() <= MAX_PATH {
        path.push_str(level);
    } else if !path.ends_with('…') {
        path.push('…');
    }
}

/// The label of every scalar value: starting at its key (or at the value, in an array).
fn key_paths(bytes: &[u8], ndjson: bool) -> Vec<Label> {
    let mut labels = Vec::new();
    // Per level: the path length before it was entered, and where its members' keys start.
    let mut stack: Vec<(Level, usize, usize)> = Vec::new();
    let mut path = String::from("$");
    let mut record = 0usize;
    let mut key_start = 0usize;
    let mut i = 0;
    if ndjson {
        path.push_str("[0]");
    }
    let root_len = |record: usize| if ndjson { format!("$[{record}]") } else { "$".to_string() };
    // Where a value at `start` is labelled from, with the path it sits at.
    let emit_value = |stack: &mut Vec<(Level, usize, usize)>,
                      path: &mut String,
                      start: usize,
                      key_start: usize,
                      labels: &mut Vec<Label>| {
        if labels.len() >= MAX_LABELS {
            return;
        }
        // Labels must ascend (lookups are binary searches): a malformed document could
        // otherwise put a key's start before the previous label's.
        let floor = labels.last().map_or(0, |l: &Label| l.start);
        let key_start = (key_start as u64).max(floor) as usize;
        let start = (start as u64).max(floor) as usize;
        match stack.last() {
            Some((Level::Object { has_key: true, .. }, _, _)) => {
                labels.push(Label { start: key_start as u64, name: path.clone() });
            }
            Some((Level::Array { index }, _, _)) => {
                let len = path.len();
                push_level(path, &format!("[{index}]"));
                labels.push(Label { start: start as u64, name: path.clone() });
                path.truncate(len);
            }
            _ => labels.push(Label { start: start as u64, name: path.clone() }),
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'{' | b'[' => {
                // Entering a container value: its path gains the key or index.
                let before = path.len();
                if let Some((Level::Array { index }, _, _)) = stack.last() {
                    push_level(&mut path, &format!("[{index}]"));
                }
                let level = if b == b'{' {
                    Level::Object { member: 0, has_key: false }
                } else {
                    Level::Array { index: 0 }
                };
                stack.push((level, before, path.len()));
                i += 1;
            }
            b'}' | b']' => {
                if let Some((_, before, _)) = stack.pop() {
                    path.truncate(before);
                }
                i += 1;
            }
            b',' => {
                match stack.last_mut() {
                    Some((Level::Array { index }, _, _)) => *index += 1,
                    Some((Level::Object { member, has_key }, _, base)) => {
                        *member += 1;
                        *has_key = false;
                        // Drop the previous member's key from the path.
                        path.truncate(*base);
                    }
                    None => {}
                }
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                let end = i.min(bytes.len());
                i = end + 1;
                // A key is a string followed by ':'.
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let is_key = bytes.get(j) == Some(&b':')
                    && matches!(stack.last(), Some((Level::Object { has_key: false, .. }, _, _)));
                if is_key {
                    if let Some((Level::Object { member, has_key }, _, base)) = stack.last_mut() {
                        path.truncate(*base);
                        push_level(&mut path, &key_segment(&bytes[start + 1..end], *member));
                        *has_key = true;
                    }
                    key_start = start;
                    i = j + 1;
                } else {
                    emit_value(&mut stack, &mut path, start, key_start, &mut labels);
                }
            }
            b'\n' if ndjson && stack.is_empty() => {
                if labels.last().is_some_and(|l| l.name.starts_with(&root_len(record))) {
                    record += 1;
                }
                path = root_len(record);
                i += 1;
            }
            b if b == b'-' || b.is_ascii_alphanumeric() => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i] == b'-'
                        || bytes[i] == b'+'
                        || bytes[i] == b'.'
                        || bytes[i].is_ascii_alphanumeric())
                {
                    i += 1;
                }
                if &bytes[start..i] != b"null" {
                    emit_value(&mut stack, &mut path, start, key_start, &mut labels);
                }
            }
            _ => i += 1,
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(json: &str, ndjson: bool) -> Vec<(usize, String)> {
        key_paths(json.as_bytes(), ndjson).into_iter().map(|l| (l.start as usize, l.name)).collect()
    }

    #[test]
    fn key_paths_label_each_value() {
        let json =
            r#"{"customers":[{"ssn":"123-45-6789","jane@example.com":1,"n":null}],"ok":true}"#;
        let labels = names(json, false);
        let got: Vec<&str> = labels.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(got, ["$.customers[0].ssn", "$.customers[0]{1}", "$.ok"]);
        assert_eq!(labels[0].0, json.find("\"ssn\"").unwrap());
        assert!(got.iter().all(|n| !n.contains('@')), "keys never reach a location");
    }

    #[test]
    fn ndjson_records_are_numbered() {
        let labels = names("{\"email\":\"a@b.co\"}\n{\"email\":\"c@d.co\",\"x\":[1,2]}\n", true);
        let got: Vec<&str> = labels.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(got, ["$[0].email", "$[1].email", "$[1].x[0]", "$[1].x[1]"]);
    }

    #[test]
    fn keys_that_could_be_customer_data_are_shown_by_position() {
        let labels =
            names(r#"{"4111111111111111":1,"customer_4111":2,"9lives":3,"email":4}"#, false);
        let got: Vec<&str> = labels.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(got, ["${0}", "${1}", "${2}", "$.email"]);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let labels = names(&deep, false);
        assert_eq!(labels.len(), 1);
        assert!(labels[0].1.len() <= MAX_PATH + '…'.len_utf8());
    }

    #[test]
    fn broken_json_still_labels_what_it_can() {
        for junk in ["{\"a\":", "]]]}}}", "{\"a\":\"unterminated", "\"\\", "{,,,:::}"] {
            let _ = key_paths(junk.as_bytes(), false);
            let _ = key_paths(junk.as_bytes(), true);
        }
    }
}
