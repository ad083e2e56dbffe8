//! Output formats: a table for people, JSONL/JSON/CSV/SARIF for scripts.
//!
//! The JSONL line is a stable contract:
//! `{"path","file","member"?,"kind","subkind"?,"line","column","offset","length","value","confidence","reasons","test_card"?}`.
//! `file` is the file on disk alone and `member` the location inside a container or
//! document, so a `!` in a file's name is never mistaken for a container level.
//! `value` is masked unless the caller asked to reveal. JSON, CSV and SARIF carry the same
//! fields. Every writer streams: memory does not grow with the number of findings (JSON
//! keeps the list of skipped files, which is small, for its closing object).

use std::io::{self, Write};
use std::str::FromStr;

use custody_detect::{Kind, Reason};
use serde_json::{Map, Value, json};

use crate::finding::{Finding, Skip, Summary};
use crate::walk::Sink;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// Aligned text for a terminal, with a summary.
    Table,
    /// One JSON object per finding per line.
    Jsonl,
    /// One JSON document with findings, skipped files and the summary.
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// One self-contained HTML page for the owner.
    Html,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "table" => Ok(Format::Table),
            "jsonl" => Ok(Format::Jsonl),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "sarif" => Ok(Format::Sarif),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "unknown format '{other}' (use table, jsonl, json, csv, sarif or html)"
            )),
        }
    }
}

/// One finding as written in JSONL and JSON: the stable contract.
#[derive(Debug, serde::Serialize)]
pub struct FindingRecord<'f> {
    /// The file, relative to the scan root; inside a container or document, followed by
    /// `!` and the location inside it.
    pub path: &'f str,
    /// The file on disk alone (a `!` in it is part of its name).
    pub file: &'f str,
    /// Inside a container or document: the location inside `file` (`b.xlsx!C7`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<&'f str>,
    /// The kind (`credit_card`, …).
    pub kind: &'static str,
    /// A finer label, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subkind: Option<&'static str>,
    /// 1-based line.
    pub line: u64,
    /// 1-based column in bytes.
    pub column: u64,
    /// Byte offset in the file.
    pub offset: u64,
    /// Byte length in the file.
    pub length: u64,
    /// Masked unless revealing.
    pub value: String,
    /// 0–1, two decimals.
    pub confidence: f64,
    /// Why.
    pub reasons: Reasons<'f>,
    /// Present (and true) only for published test cards.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub test_card: bool,
    /// Present in JSON files: the value's key path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'f str>,
}

/// Reasons serialised as their stable strings, without allocating.
#[derive(Debug, Clone, Copy)]
pub struct Reasons<'f>(pub &'f [Reason]);

impl serde::Serialize for Reasons<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct One<'r>(&'r Reason);
        impl serde::Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self.0)
            }
        }
        serializer.collect_seq(self.0.iter().map(One))
    }
}

/// Writes findings in one format to `out`.
pub struct Report<W: Write> {
    out: W,
    format: Format,
    reveal: bool,
    findings: u64,
    skipped: Vec<Skip>,
    /// HTML: findings grouped by file (counts and a few examples), written at the end.
    html: crate::html::Collected,
}

impl<W: Write> Report<W> {
    /// Starts a report; writes any opening the format needs.
    pub fn new(mut out: W, format: Format, reveal: bool) -> io::Result<Self> {
        match format {
            Format::Json => out.write_all(b"{\"version\":1,\"findings\":[")?,
            Format::Csv => out.write_all(
                b"path,kind,subkind,line,column,offset,length,value,confidence,reasons,test_card,file,member\n",
            )?,
            Format::Sarif => {
                let rules: Vec<Value> = Kind::ALL
                    .iter()
                    .map(|k| json!({"id": k.as_str(), "shortDescription": {"text": k.label()}}))
                    .collect();
                let driver = json!({
                    "name": "custody",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                });
                write!(
                    out,
                    "{{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\",\"runs\":[{{\"tool\":{{\"driver\":{driver}}},\"results\":["
                )?;
            }
            Format::Table | Format::Jsonl | Format::Html => {}
        }
        Ok(Self {
            out,
            format,
            reveal,
            findings: 0,
            skipped: Vec::new(),
            html: crate::html::Collected::default(),
        })
    }

    fn value(&self, f: &Finding) -> String {
        if self.reveal && !f.premasked { f.value.expose().to_string() } else { f.masked() }
    }

