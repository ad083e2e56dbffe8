//! The command line as a client of a running `custody serve`, for the IT helper's scripts:
//! `custody records get|search|export|erase` with an API key. Values come back as the key's
//! role and the stated purpose allow: masked unless `--purpose` allows plain.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;

use crate::serve::DEFAULT_URL;

/// Where the server is and which key to use.
#[derive(Args, Clone)]
pub struct Remote {
    /// The server's address.
    #[arg(long, env = "CUSTODY_URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Read the API key from FILE (its first line). Or set CUSTODY_API_KEY.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    #[command(flatten)]
    pub tls: Tls,
}

/// How the client checks an `https://` server.
#[derive(Args, Clone, Default)]
pub struct Tls {
    /// For an `https://` server: trust the certificate authority (or the self-signed
    /// certificate) in this PEM FILE instead of the public web's authorities. Or set
    /// CUSTODY_CA_CERT.
    #[arg(long, value_name = "FILE", env = "CUSTODY_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

impl Remote {
    /// Whether an API key was given (file or environment).
    pub fn has_key(&self) -> bool {
        self.key_file.is_some() || std::env::var_os("CUSTODY_API_KEY").is_some()
    }

    fn key(&self) -> Result<String> {
        let raw = match &self.key_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read '{}'", path.display()))?,
            None => std::env::var("CUSTODY_API_KEY").map_err(|_| {
                anyhow::anyhow!("no API key given: use --key-file FILE or set CUSTODY_API_KEY")
            })?,
        };
        Ok(raw.lines().next().unwrap_or("").trim().to_string())
    }

    /// One call with the API key; the JSON answer, or an error with the server's message.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        purpose: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value> {
        request(&self.url, &self.tls, method, path, Some(&self.key()?), purpose, body)
    }
}

/// The HTTP agent for `base`: over `https://` it checks the server's certificate against
/// the public web's authorities, or only against `--ca-cert`'s. A key or a passphrase is
/// never sent in the clear to a server that is not on this machine.
fn agent(base: &str, tls: &Tls) -> Result<ureq::Agent> {
    let config = ureq::Agent::config_builder().http_status_as_error(false);
    if !base.starts_with("https://") {
        let Some(rest) = base.strip_prefix("http://") else {
            bail!("the server address must start with https:// or http://, not '{base}'");
        };
        if !is_loopback(rest) {
            bail!(
                "refusing to send an API key or passphrase unencrypted to {base}: \
                 use https:// (start the server with --tls-cert and --tls-key), \
                 or reach it on 127.0.0.1"
            );
        }
        return Ok(config.build().new_agent());
    }
    let mut settings = ureq::tls::TlsConfig::builder();
    if let Some(path) = &tls.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read the CA certificate '{}'", path.display()))?;
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("'{}' is not a PEM certificate file", path.display()))?;
        if certs.is_empty() {
            bail!(
                "'{}' holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            );
        }
        settings = settings.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    Ok(config.tls_config(settings.build()).build().new_agent())
}

/// The error for a call that got no answer: a certificate that could not be checked says
/// what to do about it; anything else says the server may not be running.
fn refused(base: &str, e: ureq::Error) -> anyhow::Error {
    let said = e.to_string();
    if said.contains("CaUsedAsEndEntity") {
        anyhow::anyhow!(
            "the certificate of {base} is marked as a certificate authority, which a server's \
             own certificate must not be: make it with -addext basicConstraints=critical,CA:FALSE \
             (docs/server.md shows the command)"
        )
    } else if matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_))
        || said.contains("certificate")
    {
        anyhow::anyhow!(
            "cannot check the certificate of {base}: {said} (for a self-signed certificate, \
             give it with --ca-cert FILE)"
        )
    } else {
        anyhow::Error::new(e)
            .context(format!("cannot reach the server at {base} (is `custody serve` running?)"))
    }
}

/// Whether the host of `authority[/path]` is this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(rest: &str) -> bool {
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One call to the server at `base`; the JSON answer, or an error with the server's
/// message and the HTTP status.
pub fn request(
    base: &str,
    tls: &Tls,
    method: &str,
    path: &str,
    key: Option<&str>,
    purpose: Option<&str>,
    body: Option<&Value>,
) -> Result<Value> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let agent = agent(base, tls)?;
    let mut request = ureq::http::Request::builder().method(method).uri(&url);
    if let Some(k) = key {
        request = request.header("Authorization", format!("Bearer {k}"));
    }
    if let Some(p) = purpose {
        request = request.header("X-Custody-Purpose", p);
    }
    let sent = match body {
        Some(b) => {
            agent.run(request.header("Content-Type", "application/json").body(b.to_string())?)
        }
        None => agent.run(request.body(())?),
    };
    let mut response = sent.map_err(|e| refused(base, e))?;
    let status = response.status().as_u16();
    let answer: Value = response.body_mut().read_json().unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        let message = answer["error"]["message"].as_str().unwrap_or("the server refused");
        bail!("{message} (HTTP {status})");
    }
    Ok(answer)
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Prints a record answer (`{"id","fields":{name:{"value","mode"}}}`) as a table.
pub fn print_record(record: &Value) {
    let Some(fields) = record["fields"].as_object() else { return };
    let width = fields.keys().map(String::len).max().unwrap_or(0);
    for (name, field) in fields {
        let value = field["value"].as_str().unwrap_or("(not allowed)");
        let mode = field["mode"].as_str().unwrap_or("");
        println!("{name:width$}  {value}  [{mode}]");
    }
}

/// Writes `text` to a new owner-only file, or to standard output for `-`.
pub fn write_out(out: &Path, text: &str) -> Result<()> {
    if out == Path::new("-") {
        println!("{text}");
        return Ok(());
    }
    crate::init::write_private(out, text.as_bytes())
}
