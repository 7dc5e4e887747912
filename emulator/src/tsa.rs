//! A test RFC 3161 time-stamp authority at `POST /tsa`, so adloc's
//! `ADLOC_C2PA_TSA_URL` is exercised end to end offline, the way a real
//! TSA (DigiCert's, for one) answers the C2PA SDK.
//!
//! The wire is RFC 3161 §3.4 ("Time-Stamp Protocol via HTTP"): the body is
//! a DER `TimeStampReq` sent as `application/timestamp-query`, the answer
//! a DER `TimeStampResp` as `application/timestamp-reply`. A granted
//! answer's token is a CMS `SignedData` (RFC 5652) over a `TSTInfo`
//! (RFC 3161 §2.4.2) with the request's message imprint and nonce, signed
//! with ECDSA P-256 / SHA-256 over signed attributes that carry the
//! content type, the message digest and the TSA certificate's ESS
//! `signingCertificateV2` (RFC 5816 §2.2.1). The TSA certificate carries
//! the one extended key usage RFC 3161 §2.3 allows, `id-kp-timeStamping`,
//! marked critical. Its CA is [`tsa_ca_pem`] (a trust anchor in tests).
//!
//! Strictness, as the RFC has it: a request that is not a `TimeStampReq`
//! v1, or whose imprint is not a SHA-256/384/512 digest of the right
//! length, is answered `rejection` with `badDataFormat` / `badAlg`
//! (§2.4.2), a request policy other than ours with `unacceptedPolicy`,
//! any extension with `unacceptedExtension`; a wrong content type is a 415.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use rasn::prelude::*;
use rasn::types::{Any, Integer, ObjectIdentifier, OctetString, SetOf};
use rasn_cms::tsp::{
    MessageImprint, PkiStatus, PkiStatusInfo, TimeStampReq, TimeStampResp, TstInfo,
};
use rasn_cms::{
    CertificateChoices, ContentInfo, EncapsulatedContentInfo, IssuerAndSerialNumber, SignedData,
    SignerIdentifier, SignerInfo,
};
use rasn_pkix::{AlgorithmIdentifier, Attribute, Certificate};
use rcgen::SigningKey;
use sha2::Digest;

/// The request content type (RFC 3161 §3.4).
pub const QUERY_CONTENT_TYPE: &str = "application/timestamp-query";
/// The answer content type (RFC 3161 §3.4).
pub const REPLY_CONTENT_TYPE: &str = "application/timestamp-reply";

/// The emulator TSA's policy (a private arc: this is a test authority).
const POLICY: [u32; 10] = [1, 3, 6, 1, 4, 1, 99999, 3161, 1, 1];

const SHA256: [u32; 9] = [2, 16, 840, 1, 101, 3, 4, 2, 1];
const SHA384: [u32; 9] = [2, 16, 840, 1, 101, 3, 4, 2, 2];
const SHA512: [u32; 9] = [2, 16, 840, 1, 101, 3, 4, 2, 3];
const ECDSA_WITH_SHA256: [u32; 7] = [1, 2, 840, 10045, 4, 3, 2];
/// id-signedData (RFC 5652 §5.1).
const SIGNED_DATA: [u32; 7] = [1, 2, 840, 113549, 1, 7, 2];
/// id-contentType, id-messageDigest (RFC 5652 §11.1, §11.2).
const CONTENT_TYPE_ATTR: [u32; 7] = [1, 2, 840, 113549, 1, 9, 3];
const MESSAGE_DIGEST_ATTR: [u32; 7] = [1, 2, 840, 113549, 1, 9, 4];
/// id-aa-signingCertificateV2 (RFC 5035 §3).
const SIGNING_CERTIFICATE_V2: [u32; 9] = [1, 2, 840, 113549, 1, 9, 16, 2, 47];
/// id-ct-TSTInfo (RFC 3161 §2.4.2).
const TST_INFO: [u32; 9] = [1, 2, 840, 113549, 1, 9, 16, 1, 4];

/// PKIFailureInfo bits (RFC 3161 §2.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// badAlg (0): an imprint algorithm the TSA does not take.
    BadAlg = 0,
    /// badDataFormat (5): not a TimeStampReq v1, or a malformed imprint.
    BadDataFormat = 5,
    /// unacceptedPolicy (15): a policy the TSA does not offer.
    UnacceptedPolicy = 15,
    /// unacceptedExtension (16): the TSA takes no request extensions.
    UnacceptedExtension = 16,
}

/// ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash,
/// issuerSerial OPTIONAL } (RFC 5035 §4): the default algorithm is
/// omitted, as DER requires.
#[derive(AsnType, Encode, Decode, Debug, Clone, PartialEq, Eq)]
struct EssCertIdV2 {
    cert_hash: OctetString,
}

/// SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2,
/// policies OPTIONAL } (RFC 5035 §3).
#[derive(AsnType, Encode, Decode, Debug, Clone, PartialEq, Eq)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// The TSA's certificate (and its CA) and key, made once per process.
struct Authority {
    key: rcgen::KeyPair,
    cert: Certificate,
    cert_der: Vec<u8>,
    ca: Certificate,
    ca_pem: String,
}

fn authority() -> Option<&'static Authority> {
    static TSA: OnceLock<Option<Authority>> = OnceLock::new();
    TSA.get_or_init(|| {
        let pki =
            crate::pki::issue_tsa("adloc-emulator test TSA CA", "adloc-emulator test TSA").ok()?;
        let cert: Certificate = rasn::der::decode(&pki.cert_der).ok()?;
        let ca: Certificate = rasn::der::decode(&pki.ca_der).ok()?;
        Some(Authority {
            key: pki.key,
            cert,
            cert_der: pki.cert_der,
            ca,
            ca_pem: pki.ca_pem,
        })
    })
    .as_ref()
}

/// The PEM CA certificate the emulator's TSA certificate chains to.
pub fn tsa_ca_pem() -> Option<String> {
    authority().map(|a| a.ca_pem.clone())
}

/// The constant arcs above are well-formed (first ≤ 2, second < 40).
fn oid(arcs: &[u32]) -> ObjectIdentifier {
    ObjectIdentifier::new_unchecked(arcs.to_vec().into())
}

fn is(oid: &ObjectIdentifier, arcs: &[u32]) -> bool {
    let have: &[u32] = oid;
    have == arcs
}

fn algorithm(arcs: &[u32]) -> AlgorithmIdentifier {
    AlgorithmIdentifier {
        algorithm: oid(arcs),
        parameters: None,
    }
}

fn der<T: Encode>(value: &T) -> Result<Vec<u8>, String> {
    rasn::der::encode(value).map_err(|e| e.to_string())
}

/// A `rejection` answer with one failure bit.
fn rejection(failure: Failure, why: &str) -> Vec<u8> {
    let mut bits = rasn::types::BitString::repeat(false, failure as usize + 1);
    bits.set(failure as usize, true);
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Rejection,
            status_string: Some(vec![Utf8String::from(why)]),
            fail_info: Some(bits),
        },
        time_stamp_token: None,
    };
    // A rejection of plain values always encodes.
    rasn::der::encode(&resp).unwrap_or_default()
}

/// What the TSA did with one request, for the emulator's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A token was issued.
    Granted,
    /// The request was refused with this failure.
    Rejected(Failure),
}

/// Answer a DER `TimeStampReq` with a DER `TimeStampResp`, time-stamped
/// `now_seconds` (Unix seconds).
pub fn answer(request: &[u8], now_seconds: i64) -> (Vec<u8>, Answer) {
    let req: TimeStampReq = match rasn::der::decode(request) {
        Ok(r) => r,
        Err(_) => {
            return (
                rejection(Failure::BadDataFormat, "not a DER TimeStampReq"),
                Answer::Rejected(Failure::BadDataFormat),
            );
        }
    };
    if req.version != 1 {
        return (
            rejection(Failure::BadDataFormat, "TimeStampReq version must be 1"),
            Answer::Rejected(Failure::BadDataFormat),
        );
    }
    let alg = &req.message_imprint.hash_algorithm.algorithm;
    let want = if is(alg, &SHA256) {
        32
    } else if is(alg, &SHA384) {
        48
    } else if is(alg, &SHA512) {
        64
    } else {
        return (
            rejection(
                Failure::BadAlg,
                "the message imprint must be SHA-256, -384 or -512",
            ),
            Answer::Rejected(Failure::BadAlg),
        );
    };
    if req.message_imprint.hashed_message.len() != want {
        return (
            rejection(
                Failure::BadDataFormat,
                "the hashed message does not match its algorithm",
            ),
            Answer::Rejected(Failure::BadDataFormat),
        );
    }
    if req.req_policy.as_ref().is_some_and(|p| !is(p, &POLICY)) {
        return (
            rejection(Failure::UnacceptedPolicy, "unknown TSA policy"),
            Answer::Rejected(Failure::UnacceptedPolicy),
        );
    }
    if req.extensions.is_some() {
        return (
            rejection(
                Failure::UnacceptedExtension,
                "no request extensions are supported",
            ),
            Answer::Rejected(Failure::UnacceptedExtension),
        );
    }
    match grant(&req, now_seconds) {
        Ok(bytes) => (bytes, Answer::Granted),
        Err(_) => (
            rejection(Failure::BadDataFormat, "could not issue a token"),
            Answer::Rejected(Failure::BadDataFormat),
        ),
    }
}