    /// The finding as the JSONL contract's record.
    pub fn record<'f>(&self, f: &'f Finding) -> FindingRecord<'f> {
        FindingRecord {
            path: &f.path,
            file: f.file(),
            member: f.member(),
            kind: f.kind.as_str(),
            subkind: f.subkind,
            line: f.line,
            column: f.column,
            offset: f.offset,
            length: f.length,
            value: self.value(f),
            confidence: (f64::from(f.confidence) * 100.0).round() / 100.0,
            reasons: Reasons(&f.reasons),
            test_card: f.test_card,
            key: f.key.as_deref(),
        }
    }

    /// Closes the document and, for the table, prints the summary.
    pub fn finish(mut self, summary: &Summary) -> io::Result<W> {
        match self.format {
            Format::Table => write_table_summary(&mut self.out, summary, &self.skipped)?,
            Format::Html => {
                crate::html::write_page(
                    &mut self.out,
                    &self.html,
                    summary,
                    &self.skipped,
                    self.reveal,
                )?;
            }
            Format::Jsonl | Format::Csv => {}
            Format::Json => {
                let skipped: Vec<Value> = self
                    .skipped
                    .iter()
                    .map(|s| json!({"path": s.path, "code": s.reason.code(), "reason": s.reason.to_string()}))
                    .collect();
                write!(
                    self.out,
                    "],\"skipped\":{},\"summary\":{}}}",
                    Value::Array(skipped),
                    summary_json(summary)
                )?;
                self.out.write_all(b"\n")?;
            }
            Format::Sarif => {
                let notifications: Vec<Value> = self
                    .skipped
                    .iter()
                    .map(|s| {
                        json!({"level": "note", "message": {"text": format!("not scanned: {}", s.reason)},
                               "locations": [{"physicalLocation": {"artifactLocation": {"uri": s.path}}}]})
                    })
                    .collect();
                writeln!(
                    self.out,
                    "],\"invocations\":[{{\"executionSuccessful\":true,\"toolExecutionNotifications\":{}}}]}}]}}",
                    Value::Array(notifications)
                )?;
            }
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Sink for Report<W> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        let first = self.findings == 0;
        self.findings += 1;
        match self.format {
            Format::Html => {
                let shown = self.value(f);
                self.html.add(f, shown);
                Ok(())
            }
            Format::Table => {
                let mut flags = String::new();
                if f.test_card {
                    flags.push_str("  (test card)");
                }
                writeln!(
                    self.out,
                    "{}:{}:{}  {:<16} {:<28} {:.2}{flags}",
                    f.path,
                    f.line,
                    f.column,
                    f.kind.as_str(),
                    self.value(f),
                    f.confidence
                )
            }
            Format::Jsonl => {
                let record = self.record(f);
                serde_json::to_writer(&mut self.out, &record)?;
                self.out.write_all(b"\n")
            }
            Format::Json => {
                if !first {
                    self.out.write_all(b",")?;
                }
                let record = self.record(f);
                serde_json::to_writer(&mut self.out, &record).map_err(io::Error::from)
            }
            Format::Csv => {
                let fields = [
                    f.path.to_string(),
                    f.kind.as_str().to_string(),
                    f.subkind.unwrap_or("").to_string(),
                    f.line.to_string(),
                    f.column.to_string(),
                    f.offset.to_string(),
                    f.length.to_string(),
                    self.value(f),
                    format!("{:.2}", f.confidence),
                    f.reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
                    f.test_card.to_string(),
                    f.file().to_string(),
                    f.member().unwrap_or("").to_string(),
                ];
                let row: Vec<String> = fields.iter().map(|v| csv_field(v)).collect();
                writeln!(self.out, "{}", row.join(","))
            }
            Format::Sarif => {
                if !first {
                    self.out.write_all(b",")?;
                }
                let level =
                    if f.kind.risk_weight() >= 8.0 && !f.test_card { "error" } else { "warning" };
                let mut result = json!({
                    "ruleId": f.kind.as_str(),
                    "level": level,
                    "message": {"text": format!("{} found: {}", f.kind.label(), self.value(f))},
                    "locations": [{"physicalLocation": {
                        "artifactLocation": {"uri": f.file()},
                        "region": {"startLine": f.line, "startColumn": f.column, "byteOffset": f.offset, "byteLength": f.length}
                    }}],
                    "properties": {"confidence": (f64::from(f.confidence) * 100.0).round() / 100.0, "reasons": Reasons(&f.reasons), "test_card": f.test_card}
                });
                if let Some(member) = f.member() {
                    result["properties"]["member"] = json!(member);
                }
                serde_json::to_writer(&mut self.out, &result).map_err(io::Error::from)
            }
        }
    }

    fn skipped(&mut self, skip: &Skip) -> io::Result<()> {
        self.skipped.push(skip.clone());
        Ok(())
    }
}

