//! `custody scan --decommission PATH…`: the check before a computer or disk is given away.
//! Everything is scanned (all kinds, no ignore files, no exclusions), the result is
//! recorded in the ledger and sealed by a signed checkpoint, and a certificate (HTML) says
//! what was scanned, when, by whom, what was found and what was done — with the signed
//! checkpoint, so anyone holding the ledger's public key can check it was not edited.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use custody_ledger::{Event, Ledger, LedgerOptions, Outcome};
use custody_scan::{Summary, html_escape as esc};

/// Refuses to start without a ledger (the certificate is signed by it).
pub fn check_ready(data_dir: &Path) -> Result<()> {
    if !custody_vault::layout::has_ledger(data_dir) {
        bail!(
            "no ledger in {}: the decommission certificate is signed with your ledger's key.\n\
             Next step: run `custody init` (or pass --data-dir), then run this again.",
            data_dir.display()
        );
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "this computer".into())
}

/// The most clean-up actions a certificate lists, and how far back it looks.
const MAX_ACTIONS: usize = 200;
const LOOK_BACK: u64 = 200_000;

/// `custody fix` actions done (not failed) on files under `roots`, newest first: (time,
/// action, path). Read from the newest events back, at most [`LOOK_BACK`] of them.
fn actions_under(ledger: &Ledger, roots: &[String]) -> Vec<(String, String, String)> {
    let roots: Vec<PathBuf> = roots.iter().filter_map(|r| std::path::absolute(r).ok()).collect();
    let Ok(size) = ledger.size() else { return Vec::new() };
    let mut found = Vec::new();
    for index in (size.saturating_sub(LOOK_BACK)..size).rev() {
        let Ok(leaf) = ledger.leaf(index) else { break };
        let Ok(event) = custody_ledger::Event::from_canonical(&leaf) else { continue };
        let Some(action) = event.kind().filter(|a| a.is_fix()) else { continue };
        if event.outcome != custody_ledger::Outcome::Ok {
            continue;
        }
        let Ok(done) = event.details_as::<custody_ledger::details::FixDone>() else { continue };
        let path = done.path.as_str();
        if !roots.iter().any(|r| Path::new(path).starts_with(r)) {
            continue;
        }
        let when = crate::ledger::format_ms(event.time);
        let verb = action.as_str().trim_start_matches("fix.").to_string();
        found.push((when, verb, path.to_string()));
        if found.len() == MAX_ACTIONS {
            break;
        }
    }
    found
}

/// Records the decommission scan, checkpoints the ledger and writes the certificate.
/// Returns the certificate's path.
pub fn certify(
    data_dir: &Path,
    roots: &[PathBuf],
    summary: &Summary,
    summary_json: &serde_json::Value,
    started: &str,
    certificate: Option<&Path>,
) -> Result<PathBuf> {
    let host = hostname();
    let user = crate::ledger::actor();
    let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    let ledger = custody_vault::layout::open_ledger(data_dir, LedgerOptions::default())?;
    let mut event = Event::new(user.clone(), custody_ledger::Action::ScanDecommission, Outcome::Ok);
    let mut details: custody_ledger::details::ScanRun =
        serde_json::from_value(summary_json.clone())
            .context("the scan summary does not have the shape the ledger records")?;
    details.host = Some(host.clone());
    details.roots.clone_from(&roots);
    event.set_details(&details)?;
    let done = actions_under(&ledger, &roots);
    let position = ledger.append(&event).context("the decommission scan could not be recorded")?;
    let checkpoint = ledger.checkpoint().context("the ledger could not sign a checkpoint")?;
    ledger.close();

    let finished = crate::ledger::now_utc();
    let clean = summary.total_findings() == 0;
    let path = certificate.map_or_else(
        || PathBuf::from(format!("custody-decommission-{}.html", &finished[..10])),
        Path::to_path_buf,
    );
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
        esc(&host),
        esc(&user),
        esc(started),
        esc(&finished),
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
            let _ = write!(page, "<li><code>{}</code>: {}</li>", esc(&r.path), esc(&r.contents()));
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
        for (when, action, path) in &done {
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
        checkpoint.size,
        esc(&checkpoint.note)
    );
    page.push_str("</body></html>\n");
    std::fs::write(&path, page)
        .with_context(|| format!("cannot write the certificate to {}", path.display()))?;
    Ok(path)
}
