//! Certificates for the TLS tests, made here with rcgen: a test CA, server certificates it
//! signs (good, for another name, expired), a CA nobody trusts, and the token server's
//! self-signed signing certificate.
#![allow(dead_code)]

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber, date_time_ymd,
};
use std::path::{Path, PathBuf};

/// A certificate authority that signs server certificates.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

/// A certificate with its key, as PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Issued {
    /// Write `NAME.pem` and `NAME.key` into `dir`; their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        // The key first: a watcher that sees the new certificate then finds its key.
        std::fs::write(&key, &self.key_pem).unwrap();
        std::fs::write(&cert, &self.cert_pem).unwrap();
        (cert, key)
    }
}

impl Authority {
    pub fn new(name: &str) -> Authority {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let pem = params.self_signed(&key).unwrap().pem();
        Authority { issuer: Issuer::new(params, key), pem }
    }

    /// Write the CA certificate as `DIR/NAME`; its path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// A server certificate for `names` (DNS names or IP addresses) with `serial`.
    pub fn server(&self, names: &[&str], serial: u64) -> Issued {
        self.issue(names, serial, false)
    }

    /// The same, but valid only in 2020.
    pub fn expired_server(&self, names: &[&str], serial: u64) -> Issued {
        self.issue(names, serial, true)
    }

    fn issue(&self, names: &[&str], serial: u64, expired: bool) -> Issued {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "tagpolicy test server");
        params.serial_number = Some(SerialNumber::from(serial));
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2020, 12, 31);
        }
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().to_vec(),
        }
    }
}

/// A self-signed certificate and its key, for signing tokens: distribution trusts the
/// certificate (its `rootcertbundle`), tokens carry it in `x5c`, the gate gets its public key.
#[derive(Clone)]
pub struct Signer {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub public_key_pem: String,
}

impl Signer {
    pub fn new() -> Signer {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "tagpolicy test token signer");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let certificate = params.self_signed(&key).unwrap();
        Signer {
            cert_pem: certificate.pem(),
            cert_der: certificate.der().to_vec(),
            key_pem: key.serialize_pem(),
            public_key_pem: key.public_key_pem(),
        }
    }
}