/// The summary as JSON (also used by the CLI for `scan.run` records).
pub fn summary_json(s: &Summary) -> Value {
    let by_kind: Map<String, Value> =
        s.findings_by_kind.iter().map(|(k, n)| (k.as_str().to_string(), json!(n))).collect();
    let skipped: Map<String, Value> =
        s.files_skipped.iter().map(|(k, n)| ((*k).to_string(), json!(n))).collect();
    let members: Map<String, Value> =
        s.members_skipped.iter().map(|(k, n)| ((*k).to_string(), json!(n))).collect();
    json!({
        "files_scanned": s.files_scanned,
        "files_skipped": skipped,
        "members_skipped": members,
        "bytes_scanned": s.bytes_scanned,
        "duration_ms": s.duration.as_millis() as u64,
        "findings": s.total_findings(),
        "findings_by_kind": by_kind,
        "findings_ignored": s.findings_ignored,
        "files_cached": s.files_cached,
        "riskiest": s.riskiest.iter().map(|r| json!({
            "path": r.path,
            "score": (r.score * 10.0).round() / 10.0,
            "level": r.level().as_str(),
            "findings": r.findings,
            "contents": r.contents(),
            "why": r.exposure.reasons(),
            "action": r.action(),
        })).collect::<Vec<_>>(),
        "riskiest_folders": s.riskiest_folders.iter().map(|f| json!({
            "path": f.path,
            "score": (f.score * 10.0).round() / 10.0,
            "files": f.files,
            "findings": f.findings,
        })).collect::<Vec<_>>(),
        "columns": s.columns.iter().map(|c| json!({
            "column": c.column,
            "kind": c.kind.as_str(),
            "rows_read": c.rows_read,
            "rows_matched": c.rows_matched,
            "share": (c.share * 10_000.0).round() / 10_000.0,
            "confidence": (f64::from(c.confidence) * 100.0).round() / 100.0,
        })).collect::<Vec<_>>(),
    })
}

/// Quotes a CSV field, and defuses spreadsheet formulas (`=`, `+`, `-`, `@` at the start).
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) { format!("'{v}") } else { v.to_string() };
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v }
}

fn human_bytes(n: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[u]) }
}

fn write_table_summary(out: &mut dyn Write, s: &Summary, skipped: &[Skip]) -> io::Result<()> {
    let secs = s.duration.as_secs_f64();
    writeln!(out)?;
    writeln!(
        out,
        "Scanned {} file{} ({}) in {:.2} s{}.",
        s.files_scanned,
        if s.files_scanned == 1 { "" } else { "s" },
        human_bytes(s.bytes_scanned),
        secs,
        if secs >= 1.0 && s.files_cached == 0 {
            format!(", {}/s", human_bytes((s.bytes_scanned as f64 / secs) as u64))
        } else {
            String::new()
        }
    )?;
    if s.files_cached > 0 {
        writeln!(
            out,
            "{} of them unchanged since the last scan: results reused (--no-cache reads everything).",
            s.files_cached
        )?;
    }
    if s.findings_ignored > 0 {
        writeln!(
            out,
            "{} finding{} you chose to ignore not shown.",
            s.findings_ignored,
            if s.findings_ignored == 1 { "" } else { "s" }
        )?;
    }
    if !skipped.is_empty() {
        writeln!(out, "Skipped {} (not scanned):", skipped.len())?;
        for skip in skipped.iter().take(20) {
            writeln!(out, "  {}: {}", skip.path, skip.reason)?;
        }
        if skipped.len() > 20 {
            writeln!(
                out,
                "  … and {} more (use --format json for the full list)",
                skipped.len() - 20
            )?;
        }
    }
    let total = s.total_findings();
    if total == 0 {
        writeln!(out, "No customer data found.")?;
        return Ok(());
    }
    writeln!(out, "Found {total} item{} of customer data:", if total == 1 { "" } else { "s" })?;
    for (kind, n) in &s.findings_by_kind {
        writeln!(out, "  {:>7}  {} ({})", n, kind.label(), kind.as_str())?;
    }
    if !s.columns.is_empty() {
        writeln!(out, "Database columns holding customer data:")?;
        for c in &s.columns {
            writeln!(
                out,
                "  {}  {}: {:.0}% of {} row{} read (confidence {:.2})",
                c.column,
                c.kind.as_str(),
                c.share * 100.0,
                c.rows_read,
                if c.rows_read == 1 { "" } else { "s" },
                c.confidence
            )?;
        }
    }
    if !s.riskiest.is_empty() {
        writeln!(out, "Riskiest files:")?;
        for (i, r) in s.riskiest.iter().take(5).enumerate() {
            writeln!(
                out,
                "  {}. {} — {} risk: {}",
                i + 1,
                r.path,
                r.level().as_str(),
                r.contents()
            )?;
            writeln!(out, "     why: {}", r.exposure.reasons().join("; "))?;
            writeln!(out, "     next step: {}", r.action())?;
        }
        if s.riskiest_folders.len() > 1 {
            let folders: Vec<String> = s
                .riskiest_folders
                .iter()
                .take(3)
                .map(|f| {
                    let files = if f.files == 1 { "file" } else { "files" };
                    let items = if f.findings == 1 { "item" } else { "items" };
                    format!("{} ({} {files}, {} {items})", f.path, f.files, f.findings)
                })
                .collect();
            writeln!(out, "Folders with the most: {}", folders.join(", "))?;
        }
        writeln!(out, "For a report to read or print: custody scan --format html -o report.html")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("+1 ***"), "'+1 ***");
    }

    #[test]
    fn bytes_read_plainly() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 KB");
        assert_eq!(human_bytes(2_000_000_000), "2.0 GB");
    }
}
