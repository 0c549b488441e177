//! TLS to PostgreSQL with rustls (ring), following libpq's `sslmode`:
//!
//! | `sslmode` | Coffer |
//! |---|---|
//! | `disable` | plain text |
//! | `prefer` (libpq's default) | TLS when the server offers it, else plain text; certificate not checked |
//! | `require` | TLS; certificate not checked, unless `sslrootcert` is given (then as `verify-ca`, as libpq) |
//! | `verify-ca` | TLS; the chain must lead to `sslrootcert` (or, without it, to a public CA: Mozilla's roots) |
//! | `verify-full` | as `verify-ca`, and the certificate must name the host |
//!
//! `sslrootcert` (a PEM file) is taken out of the connection string before `tokio-postgres`
//! parses it (it does not know the key), and `verify-*` is handed to it as `require`: the checks
//! are ours. Client certificates (`sslcert`, `sslkey`) are refused rather than ignored.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Socket;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// `disable`.
    Disable,
    /// `prefer`.
    Prefer,
    /// `require`.
    Require,
    /// `verify-ca`.
    VerifyCa,
    /// `verify-full`.
    VerifyFull,
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The mode (libpq's default: `prefer`).
    pub mode: SslMode,
    /// `sslrootcert`: PEM file of the CA(s) to trust.
    pub root_cert: Option<String>,
}

/// Splits `url` (a `postgres://` URL or a keyword DSN) into what `tokio-postgres` parses and the
/// TLS options Coffer applies itself.
pub fn split_url(url: &str) -> Result<(String, TlsOptions), String> {
    let mut mode = SslMode::Prefer;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<Option<String>, String> {
        match key {
            "sslmode" => {
                mode = match value {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => return Err(format!("invalid sslmode {other:?}")),
                };
                Ok(None)
            }
            "sslrootcert" => {
                root_cert = Some(value.to_owned());
                Ok(None)
            }
            "sslcert" | "sslkey" | "sslpassword" => Err(format!(
                "{key} is not supported: Coffer does not present client certificates to PostgreSQL"
            )),
            _ => Ok(Some(format!("{key}={value}"))),
        }
    };
    let rest = if let Some((base, query)) = url
        .split_once('?')
        .filter(|_| url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            if take(k, &v)?.is_some() {
                kept.push(pair.to_owned());
            }
        }
        if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else if url.contains("://") {
        url.to_owned()
    } else {
        // Keyword DSN, read as libpq reads it (spaces around `=`, quoted values); what is not
        // TLS goes on to tokio-postgres quoted again.
        let mut kept = Vec::new();
        for (k, v) in keyword_pairs(url)? {
            if take(&k, &v)?.is_some() {
                kept.push(format!(
                    "{k}='{}'",
                    v.replace('\\', "\\\\").replace('\'', "\\'")
                ));
            }
        }
        kept.join(" ")
    };
    Ok((rest, TlsOptions { mode, root_cert }))
}

