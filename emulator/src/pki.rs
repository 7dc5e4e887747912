//! Test PKI made at run time (never committed keys): a CA and an
//! end-entity certificate fit to sign C2PA claims (C2PA 2.2 §14.5
//! "Certificate profile": digitalSignature key usage, emailProtection
//! extended key usage, not a CA), ECDSA P-256 (ES256). The emulator signs
//! its GPT Image and Nano Banana Pro outputs with one, as the real
//! services do; adloc's tests make their own signer with another.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA and a signer certificate issued by it, as PEM.
#[derive(Clone)]
pub struct Pki {
    /// The CA certificate: the trust anchor.
    pub ca_pem: String,
    /// The signer certificate followed by the CA (the chain a signer sends).
    pub chain_pem: String,
    /// The signer's private key (PKCS#8).
    pub key_pem: String,
}

/// What to get wrong in the signer certificate (for tests of the checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flaw {
    /// A good certificate.
    #[default]
    None,
    /// Its validity ended in 2021.
    Expired,
    /// No extended key usage a claim signer may use (serverAuth only).
    NoSigningUsage,
}

/// A self-signed CA named `name` (2020–2099) and the issuer it signs with.
fn new_ca(name: &str) -> Result<(rcgen::Certificate, Issuer<'static, KeyPair>), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "adloc test PKI");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 1, 1);
    let cert = params.self_signed(&key)?;
    Ok((cert, Issuer::new(params, key)))
}

/// End-entity parameters for `name`: not a CA, digitalSignature only.
fn end_entity(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "adloc test PKI");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// Issue a fresh CA named `ca` and a signer `signer` under it.
pub fn issue(ca: &str, signer: &str, flaw: Flaw) -> Result<Pki, rcgen::Error> {
    let (ca_cert, issuer) = new_ca(ca)?;
    let key = KeyPair::generate()?;
    let mut params = end_entity(signer)?;
    params.extended_key_usages = match flaw {
        Flaw::NoSigningUsage => vec![ExtendedKeyUsagePurpose::ServerAuth],
        _ => vec![ExtendedKeyUsagePurpose::EmailProtection],
    };
    (params.not_before, params.not_after) = match flaw {
        Flaw::Expired => (
            rcgen::date_time_ymd(2020, 6, 1),
            rcgen::date_time_ymd(2021, 6, 1),
        ),
        _ => (
            rcgen::date_time_ymd(2020, 6, 1),
            rcgen::date_time_ymd(2098, 1, 1),
        ),
    };
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Pki {
        ca_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
        key_pem: key.serialize_pem(),
    })
}

/// A time-stamp authority's certificate and key, and its CA.
pub struct TsaPki {
    /// The TSA's signing key.
    pub key: KeyPair,
    /// The TSA certificate (DER).
    pub cert_der: Vec<u8>,
    /// The CA certificate (DER).
    pub ca_der: Vec<u8>,
    /// The CA certificate (PEM): the trust anchor.
    pub ca_pem: String,
}

/// Issue a fresh CA named `ca` and a TSA certificate `tsa` under it, with
/// the profile RFC 3161 §2.3 requires: `id-kp-timeStamping` as the only
/// extended key usage, in a critical extension (rcgen marks its own EKU
/// extension non-critical, so it is written by hand).
pub fn issue_tsa(ca: &str, tsa: &str) -> Result<TsaPki, rcgen::Error> {
    let (ca_cert, issuer) = new_ca(ca)?;
    let key = KeyPair::generate()?;
    let mut params = end_entity(tsa)?;
    // extKeyUsage (2.5.29.37) = SEQUENCE { id-kp-timeStamping 1.3.6.1.5.5.7.3.8 }.
    let eku = vec![
        0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
    ];
    let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 37], eku);
    ext.set_criticality(true);
    params.custom_extensions = vec![ext];
    params.not_before = rcgen::date_time_ymd(2020, 6, 1);
    params.not_after = rcgen::date_time_ymd(2098, 1, 1);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(TsaPki {
        key,
        cert_der: cert.der().to_vec(),
        ca_der: ca_cert.der().to_vec(),
        ca_pem: ca_cert.pem(),
    })
}
