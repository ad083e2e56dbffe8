//! Databases as sources: `postgres://…`, `mysql://…` (MySQL and MariaDB) and
//! `sqlite:PATH`. Every table's text-like columns (text, numbers, dates, JSON) are read —
//! the first [`DatabaseOptions::sample`] rows, or all with `full` — with the column name as
//! context (as Macie and pdscan do), and reported per column (kind, share of sampled values
//! that matched, confidence) and per value, located as
//! `postgres://host/db/schema.table.column#row=<primary key>`. Credentials in the URL are
//! never printed: the source is always shown without them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use custody_detect::{Detector, DetectorConfig, Kind};

use crate::error::Error;
use crate::file::{Located, scan_file};
use crate::finding::{Finding, RiskyFile, Summary};
use crate::walk::Sink;

/// Rows put through the detector at once…
const ROWS_PER_BATCH: usize = 5_000;
/// …or fewer, once their values pass this many bytes (wide text or JSON columns).
const BATCH_BYTES: usize = 8 << 20;

/// How to read a database.
#[derive(Clone, Debug)]
pub struct DatabaseOptions {
    /// Rows read per table; `None` reads every row.
    pub sample: Option<u64>,
    /// What to detect and the confidence threshold.
    pub detector: DetectorConfig,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self { sample: Some(10_000), detector: DetectorConfig::default() }
    }
}

/// What one column holds, from the rows read.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnReport {
    /// `postgres://host/db/schema.table.column`.
    pub column: String,
    /// What was found in it.
    pub kind: Kind,
    /// Rows read from its table.
    pub rows_read: u64,
    /// Rows whose value in this column held the kind.
    pub rows_matched: u64,
    /// `rows_matched / rows_read`.
    pub share: f64,
    /// Mean confidence of the matches.
    pub confidence: f32,
}

/// Whether `source` names a database rather than a path.
pub fn is_database_url(source: &str) -> bool {
    ["postgres://", "postgresql://", "mysql://", "mariadb://", "sqlite:"]
        .iter()
        .any(|p| source.len() > p.len() && strip_prefix_ci(source, p).is_some())
}

/// `source` as it may be shown: without user name, password or parameters.
pub fn display_url(source: &str) -> String {
    if let Some(path) = strip_prefix_ci(source, "sqlite:") {
        return format!("sqlite:{path}");
    }
    let Some((scheme, rest)) = source.split_once("://") else { return "?".into() };
    // Everything up to the last `@` is user name and password (which may hold `?`, `#`,
    // `/` or `@` themselves): drop it first, then any parameters.
    let host_and_path = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_and_path = host_and_path.split(['?', '#']).next().unwrap_or("");
    format!("{}://{host_and_path}", scheme.to_ascii_lowercase())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    // `get`: a path may start with a multi-byte character where the prefix would end.
    s.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// How a row is named in a location: its key when the key cannot be customer data (a
/// small integer, or PostgreSQL's physical `(page,item)`), else its position in the rows
/// read (`rownum=`), because a natural key (an email, an SSN, a phone number) would print
/// the customer's value unmasked.
fn row_name(key: &str, ordinal: u64) -> String {
    let small_integer =
        !key.is_empty() && key.len() <= 8 && key.bytes().all(|b| b.is_ascii_digit());
    let ctid = key.len() >= 2
        && key.starts_with('(')
        && key.ends_with(')')
        && key[1..key.len() - 1].bytes().all(|b| b.is_ascii_digit() || b == b',');
    if small_integer || ctid { format!("row={key}") } else { format!("rownum={ordinal}") }
}

/// A table and the columns read from it.
struct Table {
    schema: String,
    name: String,
    columns: Vec<String>,
}

/// One row: its key (primary key values, or a row number) and the columns' values.
type Row = (String, Vec<Option<String>>);

/// A database the scan reads.
trait Source {
    fn tables(&mut self) -> Result<Vec<Table>, String>;
    /// Calls `each` for the rows of `table`, at most `limit`, until it returns `false`.
    fn rows(
        &mut self,
        table: &Table,
        limit: Option<u64>,
        each: &mut dyn FnMut(Row) -> bool,
    ) -> Result<(), String>;
}

fn connect(url: &str) -> Result<Box<dyn Source>, String> {
    if let Some(path) = strip_prefix_ci(url, "sqlite:") {
        return Ok(Box::new(Sqlite::open(path)?));
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("postgres") {
        let tls = custody_store::pg::settings(url);
        let mut config: postgres::Config =
            tls.url.parse().map_err(|_| "not a valid postgres:// address".to_string())?;
        let connector = custody_store::pg::connector(&tls, &mut config)?;
        let client = config.connect(connector).map_err(|e| pg_error(&e))?;
        return Ok(Box::new(Postgres { client }));
    }
    let url = if lower.starts_with("mariadb://") {
        format!("mysql://{}", &url["mariadb://".len()..])
    } else {
        url.to_string()
    };
    let opts =
        mysql::Opts::from_url(&url).map_err(|_| "not a valid mysql:// address".to_string())?;
    let conn = mysql::Conn::new(opts).map_err(|e| mysql_error(&e))?;
    Ok(Box::new(Mysql { conn }))
}

/// A driver's error, reduced to words that cannot hold a value from the database (server
/// messages can quote the row that failed).
fn pg_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("PostgreSQL said {} ({})", db.code().code(), db.severity()),
        None if e.is_closed() => "the connection to PostgreSQL closed".into(),
        None => {
            let text = e.to_string();
            if let Some(words) = custody_store::pg::failure(e) {
                words.into()
            } else if text.contains("connect") || text.contains("Connection refused") {
                "could not connect to PostgreSQL (is it running, and is the address right?)".into()
            } else {
                "PostgreSQL could not be read".into()
            }
        }
    }
}

