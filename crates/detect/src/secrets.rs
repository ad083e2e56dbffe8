//! Credentials: cloud and SaaS API keys, tokens, private keys and passwords in URLs.
//!
//! As gitleaks and trufflehog do, a keyword prefilter (one multi-literal search per buffer)
//! finds the few places worth a closer look; each rule then checks the exact shape at that
//! place. Nothing is verified against a provider: custody makes no network calls.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::Kind;
use crate::detector::{Detection, Reason, Scan};

#[derive(Clone, Copy)]
enum Rule {
    /// `AKIA…`: 16 more base-32 characters.
    AwsAccessKeyId,
    /// A 40-character secret after an `aws_secret_access_key` style key.
    AwsSecretKey,
    /// `sk_live_…`.
    StripeSecret,
    /// `rk_live_…`.
    StripeRestricted,
    /// `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + 36.
    GitHubToken,
    /// `github_pat_` + 82.
    GitHubPat,
    /// `xoxb-…`, `xoxp-…`.
    SlackToken,
    /// `https://hooks.slack.com/services/T…/B…/…`.
    SlackWebhook,
    /// `AIza` + 35.
    GoogleApiKey,
    /// `SK` + 32 hex, on a line that names Twilio.
    TwilioApiKey,
    /// `SG.` + 22 `.` + 43.
    SendGrid,
    /// `-----BEGIN … PRIVATE KEY-----`, its body and its END line: the whole block.
    PrivateKey,
    /// `-----END … PRIVATE KEY-----` after a key body whose BEGIN line is gone (a block
    /// cut, or half-redacted by an older tool): the body is the key.
    PrivateKeyBody,
    /// A share of custody's own recovery kit, `custody-share-1-<hex>-<fingerprint>-<check>`:
    /// two of them open the vault (review item 11).
    CustodyShare,
}

const PATTERNS: &[(&str, Rule)] = &[
    ("AKIA", Rule::AwsAccessKeyId),
    ("ASIA", Rule::AwsAccessKeyId),
    ("ABIA", Rule::AwsAccessKeyId),
    ("ACCA", Rule::AwsAccessKeyId),
    ("aws_secret_access_key", Rule::AwsSecretKey),
    ("AWS_SECRET_ACCESS_KEY", Rule::AwsSecretKey),
    ("aws_secret_key", Rule::AwsSecretKey),
    ("AWS_SECRET_KEY", Rule::AwsSecretKey),
    ("SecretAccessKey", Rule::AwsSecretKey),
    ("sk_live_", Rule::StripeSecret),
    ("rk_live_", Rule::StripeRestricted),
    ("ghp_", Rule::GitHubToken),
    ("gho_", Rule::GitHubToken),
    ("ghu_", Rule::GitHubToken),
    ("ghs_", Rule::GitHubToken),
    ("ghr_", Rule::GitHubToken),
    ("github_pat_", Rule::GitHubPat),
    ("xoxb-", Rule::SlackToken),
    ("xoxp-", Rule::SlackToken),
    ("xoxa-", Rule::SlackToken),
    ("xoxr-", Rule::SlackToken),
    ("xoxs-", Rule::SlackToken),
    ("xoxe-", Rule::SlackToken),
    ("hooks.slack.com/services/", Rule::SlackWebhook),
    ("AIza", Rule::GoogleApiKey),
    // Two-letter `SK` fires on every `SKU` and `ASK`; as trufflehog does, the provider's
    // name triggers the rule and the key is looked for after it on the same line.
    ("twilio", Rule::TwilioApiKey),
    ("Twilio", Rule::TwilioApiKey),
    ("TWILIO", Rule::TwilioApiKey),
    ("SG.", Rule::SendGrid),
    ("-----BEGIN ", Rule::PrivateKey),
    ("-----END ", Rule::PrivateKeyBody),
    ("custody-share-1-", Rule::CustodyShare),
];

/// How far a private key's PEM body is followed from its BEGIN line (or back from its END
/// line). An RSA-16384 key in PKCS#8 is about 12.5 KiB. A caller that cuts text into
/// windows keeps a block of this size in one window (redaction does).
pub const PEM_REACH: usize = 16 * 1024;

