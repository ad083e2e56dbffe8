//! PostgreSQL connections for every part of custody (the scanner's sources, the ledger's
//! and the vault's stores), over TLS: rustls (ring provider, as the server uses) under
//! tokio-postgres's connector traits, with libpq's `sslmode` and `sslrootcert` words, in a
//! `postgres://` address or a `key=value` list.
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | no | — |
//! | `prefer` | when the server offers it | no |
//! | `require` | yes | no (against passive eavesdropping only, as in libpq) |
//! | `verify-ca` | yes | chain to `sslrootcert` |
//! | `verify-full` | yes | chain to `sslrootcert`, and the host name |
//!
//! Without `sslmode`, a server on this machine (loopback, Unix socket) is `prefer` and any
//! other is `require`: customer data never crosses a network in the clear unless the
//! address says `sslmode=disable`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::config::{Host, SslMode};
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

/// The connection settings custody reads itself (tokio-postgres knows neither
/// `verify-ca`/`verify-full` nor `sslrootcert`), and the address without them.
pub struct TlsSettings {
    /// The address for tokio-postgres, without `sslmode` and `sslrootcert`.
    pub url: String,
    mode: Option<String>,
    root: Option<String>,
}

/// The address without its credentials: `Debug` never shows a password.
impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("url", &"<not shown: it may hold a password>")
            .field("mode", &self.mode)
            .field("root", &self.root)
            .finish()
    }
}

/// Splits custody's TLS settings off a `postgres://` address or a `key=value` list
/// (`host=… dbname=… sslmode=verify-full sslrootcert=…`).
pub fn settings(url: &str) -> TlsSettings {
    if !url.trim_start().to_ascii_lowercase().starts_with("postgres") {
        let (mut mode, mut root, mut kept) = (None, None, Vec::new());
        for pair in url.split_whitespace() {
            match pair.split_once('=') {
                Some(("sslmode", v)) => mode = Some(v.trim_matches('\'').to_string()),
                Some(("sslrootcert", v)) => root = Some(v.trim_matches('\'').to_string()),
                _ => kept.push(pair),
            }
        }
        return TlsSettings { url: kept.join(" "), mode, root };
    }
    // The query starts after the credentials (a password may hold `?` or `#`), which end
    // at the first `@`, as tokio-postgres reads them.
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let (base, query) = match url[after_credentials..].find('?') {
        Some(q) => (&url[..after_credentials + q], &url[after_credentials + q + 1..]),
        None => (url, ""),
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(percent_decode(v)),
            Some(("sslrootcert", v)) => root = Some(percent_decode(v)),
            _ => kept.push(pair),
        }
    }
    let mut url = base.to_string();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    TlsSettings { url, mode, root }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether every host of the address is on this machine (`hostaddr` included: it is
/// where the connection really goes).
fn local_only(config: &postgres::Config) -> bool {
    config.get_hostaddrs().iter().all(std::net::IpAddr::is_loopback)
        && config.get_hosts().iter().all(|h| match h {
            Host::Tcp(name) => {
                name == "localhost"
                    || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            Host::Unix(_) => true,
        })
}

/// Connects to the server an address names, with TLS as its `sslmode` asks (and, without
/// one, `require` off this machine). Errors are sentences for the user: never the address
/// (it may hold a password), nor anything the server sent.
pub fn connect(address: &str) -> Result<postgres::Client, String> {
    let tls = settings(address);
    let mut config: postgres::Config =
        tls.url.parse().map_err(|_| "not a valid PostgreSQL address".to_string())?;
    let connector = connector(&tls, &mut config)?;
    config.connect(connector).map_err(|e| {
        if let Some(words) = failure(&e) {
            words.to_string()
        } else if let Some(db) = e.as_db_error() {
            format!("PostgreSQL said {} ({})", db.code().code(), db.severity())
        } else {
            "could not connect to PostgreSQL (is it running, and is the address right?)".into()
        }
    })
}

/// Applies the settings to `config` and returns the connector for them. Errors are
/// sentences for the user (they never hold the address, which may hold a password).
pub fn connector(
    settings: &TlsSettings,
    config: &mut postgres::Config,
) -> Result<Connector, String> {
    let mode = match settings.mode.as_deref() {
        None if local_only(config) => "prefer",
        None => "require",
        Some(m) => m,
    };
    let (ssl_mode, check) = match mode {
        "disable" => (SslMode::Disable, Check::Nothing),
        "allow" | "prefer" => (SslMode::Prefer, Check::Nothing),
        "require" if settings.root.is_some() => (SslMode::Require, Check::Chain),
        "require" => (SslMode::Require, Check::Nothing),
        "verify-ca" => (SslMode::Require, Check::Chain),
        "verify-full" => (SslMode::Require, Check::ChainAndName),
        _ => {
            return Err("sslmode must be disable, prefer, require, verify-ca or verify-full".into());
        }
    };
    config.ssl_mode(ssl_mode);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|_| "TLS could not be set up".to_string())?;
    let chain = if check == Check::Nothing {
        None
    } else {
        let Some(path) = &settings.root else {
            return Err(format!(
                "sslmode={mode} checks the server's certificate: add sslrootcert=FILE, the \
                 certificate of the authority that signed it (your provider publishes it)"
            ));
        };
        let mut roots = RootCertStore::empty();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(Iterator::collect)
            .map_err(|_| format!("sslrootcert: {path} is not a readable PEM certificate file"))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("sslrootcert: {path} holds no usable certificate"));
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|_| "sslrootcert: the certificates could not be used".to_string())?;
        Some(webpki)
    };
    let verifier = Arc::new(Verifier { provider, chain, names: check == Check::ChainAndName });
    let tls = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
    Ok(Connector(Arc::new(tls)))
}