fn mysql_error(e: &mysql::Error) -> String {
    match e {
        mysql::Error::MySqlError(m) => format!("MySQL said error {} ({})", m.code, m.state),
        mysql::Error::IoError(_) | mysql::Error::DriverError(_) => {
            "could not connect to MySQL/MariaDB (is it running, and is the address right?)".into()
        }
        _ => "MySQL/MariaDB could not be read".into(),
    }
}

fn quote_pg(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_my(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

struct Postgres {
    client: postgres::Client,
}

impl Source for Postgres {
    fn tables(&mut self) -> Result<Vec<Table>, String> {
        let rows = self
            .client
            .query(
                "SELECT c.table_schema, c.table_name, c.column_name
                 FROM information_schema.columns c
                 JOIN information_schema.tables t
                   ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                 WHERE t.table_type = 'BASE TABLE'
                   AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
                   AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb',
                       'integer', 'bigint', 'numeric', 'date', 'USER-DEFINED', 'ARRAY')
                 ORDER BY c.table_schema, c.table_name, c.ordinal_position",
                &[],
            )
            .map_err(|e| pg_error(&e))?;
        Ok(group(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2)))))
    }

    fn rows(
        &mut self,
        table: &Table,
        limit: Option<u64>,
        each: &mut dyn FnMut(Row) -> bool,
    ) -> Result<(), String> {
        use postgres::fallible_iterator::FallibleIterator;
        let qualified = format!("{}.{}", quote_pg(&table.schema), quote_pg(&table.name));
        let keys: Vec<String> = self
            .client
            .query(
                "SELECT a.attname FROM pg_index i
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                 WHERE i.indrelid = $1::text::regclass AND i.indisprimary ORDER BY a.attnum",
                &[&qualified],
            )
            .map_err(|e| pg_error(&e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let key = if keys.is_empty() {
            "ctid::text".to_string()
        } else {
            keys.iter()
                .map(|k| format!("{}::text", quote_pg(k)))
                .collect::<Vec<_>>()
                .join(" || ',' || ")
        };
        let columns: Vec<String> =
            table.columns.iter().map(|c| format!("{}::text", quote_pg(c))).collect();
        let limit = limit.map_or_else(String::new, |n| format!(" LIMIT {n}"));
        let sql = format!("SELECT {key}, {} FROM {qualified}{limit}", columns.join(", "));
        let mut rows =
            self.client.query_raw(&sql, std::iter::empty::<i32>()).map_err(|e| pg_error(&e))?;
        while let Some(row) = rows.next().map_err(|e| pg_error(&e))? {
            let key: Option<String> = row.get(0);
            let values =
                (1..=table.columns.len()).map(|i| row.get::<_, Option<String>>(i)).collect();
            if !each((key.unwrap_or_default(), values)) {
                break;
            }
        }
        Ok(())
    }
}

struct Mysql {
    conn: mysql::Conn,
}

impl Source for Mysql {
    fn tables(&mut self) -> Result<Vec<Table>, String> {
        use mysql::prelude::Queryable;
        let rows: Vec<(String, String, String)> = self
            .conn
            .query(
                "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME
                 FROM information_schema.COLUMNS c
                 JOIN information_schema.TABLES t
                   ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
                 WHERE t.TABLE_TYPE = 'BASE TABLE'
                   AND c.TABLE_SCHEMA = DATABASE()
                   AND c.DATA_TYPE IN ('char', 'varchar', 'tinytext', 'text', 'mediumtext',
                       'longtext', 'json', 'int', 'bigint', 'decimal', 'date', 'enum', 'set')
                 ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION",
            )
            .map_err(|e| mysql_error(&e))?;
        Ok(group(rows.into_iter()))
    }

    fn rows(
        &mut self,
        table: &Table,
        limit: Option<u64>,
        each: &mut dyn FnMut(Row) -> bool,
    ) -> Result<(), String> {
        use mysql::prelude::Queryable;
        let qualified = format!("{}.{}", quote_my(&table.schema), quote_my(&table.name));
        let keys: Vec<String> = self
            .conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'
                 ORDER BY ORDINAL_POSITION",
                (&table.schema, &table.name),
            )
            .map_err(|e| mysql_error(&e))?;
        let key = if keys.is_empty() {
            "NULL".to_string()
        } else {
            format!(
                "CONCAT_WS(',', {})",
                keys.iter().map(|k| quote_my(k)).collect::<Vec<_>>().join(", ")
            )
        };
        let columns: Vec<String> =
            table.columns.iter().map(|c| format!("CAST({} AS CHAR)", quote_my(c))).collect();
        let limit = limit.map_or_else(String::new, |n| format!(" LIMIT {n}"));
        let sql = format!("SELECT {key}, {} FROM {qualified}{limit}", columns.join(", "));
        let result = self.conn.query_iter(sql).map_err(|e| mysql_error(&e))?;
        for (number, row) in (1u64..).zip(result) {
            let mut row = row.map_err(|e| mysql_error(&e))?;
            let key: Option<String> = row.take_opt(0).and_then(Result::ok).flatten();
            let values = (1..=table.columns.len())
                .map(|i| row.take_opt::<Option<String>, _>(i).and_then(Result::ok).flatten())
                .collect();
            if !each((key.unwrap_or_else(|| number.to_string()), values)) {
                break;
            }
        }
        Ok(())
    }
}

