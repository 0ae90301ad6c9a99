//! HTTPS without a proxy: the PEM certificate chain and key of `[gateway]` read into a
//! rustls server configuration (ring, as the rest of the tool; no OpenSSL). `check`
//! calls the same function, so what it says OK to is what `serve` will load.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// The acceptor for `files`; errors name the file and what is wrong with it.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    let cert_pem = std::fs::read(&files.cert)
        .with_context(|| format!("reading gateway.tls_cert {}", files.cert.display()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("reading the PEM certificates of {}", files.cert.display()))?;
    if certs.is_empty() {
        bail!(
            "gateway.tls_cert {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            files.cert.display()
        );
    }
    let key_pem = std::fs::read(&files.key)
        .with_context(|| format!("reading gateway.tls_key {}", files.key.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| {
            format!(
                "gateway.tls_key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
                files.key.display()
            )
        })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing the TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {}",
                files.key.display(),
                files.cert.display()
            )
        })?;
    // Pod's requests speak HTTP/1.1; so does the server.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path, cert: &str, key: &str) -> TlsFiles {
        let f = TlsFiles {
            cert: dir.join("c.pem"),
            key: dir.join("k.pem"),
        };
        std::fs::write(&f.cert, cert).expect("write");
        std::fs::write(&f.key, key).expect("write");
        f
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    }

    fn err(files: &TlsFiles) -> String {
        match acceptor(files) {
            Ok(_) => panic!("{files:?} should be refused"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_certificate_and_its_key_load_and_another_key_is_refused() {
        let good = TlsFiles {
            cert: fixture("gateway.pem"),
            key: fixture("gateway.key"),
        };
        acceptor(&good).expect("the fixture loads");
        let bad = TlsFiles {
            key: fixture("other.key"),
            ..good
        };
        let e = err(&bad);
        assert!(e.contains("does not fit"), "{e}");
    }

    #[test]
    fn unreadable_or_empty_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = TlsFiles {
            cert: dir.path().join("missing.pem"),
            key: dir.path().join("missing.key"),
        };
        let e = err(&f);
        assert!(
            e.contains("gateway.tls_cert") && e.contains("missing.pem"),
            "{e}"
        );
        let f = files(dir.path(), "not a certificate", "");
        let e = err(&f);
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