/// The line starting at `at`: its end (the newline's position, or `bytes.len()`) and its
/// text without a trailing `\r`.
fn line_at(bytes: &[u8], at: usize) -> (usize, &[u8]) {
    let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n);
    let line = &bytes[at..end];
    (end, line.strip_suffix(b"\r").unwrap_or(line))
}

/// A line of a PEM body: base64 (at most 76 characters, as RFC 7468 writes 64), or one of
/// the encrypted legacy format's headers (RFC 1421: `Proc-Type:`, `DEK-Info:`).
fn pem_body_line(line: &[u8]) -> bool {
    let base64 = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=');
    (!line.is_empty() && line.len() <= 76 && line.iter().all(base64))
        || line.starts_with(b"Proc-Type:")
        || line.starts_with(b"DEK-Info:")
}

/// An encapsulation boundary of a private key: `-----BEGIN|END … PRIVATE KEY-----`.
fn private_key_boundary(line: &[u8]) -> bool {
    line.starts_with(b"-----")
        && line.ends_with(b"-----")
        && memchr::memmem::find(line, b"PRIVATE KEY").is_some()
}

/// The compiled prefilter.
pub(crate) struct Secrets {
    ac: AhoCorasick,
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn b32(c: u8) -> bool {
    c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)
}

fn url_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Counts bytes from `at` satisfying `ok`, up to `max`.
fn run(bytes: &[u8], at: usize, max: usize, ok: impl Fn(u8) -> bool) -> usize {
    bytes[at.min(bytes.len())..].iter().take(max).take_while(|c| ok(**c)).count()
}

impl Secrets {
    pub fn new() -> Self {
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(PATTERNS.iter().map(|(p, _)| p))
            .expect("the secret prefixes are a small fixed set of literals");
        Self { ac }
    }

    pub fn scan(&self, scan: &Scan<'_>, out: &mut Vec<Detection>) {
        if !scan.enabled(Kind::Secret) {
            return;
        }
        let bytes = scan.bytes();
        let from = scan.chunk.emit_from.saturating_sub(256);
        for m in self.ac.find_iter(&bytes[from..]) {
            let at = from + m.start();
            if at > scan.chunk.emit_to + 256 {
                break;
            }
            let rule = PATTERNS[m.pattern().as_usize()].1;
            if let Some((s, mut e, subkind, conf)) = check(bytes, at, from + m.end(), rule) {
                // A key block running past what is visible ends at its last whole line.
                if subkind == "private_key" && scan.open_right(e) {
                    match memchr::memrchr(b'\n', &bytes[s..e]) {
                        Some(nl) if nl > 0 => e = s + nl - usize::from(bytes[s + nl - 1] == b'\r'),
                        _ => continue,
                    }
                }
                if !scan.in_emit_range(s) || scan.open_left(s) || scan.open_right(e) {
                    continue;
                }
                let reasons = vec![Reason::Validator(subkind)];
                let mut d = scan.detection(Kind::Secret, s, e, conf, reasons);
                d.subkind = Some(subkind);
                out.push(d);
            }
        }
    }
}

