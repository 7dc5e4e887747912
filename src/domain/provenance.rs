//! What the manifest says about a delivered file's provenance (issue 24):
//! whether it carries a signed C2PA manifest, under which label, its IPTC
//! digital source type, and whether the vendor's own Content Credentials
//! are kept in its chain.

use serde::{Deserialize, Serialize};

/// Whether a delivered file carries adloc's signed C2PA manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum C2paState {
    /// A C2PA manifest signed with the configured certificate is embedded.
    Signed,
    /// No signer was configured when the file was written: IPTC XMP only.
    Unsigned,
}

/// The `provenance` object under an asset, rendition or placement in the
/// manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceEntry {
    /// `signed` or `unsigned`.
    pub c2pa: C2paState,
    /// The active C2PA manifest's label (`urn:c2pa:…`); null when unsigned.
    pub label: Option<String>,
    /// The IPTC `DigitalSourceType` IRI in the file's XMP.
    pub digital_source_type: String,
    /// The bytes the vendor returned carried its own C2PA manifest (kept
    /// as the parent ingredient when signed, and as the raw vendor file
    /// outside the delivered tree either way).
    pub vendor_manifest: bool,
    /// The vendor manifest's validation state as the C2PA SDK read it
    /// (`valid`, `trusted`, `invalid`); null without a vendor manifest.
    pub vendor_validation: Option<String>,
    /// SHA-256 of the vendor's raw bytes kept under `.vendor/` (absent
    /// without a vendor manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_sha256: Option<String>,
}