struct Sqlite {
    conn: rusqlite::Connection,
}

impl Sqlite {
    fn open(path: &str) -> Result<Self, String> {
        use rusqlite::OpenFlags;
        if !std::path::Path::new(path).is_file() {
            return Err(format!("no database file at '{path}'"));
        }
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|_| "not a readable SQLite database".to_string())?;
        Ok(Self { conn })
    }
}

impl Source for Sqlite {
    fn tables(&mut self) -> Result<Vec<Table>, String> {
        let damaged = |_| "not a readable SQLite database".to_string();
        let names: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                .map_err(damaged)?;
            stmt.query_map([], |r| r.get(0))
                .map_err(damaged)?
                .collect::<Result<_, _>>()
                .map_err(damaged)?
        };
        let mut out = Vec::new();
        for name in names {
            let mut stmt = self
                .conn
                .prepare(&format!("PRAGMA table_info({})", quote_pg(&name)))
                .map_err(damaged)?;
            let columns: Vec<String> = stmt
                .query_map([], |r| r.get(1))
                .map_err(damaged)?
                .collect::<Result<_, _>>()
                .map_err(damaged)?;
            out.push(Table { schema: "main".into(), name, columns });
        }
        Ok(out)
    }

    fn rows(
        &mut self,
        table: &Table,
        limit: Option<u64>,
        each: &mut dyn FnMut(Row) -> bool,
    ) -> Result<(), String> {
        use rusqlite::types::ValueRef;
        let damaged = |_| format!("table {} could not be read", table.name);
        let columns: Vec<String> = table.columns.iter().map(|c| quote_pg(c)).collect();
        let limit = limit.map_or_else(String::new, |n| format!(" LIMIT {n}"));
        let sql =
            format!("SELECT rowid, {} FROM {}{limit}", columns.join(", "), quote_pg(&table.name));
        let mut stmt = self.conn.prepare(&sql).map_err(damaged)?;
        let mut rows = stmt.query([]).map_err(damaged)?;
        while let Some(row) = rows.next().map_err(damaged)? {
            let text = |i: usize| match row.get_ref(i) {
                Ok(ValueRef::Text(t) | ValueRef::Blob(t)) => {
                    std::str::from_utf8(t).ok().map(str::to_string)
                }
                Ok(ValueRef::Integer(n)) => Some(n.to_string()),
                Ok(ValueRef::Real(f)) => Some(f.to_string()),
                _ => None,
            };
            let values = (1..=table.columns.len()).map(text).collect();
            if !each((text(0).unwrap_or_default(), values)) {
                break;
            }
        }
        Ok(())
    }
}