/// Checks one rule at a prefilter hit `bytes[at..after]`: the secret's span, subkind and
/// confidence.
fn check(
    bytes: &[u8],
    at: usize,
    after: usize,
    rule: Rule,
) -> Option<(usize, usize, &'static str, f32)> {
    let left_ok = at == 0 || !alnum(bytes[at - 1]);
    let ends_clean = |e: usize| e >= bytes.len() || !url_safe(bytes[e]);
    match rule {
        Rule::AwsAccessKeyId => {
            let n = run(bytes, after, 17, b32);
            let e = after + 16;
            (left_ok && n == 16 && ends_clean(e)).then(|| {
                // AWS's documentation example key is not a leak.
                let example = bytes[at..e].ends_with(b"EXAMPLE");
                (at, e, "aws_access_key_id", if example { 0.3 } else { 0.9 })
            })
        }
        Rule::AwsSecretKey => {
            // key, optional quote, `=` or `:`, optional spaces and quote, 40 characters.
            let mut i = after;
            while i < bytes.len()
                && i - after < 8
                && matches!(bytes[i], b'"' | b'\'' | b' ' | b'\t' | b'=' | b':')
            {
                i += 1;
            }
            let n = run(bytes, i, 41, |c| c.is_ascii_alphanumeric() || c == b'/' || c == b'+');
            (n == 40 && i > after).then(|| {
                let example = bytes[i..i + 40].ends_with(b"EXAMPLEKEY");
                (i, i + 40, "aws_secret_access_key", if example { 0.3 } else { 0.9 })
            })
        }
        Rule::StripeSecret | Rule::StripeRestricted => {
            let n = run(bytes, after, 100, alnum);
            let e = after + n;
            let sub = if matches!(rule, Rule::StripeSecret) {
                "stripe_secret_key"
            } else {
                "stripe_restricted_key"
            };
            (left_ok && (24..=99).contains(&n) && ends_clean(e)).then_some((at, e, sub, 0.95))
        }
        Rule::CustodyShare => {
            // The share (index and 32 key bytes: 66 hex digits; longer for another key
            // size), the kit's 16-digit fingerprint, the 4-digit typo check.
            let hex = |c: u8| c.is_ascii_hexdigit();
            let n = run(bytes, after, 200, hex);
            let fp = after + n + 1;
            let ck = fp + 17;
            let shaped = (34..200).contains(&n)
                && bytes.get(after + n) == Some(&b'-')
                && run(bytes, fp, 17, hex) == 16
                && bytes.get(fp + 16) == Some(&b'-')
                && run(bytes, ck, 5, hex) == 4;
            (left_ok && shaped && ends_clean(ck + 4)).then_some((
                at,
                ck + 4,
                "custody_recovery_share",
                0.99,
            ))
        }
        Rule::GitHubToken => {
            let n = run(bytes, after, 37, alnum);
            (left_ok && n == 36 && ends_clean(after + 36)).then_some((
                at,
                after + 36,
                "github_token",
                0.95,
            ))
        }
        Rule::GitHubPat => {
            let n = run(bytes, after, 83, |c| alnum(c) || c == b'_');
            (left_ok && n == 82 && ends_clean(after + 82)).then_some((
                at,
                after + 82,
                "github_token",
                0.95,
            ))
        }
        Rule::SlackToken => {
            let n = run(bytes, after, 200, |c| alnum(c) || c == b'-');
            let dashes = bytes[after..after + n].iter().filter(|c| **c == b'-').count();
            (left_ok && n >= 20 && dashes >= 2).then_some((at, after + n, "slack_token", 0.9))
        }
        Rule::SlackWebhook => {
            let n = run(bytes, after, 120, |c| alnum(c) || c == b'/');
            (n >= 20 && bytes[after] == b'T').then_some((after, after + n, "slack_webhook", 0.9))
        }
        Rule::GoogleApiKey => {
            let n = run(bytes, after, 36, url_safe);
            (left_ok && n == 35).then_some((at, after + 35, "google_api_key", 0.9))
        }
        Rule::TwilioApiKey => {
            let line_end = memchr::memchr(b'\n', &bytes[after..bytes.len().min(after + 200)])
                .map_or(bytes.len().min(after + 200), |p| after + p);
            let window = &bytes[after..line_end];
            memchr::memmem::find_iter(window, b"SK").find_map(|p| {
                let s = after + p;
                let n = run(bytes, s + 2, 33, |c| c.is_ascii_hexdigit());
                let e = s + 34;
                let clean_left = s == 0 || !alnum(bytes[s - 1]);
                let mixed = n == 32 && bytes[s + 2..e].iter().any(u8::is_ascii_digit);
                (clean_left && mixed && ends_clean(e)).then_some((s, e, "twilio_api_key", 0.85))
            })
        }
        Rule::SendGrid => {
            let a = run(bytes, after, 23, url_safe);
            if !left_ok || a != 22 || bytes.get(after + 22) != Some(&b'.') {
                return None;
            }
            let b = run(bytes, after + 23, 44, url_safe);
            (b == 43).then_some((at, after + 23 + 43, "sendgrid_api_key", 0.95))
        }
        Rule::PrivateKey => {
            memchr::memchr(b'\n', &bytes[after..bytes.len().min(after + 80)])?;
            let (_, header) = line_at(bytes, at);
            if !private_key_boundary(header) {
                return None;
            }
            // The block runs over its body lines to the END line; a body cut short (by the
            // end of what is visible, or by other text) ends at its last body line.
            let mut end = at + header.len();
            let mut next = at + header.len();
            while next < bytes.len() && next - at < PEM_REACH {
                next += usize::from(bytes[next] == b'\r');
                next += usize::from(bytes.get(next) == Some(&b'\n'));
                let (line_end, line) = line_at(bytes, next);
                if private_key_boundary(line) && line.starts_with(b"-----END ") {
                    end = next + line.len();
                    break;
                }
                if !line.is_empty() && !pem_body_line(line) {
                    break;
                }
                // A blank line (after the legacy headers) continues the block.
                if !line.is_empty() {
                    end = next + line.len();
                }
                next = line_end;
            }
            Some((at, end, "private_key", 0.99))
        }
        Rule::PrivateKeyBody => {
            let (_, footer) = line_at(bytes, at);
            if !private_key_boundary(footer) || (at > 0 && bytes[at - 1] != b'\n') {
                return None;
            }
            // Back over the body lines to where they start; a BEGIN line there means the
            // BEGIN rule has the whole block.
            let (mut start, mut cursor, mut lines) = (at, at, 0);
            while cursor > 0 && at - cursor < PEM_REACH {
                let prev_end = cursor - 1; // the newline ending the previous line
                let prev_start = memchr::memrchr(b'\n', &bytes[..prev_end]).map_or(0, |n| n + 1);
                let line = &bytes[prev_start..prev_end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if private_key_boundary(line) && line.starts_with(b"-----BEGIN ") {
                    return None;
                }
                cursor = prev_start;
                if line.is_empty() {
                    continue; // between the legacy headers and the body
                }
                if !pem_body_line(line) {
                    break;
                }
                lines += 1;
                start = prev_start;
            }
            (lines > 0).then_some((start, at + footer.len(), "private_key", 0.95))
        }
    }
}

/// Values that are clearly placeholders, not passwords.
const PLACEHOLDERS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "xxx",
    "xxxx",
    "xxxxxx",
    "changeme",
    "example",
    "your_password",
    "yourpassword",
    "mypassword",
    "placeholder",
    "redacted",
    "hidden",
    "null",
    "none",
    "user",
    "username",
];

