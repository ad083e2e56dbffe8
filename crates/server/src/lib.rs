//! custody-server: the vault's HTTP API.
//!
//! JSON over HTTP, `Authorization: Bearer <API key>`, the purpose in `X-Custody-Purpose`.
//! The server starts **sealed** (every data call answers 503) unless it is given the
//! passphrase; `POST /v1/sys/unseal` (or `custody unseal`) opens it. Every call that
//! touches customer data is recorded in the ledger before it happens, and fails if the
//! record cannot be made durable (fail closed).
//!
//! Every handler goes through custody-vault's `Service` (the one audited service).
//! Concurrency: handlers run on blocking threads; reads use the vault pool's readers;
//! writes go to its one writer thread, which commits whatever is queued in one transaction
//! (group commit), each write its own all-or-nothing step, and answers only after the
//! commit. Ledger events from concurrent requests share the ledger's group commits too.
//!
//! The routes are in [`api`]; the document `/v1/openapi.json` describes them.

pub mod api;
mod error;
mod listen;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use api::{OPENAPI, ROUTES, router};
pub use error::ApiError;
pub use listen::Limits;
pub use state::{App, Secret};

/// Serves `app` over plain HTTP on `listener`, within the default [`Limits`], until
/// `shutdown` completes. The caller then closes the app ([`App::close`]) so the writes
/// already queued finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listen::accept_loop(listener, None, api::router(app), Limits::default(), shutdown).await
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called (inside
/// the runtime), not when the future is first polled: a SIGTERM that arrives as soon as the
/// server says it is ready still stops it gracefully.
fn stop_signal() -> impl Future<Output = ()> + Send + 'static {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(term) => {},
        }
    }
}

/// Keeps the unsealed keys out of core dumps and away from other processes of the same
/// account (review item 20): no core file (`RLIMIT_CORE` 0) and not dumpable, which also
/// stops `ptrace` and reading `/proc/PID/mem` by anyone but root. Warns, and goes on, where
/// the system refuses.
fn harden_process() {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
    if let Err(e) = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) }) {
        eprintln!("WARNING: cannot turn off core dumps ({e}): a crash could write keys to disk");
    }
    if let Err(e) = set_dumpable_behavior(DumpableBehavior::NotDumpable) {
        eprintln!("WARNING: cannot make the server non-dumpable ({e})");
    }
}

/// A certificate chain and private key (PEM files) to serve HTTPS with.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The certificate chain (PEM).
    pub cert: PathBuf,
    /// The private key (PEM).
    pub key: PathBuf,
}

/// Runs the server on `addr` for the data directory until Ctrl-C or SIGTERM, over HTTPS when
/// `tls` is given, within `limits`. With a passphrase it unseals at start; otherwise it
/// waits sealed. `ready` is called with the address once it listens.
pub fn run(
    data_dir: &Path,
    addr: SocketAddr,
    passphrase: Option<&str>,
    tls: Option<&Tls>,
    limits: Limits,
    ready: impl FnOnce(SocketAddr, bool),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    harden_process();
    // Before anything is unsealed: a bad certificate is a clear error, not a half start.
    let acceptor = tls
        .map(|tls| {
            listen::tls_acceptor(&tls.cert, &tls.key).map_err(|e| {
                std::io::Error::other(format!(
                    "cannot use the TLS certificate '{}' and key '{}': {e}",
                    tls.cert.display(),
                    tls.key.display()
                ))
            })
        })
        .transpose()?;
    let app = Arc::new(App::open(data_dir)?);
    if let Some(p) = passphrase {
        app.unseal(&Secret::Passphrase(p), None)?;
    }
    // Retention: once an hour while unsealed (and soon after unsealing).
    app.schedule_retention()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("custody-http")
        .max_blocking_threads(64)
        .build()?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let stop = stop_signal();
        ready(listener.local_addr()?, app.unsealed().is_some());
        listen::accept_loop(listener, acceptor, api::router(Arc::clone(&app)), limits, stop).await
    });
    // Whatever ended the serving, the writes already queued finish first.
    app.close();
    served?;
    Ok(())
}
