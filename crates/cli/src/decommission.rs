//! `custody scan --decommission PATH…`: the check before a computer or disk is given away.
//! Everything is scanned (all kinds, no ignore files, no exclusions), the result is
//! recorded in the ledger and sealed by a signed checkpoint, and a certificate (HTML) says
//! what was scanned, when, by whom, what was found and what was done — with the signed
//! checkpoint, so anyone holding the ledger's public key can check it was not edited.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use custody_ledger::{Event, Ledger, Outcome};
use custody_remedy::decommission::MAX_ACTIONS;
use custody_scan::Summary;

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

/// How far back the certificate looks for clean-up actions.
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
        // A path forgotten from the path book can no longer be placed under a root.
        let Ok(Some(path)) = ledger.resolve_path(&done.path) else { continue };
        let path = path.as_str();
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
    unlock: &crate::records::Unlock,
) -> Result<PathBuf> {
    let host = hostname();
    let user = crate::ledger::actor();
    let roots: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    // The certificate is signed by a checkpoint made now.
    let ledger = crate::ledger::signing_ledger(data_dir, unlock)?;
    let mut event = Event::new(user.clone(), custody_ledger::Action::ScanDecommission, Outcome::Ok);
    let mut details: custody_ledger::details::ScanRun =
        serde_json::from_value(summary_json.clone())
            .context("the scan summary does not have the shape the ledger records")?;
    details.host = Some(host.clone());
    details.roots = roots.iter().map(|r| ledger.path_ref(r)).collect::<Result<_, _>>()?;
    event.set_details(&details)?;
    let done = actions_under(&ledger, &roots);
    let position = ledger.append(&event).context("the decommission scan could not be recorded")?;
    let checkpoint = ledger.checkpoint().context("the ledger could not sign a checkpoint")?;
    ledger.close();

    let finished = crate::ledger::now_utc();
    let path = certificate.map_or_else(
        || PathBuf::from(format!("custody-decommission-{}.html", &finished[..10])),
        Path::to_path_buf,
    );
    let page = custody_remedy::decommission::Certificate {
        host: &host,
        user: &user,
        started,
        finished: &finished,
        roots: &roots,
        summary,
        done: &done,
        position,
        checkpoint_size: checkpoint.size,
        checkpoint_note: &checkpoint.note,
    }
    .to_html();
    std::fs::write(&path, page)
        .with_context(|| format!("cannot write the certificate to {}", path.display()))?;
    Ok(path)
}