/// Groups (schema, table, column) rows into tables.
fn group(rows: impl Iterator<Item = (String, String, String)>) -> Vec<Table> {
    let mut tables: Vec<Table> = Vec::new();
    for (schema, name, column) in rows {
        match tables.last_mut() {
            Some(t) if t.schema == schema && t.name == name => t.columns.push(column),
            _ => tables.push(Table { schema, name, columns: vec![column] }),
        }
    }
    tables
}

/// Per column and kind: matched rows and summed confidence.
type Tally = BTreeMap<(usize, Kind), (u64, f64)>;

/// Scans the database at `url`, sending findings to `sink`. Returns the summary (with a
/// report per column that holds customer data). A table that cannot be read is reported
/// as skipped; a database that cannot be reached is an error (without the credentials).
pub fn scan_database(
    url: &str,
    options: &DatabaseOptions,
    sink: &mut dyn Sink,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let display = display_url(url);
    let source_error = |why: String| Error::Source { source_name: display.clone(), why };
    let mut source = connect(url).map_err(source_error)?;
    let detector = Detector::new(options.detector.clone());
    let mut summary = Summary::default();
    for table in source.tables().map_err(source_error)? {
        let base = if url.to_ascii_lowercase().starts_with("sqlite:") {
            format!("{display}/{}", table.name)
        } else {
            format!("{display}/{}.{}", table.schema, table.name)
        };
        let mut tally = Tally::new();
        let mut rows_read = 0u64;
        let mut batch: Vec<Row> = Vec::with_capacity(ROWS_PER_BATCH);
        let mut failure = None;
        let mut score = 0.0;
        let mut findings = 0u64;
        let by_kind = &mut summary.findings_by_kind;
        let mut table_kinds: BTreeMap<Kind, u64> = BTreeMap::new();
        let mut flush = |batch: &mut Vec<Row>, rows_read: u64| -> Result<(), Error> {
            let (found, s) =
                detect_batch(&detector, &base, &table.columns, batch, rows_read, &mut tally, sink)?;
            for &kind in &found {
                *by_kind.entry(kind).or_insert(0) += 1;
                *table_kinds.entry(kind).or_insert(0) += 1;
            }
            let found = found.len() as u64;
            findings += found;
            score += s;
            batch.clear();
            Ok(())
        };
        let mut batch_bytes = 0usize;
        let read = source.rows(&table, options.sample, &mut |row| {
            batch_bytes += row.1.iter().flatten().map(String::len).sum::<usize>();
            batch.push(row);
            if batch.len() == ROWS_PER_BATCH || batch_bytes > BATCH_BYTES {
                let done = rows_read + batch.len() as u64;
                if let Err(e) = flush(&mut batch, rows_read) {
                    // Writing failed (a full disk, a closed pipe): stop reading.
                    failure = Some(e);
                    return false;
                }
                rows_read = done;
                batch_bytes = 0;
            }
            true
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let last = batch.len() as u64;
        flush(&mut batch, rows_read)?;
        rows_read += last;
        match read {
            Ok(()) => {
                summary.files_scanned += 1;
                summary.offer_risky(RiskyFile {
                    path: base.clone(),
                    score,
                    findings,
                    kinds: table_kinds.clone(),
                    exposure: crate::risk::Exposure::default(),
                });
            }
            Err(why) => {
                *summary.files_skipped.entry("unreadable").or_insert(0) += 1;
                sink.skipped(&crate::Skip {
                    path: base.clone(),
                    reason: crate::SkipReason::Unreadable(why),
                })
                .map_err(Error::Output)?;
            }
        }
        for ((column, kind), (matched, confidence)) in tally {
            summary.columns.push(ColumnReport {
                column: format!("{base}.{}", table.columns[column]),
                kind,
                rows_read,
                rows_matched: matched,
                share: matched as f64 / rows_read.max(1) as f64,
                confidence: ((confidence / matched.max(1) as f64) * 100.0).round() as f32 / 100.0,
            });
        }
    }
    summary.duration = started.elapsed();
    Ok(summary)
}

/// Runs the detector over a batch of rows laid out as a table (the column names are the
/// header, so they are context) and sends each finding, located by column and key.
fn detect_batch(
    detector: &Detector,
    base: &str,
    columns: &[String],
    rows: &[Row],
    first_row: u64,
    tally: &mut Tally,
    sink: &mut dyn Sink,
) -> Result<(Vec<Kind>, f64), Error> {
    if rows.is_empty() {
        return Ok((Vec::new(), 0.0));
    }
    let mut text =
        columns.iter().map(|c| c.replace(['\t', '\n', '\r'], " ")).collect::<Vec<_>>().join("\t");
    text.push('\n');
    // Where each value starts: (offset, row index, column index).
    let mut cells: Vec<(u64, usize, usize)> = Vec::new();
    for (r, (_, values)) in rows.iter().enumerate() {
        for (c, value) in values.iter().enumerate() {
            if c > 0 {
                text.push('\t');
            }
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                cells.push((text.len() as u64, r, c));
                text.extend(
                    v.chars().map(|ch| if matches!(ch, '\t' | '\n' | '\r') { ' ' } else { ch }),
                );
            }
        }
        text.push('\n');
    }
    let mut found_rows: BTreeMap<(usize, Kind), Vec<usize>> = BTreeMap::new();
    let mut out = Vec::new();
    let mut on_bytes = |_| {};
    let mut found = |l: Located| {
        let i = cells.partition_point(|(start, _, _)| *start <= l.offset);
        let Some(&(start, row, column)) = i.checked_sub(1).map(|i| &cells[i]) else { return };
        let d = l.detection;
        let rows_for = found_rows.entry((column, d.kind)).or_default();
        if rows_for.last() != Some(&row) {
            rows_for.push(row);
            let t = tally.entry((column, d.kind)).or_insert((0, 0.0));
            t.0 += 1;
            t.1 += f64::from(d.confidence);
        }
        let path: Arc<str> = Arc::from(format!(
            "{base}.{}#{}",
            columns[column],
            row_name(&rows[row].0, first_row + row as u64 + 1)
        ));
        out.push(Finding {
            file_len: path.len(),
            path,
            kind: d.kind,
            subkind: d.subkind,
            line: first_row + row as u64 + 1,
            column: l.offset - start + 1,
            offset: l.offset - start,
            length: l.length,
            confidence: (d.confidence * 100.0).round() / 100.0,
            reasons: d.reasons,
            test_card: d.test_card,
            value: d.value,
            premasked: false,
            key: None,
        });
    };
    let _ =
        scan_file(&mut text.as_bytes(), detector, 1 << 20, true, false, &mut on_bytes, &mut found);
    let mut score = 0.0;
    for f in &out {
        score += f.kind.risk_weight() * f64::from(f.confidence);
        sink.finding(f).map_err(Error::Output)?;
    }
    Ok((out.iter().map(|f| f.kind).collect(), score))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_multibyte_characters_are_not_databases() {
        for path in ["données/rapports", "Résumés", "sqlité", "é", "postgres:/"] {
            assert!(!is_database_url(path), "{path}");
        }
        assert!(is_database_url("SQLite:shop.db"));
        assert!(is_database_url("postgresql://h/db"));
    }

    #[test]
    fn credentials_never_survive_the_display_form() {
        for (url, shown) in [
            ("mysql://root:se#cret@db/app", "mysql://db/app"),
            ("postgres://u:pa?ss@h/db", "postgres://h/db"),
            ("postgres://u:p@ss/w@rd@h:5432/db?sslmode=require", "postgres://h:5432/db"),
            ("postgres://h/db", "postgres://h/db"),
        ] {
            assert_eq!(display_url(url), shown);
        }
    }

    #[test]
    fn natural_keys_are_not_printed() {
        assert_eq!(row_name("42", 1), "row=42");
        assert_eq!(row_name("(0,7)", 1), "row=(0,7)");
        assert_eq!(row_name("jane@example.com", 3), "rownum=3");
        assert_eq!(row_name("536221234", 4), "rownum=4", "an SSN as an integer key");
        assert_eq!(row_name("4111111111111111", 5), "rownum=5");
    }
}
