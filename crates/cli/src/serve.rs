//! `custody serve` runs the vault's HTTP API; `custody unseal` opens a running server that
//! started sealed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::{EXIT_OK, client, init};

/// Where the server listens unless told otherwise (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8731";
/// The server's address for the client commands.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8731";

#[derive(Args)]
pub struct ServeArgs {
    /// Address and port to listen on. Anything but loopback exposes customer data to the
    /// network: put TLS in front of it.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Unseal at start with the passphrase in FILE (or set CUSTODY_PASSPHRASE). Without
    /// either, the server starts sealed and waits for `custody unseal`.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Connections served at once; more wait until one is free.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Seconds a client has to send a request's headers (and an idle connection to start its
    /// next request) before it is closed; also the time for a TLS handshake.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
}

pub fn serve(data_dir: &Path, args: &ServeArgs) -> Result<u8> {
    let passphrase =
        if args.passphrase_file.is_some() || std::env::var_os("CUSTODY_PASSPHRASE").is_some() {
            Some(init::read_passphrase(args.passphrase_file.as_deref())?)
        } else {
            None
        };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(custody_server::Tls { cert: cert.clone(), key: key.clone() })
        }
        _ => None,
    };
    if !args.listen.ip().is_loopback() && tls.is_none() {
        eprintln!(
            "WARNING: listening on {} without TLS. API keys and customer data will cross the network in clear text.\n\
             WARNING: give --tls-cert and --tls-key, or listen on 127.0.0.1.",
            args.listen
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    custody_server::run(
        data_dir,
        args.listen,
        passphrase.as_deref(),
        tls.as_ref(),
        custody_server::Limits {
            max_connections: args.max_connections as usize,
            header_timeout: std::time::Duration::from_secs(args.header_timeout),
            handshake_timeout: std::time::Duration::from_secs(args.header_timeout),
            ..custody_server::Limits::default()
        },
        |addr, ready| {
            println!("custody is serving the vault in {} on {scheme}://{addr}", data_dir.display());
            if ready {
                println!("Unsealed: ready for requests. Stop with Ctrl-C.");
            } else {
                println!("Sealed: data calls answer 503 until you run `custody unseal`.");
            }
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("the server stopped")?;
    Ok(EXIT_OK)
}

#[derive(Args)]
pub struct UnsealArgs {
    /// The server's address.
    #[arg(long, env = "CUSTODY_URL", default_value = DEFAULT_URL)]
    url: String,
    /// Read the passphrase from FILE (or set CUSTODY_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Unseal with two shares of the recovery kit, read from standard input, one per line.
    #[arg(long, conflicts_with = "passphrase_file")]
    shares: bool,
    #[command(flatten)]
    tls: client::Tls,
}

pub fn unseal(args: &UnsealArgs) -> Result<u8> {
    let body = if args.shares {
        serde_json::json!({ "shares": init::read_shares()? })
    } else {
        serde_json::json!({ "passphrase": init::read_passphrase(args.passphrase_file.as_deref())? })
    };
    client::request(&args.url, &args.tls, "POST", "/v1/sys/unseal", None, None, Some(&body))?;
    println!("Unsealed: the server is ready.");
    Ok(EXIT_OK)
}