/// Plain words for a failed TLS connection (`None`: not a TLS failure). Never the
/// address, and nothing the server sent.
pub fn failure(e: &postgres::Error) -> Option<&'static str> {
    let text = e.to_string();
    if text.contains("does not support TLS") {
        return Some(
            "the PostgreSQL server does not accept encrypted connections (add sslmode=disable \
             to the address only if the network to it is trusted)",
        );
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause.downcast_ref::<io::Error>()?.get_ref()?.downcast_ref::<rustls::Error>()
        });
        if let Some(tls) = tls {
            return Some(match tls {
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => {
                    "the PostgreSQL server's certificate is not for this host name \
                     (sslmode=verify-full): connect by the name on its certificate"
                }
                rustls::Error::InvalidCertificate(
                    CertificateError::Expired | CertificateError::ExpiredContext { .. },
                ) => "the PostgreSQL server's certificate has expired",
                rustls::Error::InvalidCertificate(_) => {
                    "the PostgreSQL server's certificate is not signed by the authority in \
                     sslrootcert"
                }
                _ => "the encrypted connection to PostgreSQL failed",
            });
        }
        source = cause.source();
    }
    text.contains("TLS").then_some("the encrypted connection to PostgreSQL failed")
}

/// What `sslmode` asks of the server's certificate. The handshake is always checked to
/// be signed by the certificate's key; the certificate itself is accepted as it is
/// (`prefer`, `require`: libpq's meaning), or checked against `sslrootcert` (`chain`),
/// where a certificate for another host name passes unless `names` (`verify-ca` vs
/// `verify-full`).
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    names: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// tokio-postgres's TLS connector, one per connection.
#[derive(Clone)]
pub struct Connector(Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    /// Called for every connection, TLS or not (a Unix socket has no name): a bad name
    /// only matters once a handshake is attempted.
    fn make_tls_connect(&mut self, domain: &str) -> io::Result<Connect> {
        Ok(Connect { config: self.0.clone(), name: ServerName::try_from(domain.to_string()).ok() })
    }
}

/// One handshake.
pub struct Connect {
    config: Arc<ClientConfig>,
    name: Option<ServerName<'static>>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "no host name to check the certificate of",
                )
            })?;
            let tls = tokio_rustls::TlsConnector::from(self.config).connect(name, stream).await?;
            Ok(Stream(tls))
        })
    }
}

/// An encrypted connection to the server.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> TlsStream for Stream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_words_are_taken_off_the_address() {
        let s = settings(
            "postgres://u:p@db.example.com/shop?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        );
        assert_eq!(s.url, "postgres://u:p@db.example.com/shop?application_name=x");
        assert_eq!(s.mode.as_deref(), Some("verify-full"));
        assert_eq!(s.root.as_deref(), Some("/tmp/ca.pem"));
        assert!(!format!("{s:?}").contains("u:p@"), "credentials in Debug: {s:?}");
        let kv = settings(
            "host=127.0.0.1 user=postgres password=p sslmode=verify-full sslrootcert=/ca.pem",
        );
        assert_eq!(kv.url, "host=127.0.0.1 user=postgres password=p");
        assert_eq!(
            (kv.mode.as_deref(), kv.root.as_deref()),
            (Some("verify-full"), Some("/ca.pem"))
        );
        let plain = settings("postgres://h/db");
        assert_eq!((plain.url.as_str(), plain.mode, plain.root), ("postgres://h/db", None, None));
        // A password may hold `?` and `#`: the query starts after the credentials.
        let odd = settings("postgres://u:p?w#d@h/db?sslmode=verify%2Dfull");
        assert_eq!(odd.url, "postgres://u:p?w#d@h/db");
        assert_eq!(odd.mode.as_deref(), Some("verify-full"));
        // An `@` in the query is not the end of the credentials.
        let at = settings("postgres://u:p@h/db?sslmode=disable&application_name=ops@corp");
        assert_eq!(at.url, "postgres://u:p@h/db?application_name=ops@corp");
        assert_eq!(at.mode.as_deref(), Some("disable"));
    }

    #[test]
    fn a_remote_server_is_encrypted_unless_the_address_says_otherwise() {
        let mode = |url: &str| {
            let s = settings(url);
            let mut config: postgres::Config = s.url.parse().unwrap();
            connector(&s, &mut config).map(|_| config.get_ssl_mode())
        };
        assert_eq!(mode("postgres://127.0.0.1/db"), Ok(SslMode::Prefer));
        assert_eq!(mode("postgres://localhost/db"), Ok(SslMode::Prefer));
        assert_eq!(mode("postgres://db.example.com/db"), Ok(SslMode::Require));
        assert_eq!(mode("postgres://10.0.0.5/db"), Ok(SslMode::Require));
        assert_eq!(mode("postgres://[::1]/db"), Ok(SslMode::Prefer));
        // The name says localhost, the connection goes elsewhere.
        assert_eq!(mode("postgres://localhost/db?hostaddr=203.0.113.7"), Ok(SslMode::Require));
        assert_eq!(mode("postgres://localhost,db.example.com/db"), Ok(SslMode::Require));
        assert_eq!(mode("postgres://%2Frun%2Fpostgresql/db"), Ok(SslMode::Prefer));
        assert_eq!(mode("postgres://db.example.com/db?sslmode=disable"), Ok(SslMode::Disable));
        assert!(mode("postgres://h/db?sslmode=verify-full").unwrap_err().contains("sslrootcert"));
        assert!(mode("postgres://h/db?sslmode=bogus").unwrap_err().contains("verify-full"));
        let missing = mode("postgres://h/db?sslmode=verify-ca&sslrootcert=/nonexistent.pem");
        assert!(missing.unwrap_err().contains("not a readable PEM"));
    }
}
