//! `--format html`: one self-contained page for the owner — no scripts, no fonts, no links
//! out — saying what was found where (masked), why it matters and the one thing to do
//! about each file, riskiest first.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use custody_detect::Kind;

use crate::finding::{Skip, Summary};

/// Examples kept per file.
const EXAMPLES: usize = 5;

/// What the page shows of one file's findings.
#[derive(Default)]
pub(crate) struct FileFindings {
    kinds: BTreeMap<Kind, u64>,
    /// (where inside the file, kind, value as shown, confidence)
    examples: Vec<(String, Kind, String, f32)>,
}

/// Findings grouped by file, as they arrive.
#[derive(Default)]
pub(crate) struct Collected {
    files: BTreeMap<String, FileFindings>,
}

/// The file a finding belongs to and where inside it: the file the scan read (a `!` in its
/// name is part of it) and the member, or a database column and the row.
fn file_of(f: &crate::Finding) -> (&str, &str) {
    let path = &*f.path;
    if path.contains("://") || path.starts_with("sqlite:") {
        return path.split_once('#').map_or((path, ""), |(f, rest)| (f, rest));
    }
    (f.file(), f.member().unwrap_or(""))
}

impl Collected {
    /// Counts a finding (shown as `shown`: masked unless revealing) under its file.
    pub(crate) fn add(&mut self, f: &crate::Finding, shown: String) {
        let (file, inside) = file_of(f);
        let entry = self.files.entry(file.to_string()).or_default();
        *entry.kinds.entry(f.kind).or_insert(0) += 1;
        if entry.examples.len() < EXAMPLES {
            let place = match (&f.key, inside.is_empty()) {
                (Some(key), _) => key.to_string(),
                (None, true) => format!("line {}", f.line),
                (None, false) => inside.to_string(),
            };
            entry.examples.push((place, f.kind, shown, f.confidence));
        }
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}\
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #eee}\
.lvl{font-weight:bold;border-radius:.3rem;padding:.1rem .45rem;color:#fff}.high{background:#b3261e}.medium{background:#b86e00}.low{background:#5b6b5b}\
.box{background:#f5f5f2;border-radius:.4rem;padding:.8rem 1rem}code{font-size:.9em;word-break:break-all}.small{color:#666;font-size:.9em}";

/// Writes the page.
pub(crate) fn write_page(
    out: &mut dyn Write,
    collected: &Collected,
    summary: &Summary,
    skipped: &[Skip],
    revealed: bool,
) -> io::Result<()> {
    let mut page = String::new();
    let total = summary.total_findings();
    let _ = write!(
        page,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>custody: customer data found</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(page, "<h1>Customer data on this computer</h1><div class=\"box\"><p>");
    let _ = write!(
        page,
        "custody looked at <b>{} file{}</b>{}. ",
        summary.files_scanned,
        if summary.files_scanned == 1 { "" } else { "s" },
        if summary.total_skipped() > 0 {
            format!(" and could not read {} (listed at the end)", summary.total_skipped())
        } else {
            String::new()
        }
    );
    if total == 0 {
        page.push_str("It found <b>no customer data</b>.</p></div>");
    } else {
        let _ = write!(
            page,
            "It found <b>{total} item{} of customer data</b> in {} place{}: {}.</p>",
            if total == 1 { "" } else { "s" },
            collected.files.len(),
            if collected.files.len() == 1 { "" } else { "s" },
            escape(&crate::risk::contents(&summary.findings_by_kind))
        );
        let _ = write!(
            page,
            "<p>If any of this leaks, the law may require you to tell every customer affected. \
             The less you keep, and the better you lock what you keep, the less can leak.</p></div>"
        );
    }
    if revealed {
        page.push_str("<p><b>Warning:</b> this report shows values in full (--reveal). Anyone who sees it sees the data: delete it after use.</p>");
    }
    if !summary.riskiest.is_empty() {
        page.push_str("<h2>What to do first</h2><table><tr><th>Risk</th><th>File</th><th>What is in it</th><th>Why it matters</th><th>Next step</th></tr>");
        for r in &summary.riskiest {
            let level = r.level();
            let _ = write!(
                page,
                "<tr><td><span class=\"lvl {l}\">{l}</span></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&r.path),
                escape(&r.contents()),
                escape(&r.exposure.reasons().join("; ")),
                escape(&r.action()),
                l = level.as_str()
            );
        }
        page.push_str("</table>");
    }
    if summary.riskiest_folders.len() > 1 {
        page.push_str("<h2>Folders with the most</h2><table><tr><th>Folder</th><th>Files</th><th>Items</th></tr>");
        for f in &summary.riskiest_folders {
            let _ = write!(
                page,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                escape(&f.path),
                f.files,
                f.findings
            );
        }
        page.push_str("</table>");
    }
    if !summary.columns.is_empty() {
        page.push_str("<h2>Database columns</h2><table><tr><th>Column</th><th>Holds</th><th>Share of rows</th></tr>");
        for c in &summary.columns {
            let _ = write!(
                page,
                "<tr><td><code>{}</code></td><td>{}</td><td>{:.0}% of {} read</td></tr>",
                escape(&c.column),
                escape(c.kind.label()),
                c.share * 100.0,
                c.rows_read
            );
        }
        page.push_str("</table>");
    }
    if !collected.files.is_empty() {
        page.push_str("<h2>Everything found, file by file</h2><p class=\"small\">Values are masked: enough to recognise them, not to use them.</p>");
        for (file, found) in &collected.files {
            let _ = write!(
                page,
                "<h3><code>{}</code></h3><p>{}</p><table>",
                escape(file),
                escape(&crate::risk::contents(&found.kinds))
            );
            for (place, kind, shown, confidence) in &found.examples {
                let _ = write!(
                    page,
                    "<tr><td class=\"small\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"small\">{:.0}% sure</td></tr>",
                    escape(place),
                    escape(kind.label()),
                    escape(shown),
                    f64::from(*confidence) * 100.0
                );
            }
            let shown: u64 = found.examples.len() as u64;
            let all: u64 = found.kinds.values().sum();
            if all > shown {
                let _ = write!(
                    page,
                    "<tr><td colspan=\"4\" class=\"small\">… and {} more</td></tr>",
                    all - shown
                );
            }
            page.push_str("</table>");
        }
    }
    if !skipped.is_empty() {
        page.push_str("<h2>Not read</h2><p class=\"small\">custody could not look inside these. Encrypted files are safe only if the password is strong and not written down beside them.</p><table>");
        for s in skipped {
            let _ = write!(
                page,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(&s.path),
                escape(&s.reason.to_string())
            );
        }
        page.push_str("</table>");
    }
    let _ = writeln!(
        page,
        "<p class=\"small\">Made by custody {} in {:.1} s. Nothing left this computer.</p></body></html>",
        env!("CARGO_PKG_VERSION"),
        summary.duration.as_secs_f64()
    );
    out.write_all(page.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_escaped() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    fn finding(path: &str, kind: Kind, line: u64) -> crate::Finding {
        crate::Finding {
            path: path.into(),
            file_len: path.find('!').unwrap_or(path.len()),
            kind,
            subkind: None,
            line,
            column: 1,
            offset: 0,
            length: 0,
            confidence: 0.9,
            reasons: Vec::new(),
            test_card: false,
            value: custody_detect::SensitiveValue::new("x"),
            key: None,
            premasked: false,
        }
    }

    #[test]
    fn findings_group_by_file_and_database_column() {
        let mut c = Collected::default();
        c.add(&finding("backup.zip!a.xlsx!Sheet1!C7", Kind::UsSsn, 7), "***-**-1234".into());
        c.add(&finding("notes.txt", Kind::Email, 3), "j***@example.com".into());
        let db = finding("postgres://h/db/public.customers.ssn#row=4", Kind::UsSsn, 1);
        c.add(&db, "***-**-1234".into());
        let files: Vec<&str> = c.files.keys().map(String::as_str).collect();
        assert_eq!(files, ["backup.zip", "notes.txt", "postgres://h/db/public.customers.ssn"]);
        assert_eq!(c.files["backup.zip"].examples[0].0, "a.xlsx!Sheet1!C7");
        assert_eq!(c.files["notes.txt"].examples[0].0, "line 3");
    }
}