/// The `key = value` pairs of a libpq keyword DSN: whitespace around `=` allowed, a value
/// either single-quoted (`\'` and `\\` escaped) or up to the next whitespace. A word without
/// `=` is an error (libpq's `missing "=" after ...`), so nothing can slip past the TLS keys.
fn keyword_pairs(dsn: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("missing \"=\" after {key:?} in connection string"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("unterminated quoted string in connection string".into()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

impl TlsOptions {
    /// The mode `tokio-postgres` negotiates with (ours verifies).
    pub fn driver_mode(&self) -> tokio_postgres::config::SslMode {
        match self.mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        }
    }

    /// The connector for these options.
    pub fn connector(&self) -> Result<RustlsConnector, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match &self.root_cert {
            Some(path) => {
                use rustls::pki_types::pem::PemObject;
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("sslrootcert {path}: no certificate found"));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| format!("sslrootcert {path}: {e}"))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| format!("TLS roots: {e}"))?;
        let check = match (self.mode, self.root_cert.is_some()) {
            (SslMode::VerifyFull, _) => Check::Full,
            (SslMode::VerifyCa, _) | (SslMode::Require, true) => Check::Chain,
            _ => Check::Nothing,
        };
        let verifier = Arc::new(Verifier {
            webpki,
            check,
            algorithms: provider.signature_verification_algorithms,
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(RustlsConnector(Arc::new(config)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// `prefer`, `require` without a root: libpq does not check the certificate either.
    Nothing,
    /// `verify-ca`: the chain, not the name.
    Chain,
    /// `verify-full`.
    Full,
}

#[derive(Debug)]
struct Verifier {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    check: Check,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.check == Check::Nothing {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            // The name is checked after the chain: this error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.check == Check::Chain => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `tokio-postgres`' TLS hook over rustls.
#[derive(Clone)]
pub struct RustlsConnector(Arc<rustls::ClientConfig>);

impl std::fmt::Debug for RustlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RustlsConnector")
    }
}

impl MakeTlsConnect<Socket> for RustlsConnector {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        let name = ServerName::try_from(domain.to_owned())?;
        Ok(RustlsConnect {
            name,
            connector: tokio_rustls::TlsConnector::from(self.0.clone()),
        })
    }
}

/// One TLS handshake.
pub struct RustlsConnect {
    name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// A TLS connection to PostgreSQL.
pub struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(mode: SslMode, root: Option<&str>) -> TlsOptions {
        TlsOptions {
            mode,
            root_cert: root.map(str::to_owned),
        }
    }

    #[test]
    fn tls_keys_are_taken_out_of_the_url() {
        assert_eq!(
            split_url("postgres://u:p@h/db"),
            Ok(("postgres://u:p@h/db".into(), opts(SslMode::Prefer, None)))
        );
        assert_eq!(
            split_url(
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x"
            ),
            Ok((
                "postgres://u@h/db?application_name=x".into(),
                opts(SslMode::VerifyFull, Some("/etc/ca.pem"))
            ))
        );
        assert_eq!(
            split_url("host=h user=u sslmode=require dbname=d"),
            Ok((
                "host='h' user='u' dbname='d'".into(),
                opts(SslMode::Require, None)
            ))
        );
        // libpq's keyword syntax: spaces around `=`, quoted values (with spaces, escapes). A
        // spaced `sslmode = require` used to slip past and end as opportunistic TLS.
        assert_eq!(
            split_url("host = h  sslmode =require password='a  b\\'c' dbname= d"),
            Ok((
                r"host='h' password='a  b\'c' dbname='d'".into(),
                opts(SslMode::Require, None)
            ))
        );
        assert_eq!(
            split_url("host=h sslmode = 'verify-full' sslrootcert='/etc/c a.pem'"),
            Ok((
                "host='h'".into(),
                opts(SslMode::VerifyFull, Some("/etc/c a.pem"))
            ))
        );
        // tokio-postgres reads the quoted words back as they were meant.
        let (rest, _) = split_url("host = h  password='a  b\\'c\\\\' dbname= d").unwrap();
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"a  b'c\\"[..]));
        assert_eq!(config.get_dbname(), Some("d"));
        assert!(split_url("host=h sslmode").is_err());
        assert!(split_url("host=h password='open").is_err());
        assert!(split_url("postgres://h/db?sslmode=bogus").is_err());
        let err = split_url("postgres://u:pw@h/db?sslcert=/c.pem").unwrap_err();
        assert!(err.starts_with("sslcert is not supported"), "{err}");
        assert!(!err.contains("pw"));
    }

    #[test]
    fn connectors_build_for_every_mode() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert!(opts(mode, None).connector().is_ok(), "{mode:?}");
        }
        assert!(
            opts(SslMode::VerifyFull, Some("/nonexistent.pem"))
                .connector()
                .is_err()
        );
    }
}