/// The password in `scheme://user:password@host`, given the positions of `://` and `@`
/// (found from the `@` by the email matcher, which sees every one of them).
pub(crate) fn url_password(scan: &Scan<'_>, scheme_sep: usize, at: usize) -> Option<Detection> {
    if !scan.enabled(Kind::Secret) {
        return None;
    }
    let bytes = scan.bytes();
    let scheme = bytes[..scheme_sep]
        .iter()
        .rev()
        .take(20)
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-'))
        .count();
    if scheme == 0 {
        return None;
    }
    let userinfo = &bytes[scheme_sep + 3..at];
    let colon = memchr::memchr(b':', userinfo)?;
    let (ps, pe) = (scheme_sep + 3 + colon + 1, at);
    let password = &bytes[ps..pe];
    let lower = String::from_utf8_lossy(password).to_ascii_lowercase();
    let templated = password.starts_with(b"$")
        || password.starts_with(b"{")
        || password.starts_with(b"<")
        || password.starts_with(b"%")
        || password.iter().all(|c| *c == b'*');
    if password.is_empty() || templated || PLACEHOLDERS.contains(&lower.as_str()) {
        return None;
    }
    if !scan.in_emit_range(ps) || scan.open_left(scheme_sep.saturating_sub(scheme)) {
        return None;
    }
    let mut d = scan.detection(Kind::Secret, ps, pe, 0.9, vec![Reason::Validator("url_password")]);
    d.subkind = Some("url_password");
    Some(d)
}

#[cfg(test)]
mod tests {
    use crate::{Chunk, Detector, DetectorConfig, Kind, Structure};

    fn secrets(text: &str) -> Vec<(String, &'static str)> {
        let det = Detector::new(DetectorConfig::default().with_kinds(&[Kind::Secret]));
        let mut out = Vec::new();
        det.detect(&Chunk::whole(text.as_bytes()), &Structure::Plain, &mut out);
        out.iter().map(|d| (d.value.expose().to_string(), d.subkind.unwrap())).collect()
    }

