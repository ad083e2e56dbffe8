//! The decommission certificate: what a check before a computer or disk is given away
//! found and what was done about it, as a page to print or keep. The binary gathers the
//! facts (the scan, the ledger's record of it and its signed checkpoint, the clean-up
//! actions the ledger holds); this builds the page. Every value is HTML-escaped.

use std::fmt::Write as _;

use custody_scan::{Summary, html_escape as esc};

/// The most clean-up actions a certificate lists.
pub const MAX_ACTIONS: usize = 200;

/// Everything a certificate states.
#[derive(Debug)]
pub struct Certificate<'a> {
    /// The computer's name.
    pub host: &'a str,
    /// Who ran the check.
    pub user: &'a str,
    /// When the scan started and when the check finished (UTC, RFC 3339).
    pub started: &'a str,
    /// See `started`.
    pub finished: &'a str,
    /// What was scanned.
    pub roots: &'a [String],
    /// The scan's summary (counts and the riskiest files; masked values only).
    pub summary: &'a Summary,
    /// Clean-up actions done under the roots, newest first: (time, action, path).
    pub done: &'a [(String, String, String)],
    /// The position of the scan's event in the ledger.
    pub position: u64,
    /// The size of the signed checkpoint that seals it.
    pub checkpoint_size: u64,
    /// The signed checkpoint note.
    pub checkpoint_note: &'a str,
}

impl Certificate<'_> {
    /// Whether nothing was found.
    pub fn clean(&self) -> bool {
        self.summary.total_findings() == 0
    }

    /// The certificate as one HTML page.
    pub fn to_html(&self) -> String {
        let (host, user, started, finished, roots, summary, done, position) = (
            self.host,
            self.user,
            self.started,
            self.finished,
            self.roots,
            self.summary,
            self.done,
            self.position,
        );
        let clean = self.clean();
        let mut page = String::from(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Decommission certificate</title>\
             <style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
             td,th{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #eee;vertical-align:top}\
             pre{background:#f5f5f2;padding:.8rem;white-space:pre-wrap;word-break:break-all}\
             .verdict{font-size:1.3rem;font-weight:bold}</style></head><body>",
        );
        let _ = write!(
            page,
            "<h1>Decommission certificate</h1><p class=\"verdict\">{}</p>",
            if clean {
                "No customer data was found."
            } else {
                "Customer data was found: this computer is NOT ready to be given away."
            }
        );
        let _ = write!(
            page,
            "<table><tr><th>Computer</th><td>{}</td></tr><tr><th>Scanned by</th><td>{}</td></tr>\
             <tr><th>Started</th><td>{}</td></tr><tr><th>Finished</th><td>{}</td></tr>\
             <tr><th>What was scanned</th><td>{}</td></tr><tr><th>Files read</th><td>{} ({} bytes of text)</td></tr>\
             <tr><th>Could not be read</th><td>{}</td></tr><tr><th>How</th><td>custody {}: every kind of customer data, \
             no ignore files, no exclusions, inside archives, documents and mail</td></tr></table>",
            esc(host),
            esc(user),
            esc(started),
            esc(finished),
            roots.iter().map(|r| esc(r)).collect::<Vec<_>>().join("<br>"),
            summary.files_scanned,
            summary.bytes_scanned,
            summary.total_skipped(),
            env!("CARGO_PKG_VERSION"),
        );
        page.push_str("<h2>What was found</h2>");
        if clean {
            page.push_str("<p>Nothing.</p>");
        } else {
            page.push_str("<table>");
            for (kind, n) in &summary.findings_by_kind {
                let _ = write!(page, "<tr><td>{}</td><td>{n}</td></tr>", esc(kind.label()));
            }
            page.push_str("</table><p>Where (the files holding the most):</p><ul>");
            for r in &summary.riskiest {
                let _ =
                    write!(page, "<li><code>{}</code>: {}</li>", esc(&r.path), esc(&r.contents()));
            }
            page.push_str("</ul>");
        }
        if summary.total_skipped() > 0 {
            page.push_str("<p>Files that could not be read (for example encrypted ones) are listed in the scan output; \
                their content is unknown to this certificate.</p>");
        }
        page.push_str("<h2>What was done</h2>");
        if done.is_empty() {
            page.push_str("<p>custody recorded no clean-up actions under these folders.</p>");
        } else {
            let _ = write!(
                page,
                "<p>Clean-up actions recorded in the ledger under these folders (the {MAX_ACTIONS} most recent at most):</p><table>"
            );
            for (when, action, path) in done {
                let _ = write!(
                    page,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                    esc(when),
                    esc(action),
                    esc(path)
                );
            }
            page.push_str("</table>");
        }
        if !clean {
            page.push_str("<p>Delete, wipe or quarantine what was found (<code>custody fix</code>), then run this \
                check again: a clean result is the certificate to keep.</p>");
        }
        let _ = write!(
            page,
            "<h2>Proof</h2><p>This scan is event {position} of this business's custody ledger, sealed by the signed \
             checkpoint below (tree size {}). To check it: <code>custody ledger verify</code> on that computer's \
             data, or an evidence bundle (<code>custody ledger export</code>, then <code>custody ledger \
             verify-bundle</code> with the public key from <code>custody ledger public-key</code>).</p><pre>{}</pre>",
            self.checkpoint_size,
            esc(self.checkpoint_note)
        );
        page.push_str("</body></html>\n");
        page
    }
}