fn grant(req: &TimeStampReq, now_seconds: i64) -> Result<Vec<u8>, String> {
    static SERIAL: AtomicU64 = AtomicU64::new(1);
    let tsa = authority().ok_or("no TSA key")?;
    let gen_time = chrono::DateTime::from_timestamp(now_seconds, 0)
        .ok_or("time out of range")?
        .fixed_offset();
    let tst = TstInfo {
        version: Integer::from(1),
        policy: oid(&POLICY),
        message_imprint: MessageImprint {
            hash_algorithm: req.message_imprint.hash_algorithm.clone(),
            hashed_message: req.message_imprint.hashed_message.clone(),
        },
        serial_number: Integer::from(SERIAL.fetch_add(1, Ordering::Relaxed)),
        gen_time,
        accuracy: Some(rasn_cms::tsp::Accuracy {
            seconds: Some(Integer::from(1)),
            millis: None,
            micros: None,
        }),
        ordering: false,
        nonce: req.nonce.clone(),
        tsa: None,
        extensions: None,
    };
    let content = der(&tst)?;
    let attribute = |arcs: &[u32], value: Vec<u8>| Attribute {
        r#type: oid(arcs),
        values: SetOf::from_vec(vec![Any::new(value)]),
    };
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::from(sha2::Sha256::digest(&tsa.cert_der).to_vec()),
        }],
    };
    let signed_attrs: SetOf<Attribute> = SetOf::from_vec(vec![
        attribute(&CONTENT_TYPE_ATTR, der(&oid(&TST_INFO))?),
        attribute(
            &MESSAGE_DIGEST_ATTR,
            der(&OctetString::from(sha2::Sha256::digest(&content).to_vec()))?,
        ),
        attribute(&SIGNING_CERTIFICATE_V2, der(&ess)?),
    ]);
    // RFC 5652 §5.4: the signature is over the DER of the attributes as a
    // SET OF (universal tag), not the [0] IMPLICIT form they travel in.
    let to_sign = der(&signed_attrs)?;
    let signature = tsa.key.sign(&to_sign).map_err(|e| e.to_string())?;
    let signer = SignerInfo {
        version: Integer::from(1),
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tsa.cert.tbs_certificate.issuer.clone(),
            serial_number: tsa.cert.tbs_certificate.serial_number.clone(),
        }),
        digest_algorithm: algorithm(&SHA256),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm(&ECDSA_WITH_SHA256),
        signature: OctetString::from(signature),
        unsigned_attrs: None,
    };
    let certificates = req.cert_req.then(|| {
        SetOf::from_vec(vec![
            CertificateChoices::Certificate(Box::new(tsa.cert.clone())),
            CertificateChoices::Certificate(Box::new(tsa.ca.clone())),
        ])
    });
    let signed = SignedData {
        // v3: the encapsulated content is not id-data (RFC 5652 §5.1).
        version: Integer::from(3),
        digest_algorithms: SetOf::from_vec(vec![algorithm(&SHA256)]),
        encap_content_info: EncapsulatedContentInfo {
            content_type: oid(&TST_INFO),
            content: Some(OctetString::from(content)),
        },
        certificates,
        crls: None,
        signer_infos: SetOf::from_vec(vec![signer]),
    };
    let resp = TimeStampResp {
        status: PkiStatusInfo {
            status: PkiStatus::Granted,
            status_string: None,
            fail_info: None,
        },
        time_stamp_token: Some(ContentInfo {
            content_type: oid(&SIGNED_DATA),
            content: Any::new(der(&signed)?),
        }),
    };
    der(&resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(hash: &[u8], alg: &[u32], nonce: Option<i64>) -> Vec<u8> {
        rasn::der::encode(&TimeStampReq {
            version: 1,
            message_imprint: MessageImprint {
                hash_algorithm: algorithm(alg),
                hashed_message: OctetString::from(hash.to_vec()),
            },
            req_policy: None,
            nonce: nonce.map(Integer::from),
            cert_req: true,
            extensions: None,
        })
        .unwrap()
    }

    #[test]
    fn a_granted_token_verifies_with_the_c2pa_sdk_and_echoes_the_nonce() {
        let message = b"the COSE to-be-signed bytes";
        let digest = sha2::Sha256::digest(message);
        let (bytes, answer) = answer(&request(&digest, &SHA256, Some(77)), 1_800_000_000);
        assert_eq!(answer, Answer::Granted);
        let mut log = c2pa::status_tracker::StatusTracker::default();
        let policy = c2pa::crypto::cose::CertificateTrustPolicy::passthrough();
        c2pa::crypto::time_stamp::verify_time_stamp(&bytes, message, &policy, &mut log, false)
            .expect("the SDK verifies the token");
        let resp: TimeStampResp = rasn::der::decode(&bytes).unwrap();
        let signed: SignedData =
            rasn::der::decode(resp.time_stamp_token.unwrap().content.as_bytes()).unwrap();
        let tst: TstInfo =
            rasn::der::decode(signed.encap_content_info.content.as_ref().unwrap()).unwrap();
        assert_eq!(tst.nonce, Some(Integer::from(77)));
        assert_eq!(tst.gen_time.timestamp(), 1_800_000_000);
        // Another message's digest does not match the token.
        let mut log = c2pa::status_tracker::StatusTracker::default();
        assert!(
            c2pa::crypto::time_stamp::verify_time_stamp(&bytes, b"other", &policy, &mut log, false)
                .is_err()
        );
    }

    #[test]
    fn the_token_is_trusted_against_the_tsa_ca_and_only_it() {
        let message = b"claim signature";
        let digest = sha2::Sha256::digest(message);
        let (bytes, _) = answer(&request(&digest, &SHA256, None), 1_800_000_000);
        let mut policy = c2pa::crypto::cose::CertificateTrustPolicy::default();
        policy
            .add_trust_anchors(tsa_ca_pem().unwrap().as_bytes())
            .unwrap();
        let mut log = c2pa::status_tracker::StatusTracker::default();
        c2pa::crypto::time_stamp::verify_time_stamp(&bytes, message, &policy, &mut log, true)
            .expect("trusted against the TSA CA (and its EKU is timeStamping)");
        let stranger =
            crate::pki::issue("stranger CA", "stranger", crate::pki::Flaw::None).unwrap();
        let mut other = c2pa::crypto::cose::CertificateTrustPolicy::default();
        other.add_trust_anchors(stranger.ca_pem.as_bytes()).unwrap();
        let mut log = c2pa::status_tracker::StatusTracker::default();
        assert!(
            c2pa::crypto::time_stamp::verify_time_stamp(&bytes, message, &other, &mut log, true)
                .is_err()
        );
    }

    #[test]
    fn malformed_or_unsupported_requests_are_rejected_with_the_rfc_failure_bit() {
        let (bytes, answer) = super::answer(b"not der", 0);
        assert_eq!(answer, Answer::Rejected(Failure::BadDataFormat));
        let resp: TimeStampResp = rasn::der::decode(&bytes).unwrap();
        assert_eq!(resp.status.status, PkiStatus::Rejection);
        assert!(resp.time_stamp_token.is_none());
        let bits = resp.status.fail_info.unwrap();
        assert_eq!(
            bits.iter().position(|b| *b),
            Some(Failure::BadDataFormat as usize)
        );
        // SHA-1 imprints are refused (badAlg).
        let sha1 = [1u32, 3, 14, 3, 2, 26];
        let (_, answer) = super::answer(&request(&[0; 20], &sha1, None), 0);
        assert_eq!(answer, Answer::Rejected(Failure::BadAlg));
        // A SHA-256 imprint of the wrong length.
        let (_, answer) = super::answer(&request(&[0; 20], &SHA256, None), 0);
        assert_eq!(answer, Answer::Rejected(Failure::BadDataFormat));
    }
}