    /// Review item 11: a share of custody's own recovery kit is a secret; a truncated one,
    /// or the bare prefix in prose, is not.
    #[test]
    fn review_11_a_recovery_share_is_a_secret() {
        let share =
            format!("custody-share-1-01{}-{}-{}", "a3".repeat(32), "0f1e2d3c4b5a6978", "9c2e");
        let found = secrets(&format!("Share 1 of 3: {share}\n"));
        assert_eq!(found, vec![(share.clone(), "custody_recovery_share")]);
        assert!(secrets(&share[..share.len() - 5]).is_empty(), "no typo check: not a share");
        assert!(secrets("lines starting custody-share-1- are kit shares").is_empty());
    }

    #[test]
    fn true_examples() {
        let cases = [
            (
                "aws_access_key_id = AKIAZ7QW3RT5YU2IOP4A",
                "AKIAZ7QW3RT5YU2IOP4A",
                "aws_access_key_id",
            ),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzKEYabc",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzKEYabc",
                "aws_secret_access_key",
            ),
            (
                "STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "stripe_secret_key",
            ),
            (
                "key: rk_live_51H8abcdefghijklmnopqrstuv",
                "rk_live_51H8abcdefghijklmnopqrstuv",
                "stripe_restricted_key",
            ),
            (
                "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
                "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
                "github_token",
            ),
            (
                "SLACK=xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
                "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
                "slack_token",
            ),
            (
                "maps AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
                "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
                "google_api_key",
            ),
            (
                "TWILIO=SK0123456789abcdef0123456789abcdef",
                "SK0123456789abcdef0123456789abcdef",
                "twilio_api_key",
            ),
            (
                "SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq",
                "SG.abcdefghijklmnopqrstuv.ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq",
                "sendgrid_api_key",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
                "-----BEGIN RSA PRIVATE KEY-----",
                "private_key",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\n",
                "-----BEGIN OPENSSH PRIVATE KEY-----",
                "private_key",
            ),
            (
                // Review item 3: the whole block (header, body, END line), not the header.
                "key:\n-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDq1b0rT0eD9Qq3mC9k7y7p5m1JvYw2Y9d9s8r3m7aBc\n-----END PRIVATE KEY-----\nafter",
                "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIDq1b0rT0eD9Qq3mC9k7y7p5m1JvYw2Y9d9s8r3m7aBc\n-----END PRIVATE KEY-----",
                "private_key",
            ),
            (
                // The legacy encrypted format's headers are part of the block (RFC 1421).
                "-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\r\n\r\nMIIEowIBAAKCAQEA1b2c3\r\n-----END RSA PRIVATE KEY-----\r\n",
                "-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\r\n\r\nMIIEowIBAAKCAQEA1b2c3\r\n-----END RSA PRIVATE KEY-----",
                "private_key",
            ),
            (
                // A body left behind without its BEGIN line is still the key.
                "----****************\nMC4CAQAwBQYDK2VwBCIEIDq1b0rT0eD9Qq3mC9k7y7p5m1JvYw2Y9d9s8r3m7aBc\n-----END PRIVATE KEY-----\n",
                "MC4CAQAwBQYDK2VwBCIEIDq1b0rT0eD9Qq3mC9k7y7p5m1JvYw2Y9d9s8r3m7aBc\n-----END PRIVATE KEY-----",
                "private_key",
            ),
            (
                "DATABASE_URL=postgres://app:S3cr3tPass@db.internal:5432/shop",
                "S3cr3tPass",
                "url_password",
            ),
        ];
        for (text, value, sub) in cases {
            assert_eq!(secrets(text), vec![(value.to_string(), sub)], "{text}");
        }
    }

    #[test]
    fn false_examples() {
        for text in [
            "AKIAZ7QW3RT5YU2IOP4",   // one short
            "XAKIAZ7QW3RT5YU2IOP4A", // glued
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "sk_live_short",
            "ghp_tooshort",
            "ASKING for the DESK",
            "SKU 0123456789abcdef0123456789abcdef", // not SK+hex directly
            "-----BEGIN PUBLIC KEY-----\n",
            "-----BEGIN CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n",
            "-----END PRIVATE KEY-----\n", // an END line alone holds no key
            "postgres://app:${DB_PASSWORD}@db/shop",
            "postgres://app:password@db/shop",
            "https://example.com/path:with@colon",
            "https://user@example.com/",
            "see http://example.com:8080/",
        ] {
            assert!(secrets(text).is_empty(), "{text}: {:?}", secrets(text));
        }
    }
}
