//! SQLite database files: every table, opened read-only and immutable (nothing is written,
//! not even a journal), one part per table with the column names as the header row and
//! each value labelled `table.column#row=<rowid>`.

use std::fmt::Write as _;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::{Cx, Label, Skipped, join};

/// Rows read per table part (a bigger table becomes several parts)…
const ROWS_PER_PART: usize = 10_000;
/// …or fewer, once a part's text passes this many bytes.
const PART_BYTES: usize = 8 << 20;

pub(crate) fn table_text(cx: &mut Cx<'_, '_>, location: &str, path: &Path) -> Result<(), Skipped> {
    let damaged = |_| Skipped::Corrupt("not a readable SQLite database");
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let uri = format!("file:{}?mode=ro&immutable=1", percent_path(path));
    let conn = Connection::open_with_flags(uri, flags).map_err(damaged)?;
    // No single value bigger than a member may be (a generated column can make gigabytes
    // out of a few bytes of file).
    let cap = i32::try_from(cx.budget.limits.max_unpacked).unwrap_or(i32::MAX);
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, cap).map_err(damaged)?;
    let tables: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .map_err(|e| if is_encrypted(&e) { Skipped::Encrypted } else { damaged(e) })?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(damaged)?;
        rows.collect::<Result<_, _>>().map_err(damaged)?
    };
    for table in tables {
        let here = join(location, &table);
        if let Err(why) = one_table(cx, &conn, &table, location) {
            if cx.budget.fatal().is_some() {
                return Err(why);
            }
            cx.skip(&here, why);
        }
    }
    Ok(())
}

fn is_encrypted(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase)
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A path for a `file:` URI (the characters that would end or change it escaped).
fn percent_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// One table, as parts at `location` (the database file) labelled `table.column#row=id`.
fn one_table(
    cx: &mut Cx<'_, '_>,
    conn: &Connection,
    table: &str,
    location: &str,
) -> Result<(), Skipped> {
    let damaged = |_| Skipped::Corrupt("a table could not be read");
    // WITHOUT ROWID tables have no rowid: their rows are numbered instead.
    let with_rowid = conn.prepare(&format!("SELECT rowid FROM {} LIMIT 0", quote(table))).is_ok();
    let sql = if with_rowid {
        format!("SELECT rowid, * FROM {}", quote(table))
    } else {
        format!("SELECT NULL, * FROM {}", quote(table))
    };
    let mut stmt = conn.prepare(&sql).map_err(damaged)?;
    let columns: Vec<String> = stmt.column_names().skip(1).map(str::to_string).collect();
    let header =
        columns.iter().map(|c| c.replace(['\t', '\n', '\r'], " ")).collect::<Vec<_>>().join("\t");
    let mut rows = stmt.query([]).map_err(damaged)?;
    let mut text = String::new();
    let mut labels = Vec::new();
    let mut in_part = 0usize;
    let mut number = 0u64;
    let start_part = |text: &mut String| {
        text.clear();
        text.push_str(&header);
        text.push('\n');
    };
    start_part(&mut text);
    loop {
        let row = rows.next().map_err(damaged)?;
        let Some(row) = row else { break };
        number += 1;
        let id: String = match row.get_ref(0) {
            Ok(ValueRef::Integer(i)) => i.to_string(),
            _ => number.to_string(),
        };
        for (c, column) in columns.iter().enumerate() {
            if c > 0 {
                text.push('\t');
            }
            let value = match row.get_ref(c + 1) {
                Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
                Ok(ValueRef::Integer(i)) => i.to_string(),
                Ok(ValueRef::Real(f)) if f.fract() == 0.0 && f.abs() < 1e17 => format!("{f:.0}"),
                Ok(ValueRef::Real(f)) => f.to_string(),
                // Blobs: text stored as bytes is read; anything else is not text.
                Ok(ValueRef::Blob(b)) => {
                    std::str::from_utf8(b).map(str::to_string).unwrap_or_default()
                }
                _ => String::new(),
            };
            if !value.is_empty() {
                labels.push(Label {
                    start: text.len() as u64,
                    name: format!("{table}.{column}#row={id}"),
                });
                text.extend(
                    value.chars().map(|ch| if matches!(ch, '\t' | '\n' | '\r') { ' ' } else { ch }),
                );
            }
        }
        text.push('\n');
        in_part += 1;
        if in_part == ROWS_PER_PART || text.len() > PART_BYTES {
            cx.budget.check_time()?;
            cx.text(location, &mut text.as_bytes(), true, &labels)?;
            start_part(&mut text);
            labels.clear();
            in_part = 0;
        }
    }
    if in_part > 0 || number == 0 {
        cx.text(location, &mut text.as_bytes(), true, &labels)?;
    }
    Ok(())
}
