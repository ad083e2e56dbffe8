//! Email addresses, found from each `@` outwards.

use crate::Kind;
use crate::context::Hint;
use crate::detector::{Detection, Reason, Scan};
use crate::secrets;

fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// Top-level "domains" that are really file extensions (`logo@2x.png`).
const NOT_TLDS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "css", "js", "pdf", "tif", "tiff",
    "txt", "html",
];

/// Mailboxes that belong to a business, not a customer.
const ROLE_ACCOUNTS: &[&str] = &[
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "info",
    "support",
    "sales",
    "admin",
    "postmaster",
    "webmaster",
    "billing",
    "orders",
    "hello",
    "contact",
    "help",
    "abuse",
    "mailer-daemon",
];

/// Every `@`: an email address, or the end of a URL's credentials
/// (`scheme://user:password@host`), whose password is a secret.
pub(crate) fn scan(scan: &Scan<'_>, out: &mut Vec<Detection>) {
    if !scan.enabled(Kind::Email) && !scan.enabled(Kind::Secret) {
        return;
    }
    let bytes = scan.bytes();
    for at in memchr::memchr_iter(b'@', bytes) {
        if at < scan.chunk.emit_from || at > scan.chunk.emit_to + 64 {
            if at > scan.chunk.emit_to + 64 {
                break;
            }
            continue;
        }
        if let Some(scheme_sep) = url_credentials(bytes, at) {
            if let Some(d) = secrets::url_password(scan, scheme_sep, at) {
                out.push(d);
            }
            continue;
        }
        if scan.enabled(Kind::Email)
            && let Some(d) = email_at(scan, at)
        {
            out.push(d);
        }
    }
}

/// If the `@` at `at` ends the user-info of a URL (`scheme://user[:password]@`), the
/// position of its `://`.
fn url_credentials(bytes: &[u8], at: usize) -> Option<usize> {
    let floor = at.saturating_sub(256);
    let sep = memchr::memmem::rfind(&bytes[floor..at], b"://")? + floor;
    // Nothing between `://` and `@` may end the user-info.
    let userinfo = &bytes[sep + 3..at];
    let clean = !userinfo
        .iter()
        .any(|c| matches!(c, b'/' | b'@' | b' ' | b'\t' | b'\n' | b'"' | b'\'' | b'<' | b'>'));
    clean.then_some(sep)
}

fn email_at(scan: &Scan<'_>, at: usize) -> Option<Detection> {
    let bytes = scan.bytes();
    let mut s = at;
    while s > 0 && local_char(bytes[s - 1]) && at - s <= 64 {
        s -= 1;
    }
    if at - s > 64 || scan.open_left(s) {
        return None;
    }
    while s < at && matches!(bytes[s], b'.' | b'\'' | b'-') {
        s += 1;
    }
    if s == at || bytes[at - 1] == b'.' {
        return None;
    }
    let mut e = at + 1;
    while e < bytes.len() && domain_char(bytes[e]) && e - at <= 255 {
        e += 1;
    }
    if scan.open_right(e) {
        return None;
    }
    while e > at + 1 && matches!(bytes[e - 1], b'.' | b'-') {
        e -= 1;
    }
    let local = &bytes[s..at];
    let domain = &bytes[at + 1..e];
    if local.windows(2).any(|w| w == b"..") || !valid_domain(domain) {
        return None;
    }
    if !scan.in_emit_range(s) {
        return None;
    }
    let ev = scan.structural_evidence(s);
    let mut reasons = vec![Reason::Validator("email-syntax")];
    let lower = String::from_utf8_lossy(local).to_ascii_lowercase();
    let base = if ROLE_ACCOUNTS.contains(&lower.as_str()) {
        reasons.push(Reason::Format("role-account"));
        0.5
    } else {
        0.85
    };
    let conf = ev.score(base, Hint::Email, &mut reasons);
    Some(scan.detection(Kind::Email, s, e, conf, reasons))
}

fn valid_domain(domain: &[u8]) -> bool {
    if domain.len() < 4 || domain.len() > 253 {
        return false;
    }
    let labels: Vec<&[u8]> = domain.split(|c| *c == b'.').collect();
    if labels.len() < 2 {
        return false;
    }
    if labels.iter().any(|l| l.is_empty() || l.len() > 63 || l[0] == b'-' || l[l.len() - 1] == b'-')
    {
        return false;
    }
    let tld = labels[labels.len() - 1];
    let tld_lower = String::from_utf8_lossy(tld).to_ascii_lowercase();
    (2..=24).contains(&tld.len())
        && tld.iter().all(u8::is_ascii_alphabetic)
        && !NOT_TLDS.contains(&tld_lower.as_str())
}
