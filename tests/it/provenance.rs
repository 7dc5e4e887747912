//! Provenance (issue 24) through the binary: every file adloc delivers
//! carries the IPTC AI marking, read back here with a container walker of
//! our own (not adloc's), so a file the platforms' readers would not find
//! the tag in fails.

use crate::common::*;

const TRAINED: &str = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia";
const COMPOSITE: &str =
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia";

/// The XMP packet of a JPEG (APP1 `http://ns.adobe.com/xap/1.0/\0`), PNG
/// (uncompressed `iTXt` `XML:com.adobe.xmp`) or WebP (`XMP ` chunk with the
/// `VP8X` XMP flag), found by walking the container as XMP Specification
/// Part 3 and the WebP container spec lay it out.
fn xmp_packet(bytes: &[u8]) -> Option<String> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut i = 2;
        while i + 4 <= bytes.len() && bytes[i] == 0xFF {
            let marker = bytes[i + 1];
            if marker == 0xDA {
                return None; // start of scan: no more metadata
            }
            let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
            let body = &bytes[i + 4..i + 2 + len];
            let header = b"http://ns.adobe.com/xap/1.0/\0";
            if marker == 0xE1 && body.starts_with(header) {
                return String::from_utf8(body[header.len()..].to_vec()).ok();
            }
            i += 2 + len;
        }
        None
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let mut i = 8;
        while i + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
            let kind = &bytes[i + 4..i + 8];
            let body = &bytes[i + 8..i + 8 + len];
            let kw = b"XML:com.adobe.xmp\0";
            if kind == b"iTXt" && body.starts_with(kw) {
                let rest = &body[kw.len()..];
                assert_eq!(rest[0], 0, "the XMP iTXt must be uncompressed");
                let rest = &rest[2..];
                let lang = rest.iter().position(|&b| b == 0).unwrap();
                let rest = &rest[lang + 1..];
                let tk = rest.iter().position(|&b| b == 0).unwrap();
                return String::from_utf8(rest[tk + 1..].to_vec()).ok();
            }
            i += 12 + len;
        }
        None
    } else if bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        let mut i = 12;
        let mut flagged = false;
        while i + 8 <= bytes.len() {
            let id = &bytes[i..i + 4];
            let len = u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) as usize;
            let body = &bytes[i + 8..i + 8 + len];
            if id == b"VP8X" {
                flagged = body[0] & 0x04 != 0;
            }
            if id == b"XMP " {
                assert!(
                    flagged,
                    "a WebP XMP chunk needs VP8X with the XMP flag first"
                );
                return String::from_utf8(body.to_vec()).ok();
            }
            i += 8 + len + (len & 1);
        }
        None
    } else {
        None
    }
}

/// The `Iptc4xmpExt:DigitalSourceType` in a file's XMP packet.
fn source_type(bytes: &[u8]) -> Option<String> {
    let xmp = xmp_packet(bytes)?;
    assert!(
        xmp.contains("xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\""),
        "{xmp}"
    );
    let (_, rest) = xmp.split_once("Iptc4xmpExt:DigitalSourceType=\"")?;
    rest.split_once('"').map(|(v, _)| v.to_string())
}

/// The example campaign cut to one row in two locales, with a JPEG, a PNG
/// and a WebP rendition on `hero`, two placements on `square`, and its
/// overlay `banner` (composites).
pub(crate) fn example_with_every_kind_of_file(ws: &Workspace) {
    let rows = std::fs::read_to_string(ws.campaign().join("rows.csv")).unwrap();
    let kept: Vec<&str> = rows.lines().take(2).collect();
    std::fs::write(ws.campaign().join("rows.csv"), kept.join("\n") + "\n").unwrap();
    ws.edit(
        "campaign.toml",
        r#"locales = ["en-US", "de-DE", "ja-JP", "ko-KR", "zh-Hans-CN", "ar-SA"]"#,
        r#"locales = ["en-US", "ar-SA"]"#,
    );
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"16:9\"\nimage_size = \"1K\"\n\n",
        concat!(
            "aspect_ratio = \"16:9\"\nimage_size = \"1K\"\n\n",
            "[[variants.renditions]]\nsize = \"600x314\"\nformat = \"jpeg\"\n\n",
            "[[variants.renditions]]\nsize = \"300x250\"\nformat = \"png\"\nfit = \"contain\"\n\n",
            "[[variants.renditions]]\nsize = \"320x180\"\nformat = \"webp\"\n\n",
        ),
    );
    ws.edit(
        "campaign.toml",
        "aspect_ratio = \"1:1\"\nimage_size = \"1K\"\n",
        "aspect_ratio = \"1:1\"\nimage_size = \"1K\"\nplacements = [\"google-display-300x250\", \"partner-rail\"]\n",
    );
    ws.append_toml(
        "\n[placements.partner-rail]\nsize = \"640x360\"\nmax_kb = 80\nformats = [\"jpeg\"]\n",
    );
}

/// Every delivered file the manifest lists: (path, kind, asset variant).
fn delivered_files(m: &serde_json::Value) -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    for a in m["assets"].as_array().unwrap() {
        let variant = a["variant"].as_str().unwrap().to_string();
        out.push((
            a["path"].as_str().unwrap().to_string(),
            "asset",
            variant.clone(),
        ));
        for r in a["renditions"].as_array().into_iter().flatten() {
            out.push((
                r["path"].as_str().unwrap().to_string(),
                "rendition",
                variant.clone(),
            ));
        }
        for p in a["placements"].as_array().into_iter().flatten() {
            out.push((
                p["path"].as_str().unwrap().to_string(),
                "placement",
                variant.clone(),
            ));
        }
    }
    out
}

#[test]
fn every_delivered_file_carries_the_iptc_ai_source_type_in_its_xmp() {
    let ws = Workspace::new();
    example_with_every_kind_of_file(&ws);
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_matches_files(&ws.out(), &m);
    let files = delivered_files(&m);
    let mut formats = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for (rel, kind, variant) in &files {
        let bytes = std::fs::read(ws.out().join(rel)).unwrap();
        formats.insert(format!("{:?}", image::guess_format(&bytes).unwrap()));
        // The files still decode after the packet went in.
        image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let expected = if variant == "banner" && *kind == "asset" {
            COMPOSITE
        } else {
            TRAINED
        };
        assert_eq!(
            source_type(&bytes).as_deref(),
            Some(expected),
            "{rel} ({kind})"
        );
        kinds.insert(if variant == "banner" && *kind == "asset" {
            "composite"
        } else {
            kind
        });
    }
    assert_eq!(
        formats.into_iter().collect::<Vec<_>>(),
        ["Jpeg", "Png", "WebP"],
        "every container adloc writes is covered"
    );
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["asset", "composite", "placement", "rendition"]
    );
    // The placements' weight limits hold for the marked files.
    for (rel, kind, _) in &files {
        if *kind == "placement" && rel.contains("@partner-rail") {
            let len = std::fs::metadata(ws.out().join(rel)).unwrap().len();
            assert!(len <= 80 * 1024, "{rel}: {len} bytes");
        }
    }
}

#[test]
fn an_unsigned_run_lists_unsigned_provenance_and_plan_warns_once() {
    let ws = Workspace::new();
    example_with_every_kind_of_file(&ws);
    let o = ws.adloc(&["plan", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("delivered unsigned").count(),
        1,
        "{}",
        stdout(&o)
    );
    let o = ws.adloc(&["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    let mut n = 0;
    for a in m["assets"].as_array().unwrap() {
        let expected = if a["variant"] == "banner" {
            COMPOSITE
        } else {
            TRAINED
        };
        let entries = std::iter::once(a)
            .chain(a["renditions"].as_array().into_iter().flatten())
            .chain(a["placements"].as_array().into_iter().flatten());
        for e in entries {
            let p = &e["provenance"];
            assert_eq!(p["c2pa"], "unsigned", "{e}");
            assert_eq!(p["label"], serde_json::Value::Null);
            assert_eq!(p["vendor_manifest"], false);
            assert_eq!(p["vendor_validation"], serde_json::Value::Null);
            let want = if std::ptr::eq(e, a) {
                expected
            } else {
                TRAINED
            };
            assert_eq!(p["digital_source_type"], want, "{e}");
            n += 1;
        }
    }
    assert!(n > 10, "{n} entries");
    // The unsigned tree verifies (sha256 and IPTC), saying it is unsigned.
    let o = ws.adloc(&["verify", "example"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "{n} of {n} files verified (0 signed, {n} unsigned)"
        )),
        "{}",
        stdout(&o)
    );
}

/// A signer for adloc, made at test time, written beside the workspace.
struct TestSigner {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    anchors: std::path::PathBuf,
    key_pem: String,
}

fn test_signer(ws: &Workspace, flaw: adloc_emulator::pki::Flaw) -> TestSigner {
    let pki =
        adloc_emulator::pki::issue("adloc test customer CA", "adloc test signer", flaw).unwrap();
    let dir = ws.path().join("pki");
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("signer.pem");
    let key = dir.join("signer.key");
    std::fs::write(&cert, &pki.chain_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // Trust: our CA for adloc's claims, the emulator's vendor CA for the
    // parent ingredients and its TSA's CA for time stamps.
    let anchors = dir.join("anchors.pem");
    let vendor = adloc_emulator::c2pa_sign::vendor_ca_pem().unwrap();
    let tsa = adloc_emulator::tsa::tsa_ca_pem().unwrap();
    std::fs::write(&anchors, format!("{}{vendor}{tsa}", pki.ca_pem)).unwrap();
    TestSigner {
        cert,
        key,
        anchors,
        key_pem: pki.key_pem,
    }
}

fn signing_env(emu: &Emu, s: &TestSigner) -> Vec<(&'static str, String)> {
    let mut env = emu.both_env();
    env.push(("ADLOC_C2PA_CERT", s.cert.display().to_string()));
    env.push(("ADLOC_C2PA_KEY", s.key.display().to_string()));
    env
}

/// The example cut to one row in two locales on Nano Banana Pro (whose
/// outputs the emulator signs as Google), realtime, with renditions,
/// placements and the overlay banner.
fn signed_example(ws: &Workspace) {
    example_with_every_kind_of_file(ws);
    ws.edit(
        "campaign.toml",
        "model = \"gemini-3.1-flash-image\"",
        "model = \"gemini-3-pro-image\"",
    );
    ws.edit("campaign.toml", "mode = \"batch\"", "mode = \"realtime\"");
}

/// `adloc verify example` with `env` and trust in `signer`'s anchors
/// exits 0; its output.
fn assert_verifies(
    ws: &Workspace,
    env: &[(&'static str, String)],
    signer: &TestSigner,
) -> std::process::Output {
    let mut venv = env.to_vec();
    venv.push((
        "ADLOC_C2PA_TRUST_ANCHORS",
        signer.anchors.display().to_string(),
    ));
    let o = ws.adloc_with(&venv, &["verify", "example"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    o
}

/// The active manifest of `bytes`, read with the c2pa crate.
fn c2pa_reader(bytes: &[u8]) -> c2pa::Reader {
    let mime = match image::guess_format(bytes).unwrap() {
        image::ImageFormat::Jpeg => "image/jpeg",
        image::ImageFormat::Png => "image/png",
        image::ImageFormat::WebP => "image/webp",
        other => panic!("{other:?}"),
    };
    c2pa::Reader::from_context(c2pa::Context::new())
        .with_stream(mime, std::io::Cursor::new(bytes.to_vec()))
        .unwrap()
}

fn action_names(reader: &c2pa::Reader) -> Vec<String> {
    let m = reader.active_manifest().unwrap();
    let actions: c2pa::assertions::Actions =
        m.find_assertion(c2pa::assertions::Actions::LABEL).unwrap();
    actions
        .actions()
        .iter()
        .map(|a| a.action().to_string())
        .collect()
}

#[test]
fn a_signed_run_carries_adloc_manifests_with_the_vendor_as_parent_and_verifies() {
    let ws = Workspace::new();
    signed_example(&ws);
    let emu = Emu::start(adloc_emulator::Faults::default());
    let signer = test_signer(&ws, adloc_emulator::pki::Flaw::None);
    let env = signing_env(&emu, &signer);
    let o = ws.adloc_with(&env, &["plan", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert!(!stdout(&o).contains("delivered unsigned"), "{}", stdout(&o));
    let o = ws.adloc_with(&env, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    assert_manifest_valid(&m);
    assert_manifest_matches_files(&ws.out(), &m);
    let files = delivered_files(&m);
    let mut seen = std::collections::BTreeSet::new();
    for (rel, kind, variant) in &files {
        let bytes = std::fs::read(ws.out().join(rel)).unwrap();
        let composite = variant == "banner" && *kind == "asset";
        // IPTC in signed files too.
        assert_eq!(
            source_type(&bytes).as_deref(),
            Some(if composite { COMPOSITE } else { TRAINED }),
            "{rel}"
        );
        let reader = c2pa_reader(&bytes);
        assert_ne!(
            reader.validation_state(),
            c2pa::ValidationState::Invalid,
            "{rel}: {:?}",
            reader.validation_status()
        );
        let active = reader.active_manifest().unwrap();
        assert_eq!(
            active.claim_generator_info.as_ref().unwrap()[0].name,
            "adloc",
            "{rel}"
        );
        let actions = action_names(&reader);
        let parent = active
            .ingredients()
            .iter()
            .find(|i| *i.relationship() == c2pa::Relationship::ParentOf);
        match (*kind, composite) {
            ("asset", false) => {
                // The vendor (emulated Google) signed Nano Banana Pro's
                // image: its claim is the parent, ours opened it.
                assert_eq!(actions, ["c2pa.opened", "c2pa.edited.metadata"], "{rel}");
                let parent = parent.unwrap_or_else(|| panic!("{rel}: no parent"));
                let vendor_label = parent.active_manifest().unwrap();
                let vendor = reader.get_manifest(vendor_label).unwrap();
                assert_eq!(
                    vendor.claim_generator_info.as_ref().unwrap()[0].name,
                    "Google"
                );
                assert!(ws.out().join(".vendor").join(rel).is_file(), "{rel}");
                seen.insert("master");
            }
            ("asset", true) => {
                assert_eq!(actions, ["c2pa.opened", "c2pa.edited"], "{rel}");
                assert!(parent.is_some(), "{rel}: the art is the parent");
                seen.insert("composite");
            }
            ("rendition", _) | ("placement", _) => {
                assert_eq!(actions[0], "c2pa.opened", "{rel}");
                assert!(
                    actions[1] == "c2pa.resized" || actions[1] == "c2pa.cropped",
                    "{rel}: {actions:?}"
                );
                // The master (adloc's claim, with Google's under it).
                assert!(parent.is_some(), "{rel}");
                assert!(
                    reader.manifests().len() >= 3,
                    "{rel}: the chain reaches the vendor"
                );
                seen.insert(kind);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    // The manifest says so.
    for a in m["assets"].as_array().unwrap() {
        let p = &a["provenance"];
        assert_eq!(p["c2pa"], "signed", "{a}");
        assert!(p["label"].as_str().unwrap().starts_with("urn:c2pa:"), "{p}");
        assert_eq!(p["vendor_manifest"], true, "{p}");
        assert_eq!(p["vendor_validation"], "valid", "{p}");
    }
    // adloc verify, trusting our CA and the vendor's: every file verifies.
    let o = assert_verifies(&ws, &env, &signer);
    let n = files.len();
    assert!(
        stdout(&o).contains(&format!(
            "{n} of {n} files verified ({n} signed, 0 unsigned), 0 failed"
        )),
        "{}",
        stdout(&o)
    );
    // An unchanged rerun signs nothing again: every file is the same.
    let before: Vec<String> = files
        .iter()
        .map(|(r, ..)| sha256_file(&ws.out().join(r)))
        .collect();
    let o = ws.adloc_with(&env, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let after: Vec<String> = files
        .iter()
        .map(|(r, ..)| sha256_file(&ws.out().join(r)))
        .collect();
    assert_eq!(before, after);
    // The key is nowhere adloc wrote or printed.
    let body: String = signer
        .key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for (path, bytes) in ws.all_bytes() {
        if path.starts_with(ws.path().join("pki")) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&body[..40]),
            "{} holds the key",
            path.display()
        );
    }
}

#[test]
fn a_tampered_file_fails_adloc_verify() {
    let ws = Workspace::new();
    signed_example(&ws);
    let emu = Emu::start(adloc_emulator::Faults::default());
    let signer = test_signer(&ws, adloc_emulator::pki::Flaw::None);
    let env = signing_env(&emu, &signer);
    let o = ws.adloc_with(&env, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let m = ws.manifest();
    let rel = m["assets"][0]["renditions"]
        .as_array()
        .and_then(|r| r.first())
        .or_else(|| Some(&m["assets"][0]))
        .unwrap()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let file = ws.out().join(&rel);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let (o, line) = verify_failing(&ws, &env, &rel);
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(stdout(&o).contains(", 1 failed"), "{}", stdout(&o));

    // A tamperer who also rewrites the manifest's sha256 is caught by the
    // C2PA hard binding, not by the manifest.
    let tampered_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let manifest_file = ws.out().join("manifest.json");
    let text = std::fs::read_to_string(&manifest_file).unwrap();
    let old_sha = sha_of_listed(&ws.manifest(), &rel);
    assert_ne!(old_sha, tampered_sha);
    std::fs::write(&manifest_file, text.replace(&old_sha, &tampered_sha)).unwrap();
    let (_, line) = verify_failing(&ws, &env, &rel);
    assert!(
        line.starts_with("FAIL") && line.contains("C2PA") && !line.contains("sha256"),
        "{line}"
    );
}

#[test]
fn a_signer_certificate_that_expired_or_cannot_sign_is_refused_before_anything_is_bought() {
    for flaw in [
        adloc_emulator::pki::Flaw::Expired,
        adloc_emulator::pki::Flaw::NoSigningUsage,
    ] {
        let ws = Workspace::new();
        signed_example(&ws);
        let emu = Emu::start(adloc_emulator::Faults::default());
        let signer = test_signer(&ws, flaw);
        let env = signing_env(&emu, &signer);
        for cmd in ["plan", "run"] {
            let o = ws.adloc_with(&env, &[cmd, "campaigns/example"]);
            assert_eq!(code(&o), 2, "{flaw:?} {cmd}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(err.contains("ADLOC_C2PA_CERT"), "{err}");
            assert!(
                err.contains(if flaw == adloc_emulator::pki::Flaw::Expired {
                    "expired"
                } else {
                    "extended key usage"
                }),
                "{err}"
            );
            assert!(!err.contains("PRIVATE KEY"), "{err}");
        }
        assert_eq!(emu.stats().generate_calls, 0, "{flaw:?}: nothing bought");
        assert!(
            !ws.out().join("example/en-US").exists(),
            "{flaw:?}: nothing written"
        );
    }
}

#[test]
fn a_time_stamp_authority_adloc_cannot_reach_is_refused_before_anything_is_bought() {
    let ws = Workspace::new();
    signed_example(&ws);
    let emu = Emu::start(adloc_emulator::Faults::default());
    let signer = test_signer(&ws, adloc_emulator::pki::Flaw::None);
    let mut env = signing_env(&emu, &signer);
    env.push(("ADLOC_C2PA_TSA_URL", "http://127.0.0.1:9/tsa".to_string()));
    for cmd in ["plan", "run"] {
        let o = ws.adloc_with(&env, &[cmd, "campaigns/example"]);
        assert_eq!(code(&o), 2, "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("ADLOC_C2PA_TSA_URL") && err.contains("time stamp"),
            "{err}"
        );
        // The message is about the time stamp, not a misleading key error.
        assert!(!err.contains("ADLOC_C2PA_KEY"), "{err}");
    }
    assert_eq!(emu.stats().generate_calls, 0, "nothing bought");
    assert!(!ws.out().join("example/en-US").exists(), "nothing written");
}

#[test]
fn with_a_time_stamp_authority_every_signed_file_carries_a_trusted_rfc3161_time_and_no_url_secret()
{
    let ws = Workspace::new();
    signed_example(&ws);
    let emu = Emu::start(adloc_emulator::Faults::default());
    let signer = test_signer(&ws, adloc_emulator::pki::Flaw::None);
    let mut env = signing_env(&emu, &signer);
    // Credentials in the URL, as a paid TSA account may have them: they
    // reach the TSA and nothing else.
    let port = emu.base_url().rsplit(':').next().unwrap().to_string();
    let shown = format!("http://127.0.0.1:{port}/tsa");
    env.push((
        "ADLOC_C2PA_TSA_URL",
        format!("http://acct:s3cret-pw@127.0.0.1:{port}/tsa?token=t0k3n"),
    ));
    let started = jiff::Timestamp::now().as_second();
    let plan = ws.adloc_with(&env, &["plan", "campaigns/example"]);
    assert_eq!(code(&plan), 0, "stderr: {}", stderr(&plan));
    assert!(
        stdout(&plan).contains(&format!("time-stamped by {shown}")),
        "{}",
        stdout(&plan)
    );
    let run = ws.adloc_with(&env, &["run", "campaigns/example"]);
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
    let finished = jiff::Timestamp::now().as_second();
    let m = ws.manifest();
    let files = delivered_files(&m);
    assert!(files.len() >= 4, "{files:?}");
    // Trust in our CA, the vendor's and the TSA's.
    let anchors = std::fs::read_to_string(&signer.anchors).unwrap();
    let trusted = c2pa::Context::new()
        .with_settings(
            c2pa::Settings::new()
                .with_value("trust.trust_anchors", anchors.clone())
                .unwrap()
                .with_value("verify.verify_trust", true)
                .unwrap(),
        )
        .unwrap();
    let trusted = std::sync::Arc::new(trusted);
    for (rel, ..) in &files {
        let bytes = std::fs::read(ws.out().join(rel)).unwrap();
        let mime = match image::guess_format(&bytes).unwrap() {
            image::ImageFormat::Jpeg => "image/jpeg",
            image::ImageFormat::Png => "image/png",
            _ => "image/webp",
        };
        let reader = c2pa::Reader::from_shared_context(&trusted)
            .with_stream(mime, std::io::Cursor::new(bytes))
            .unwrap();
        assert_eq!(
            reader.validation_state(),
            c2pa::ValidationState::Trusted,
            "{rel}: {:?}",
            reader.validation_status()
        );
        let info = reader.active_manifest().unwrap().signature_info().unwrap();
        let time = info
            .time
            .as_deref()
            .unwrap_or_else(|| panic!("{rel}: no time stamp"));
        let at = time
            .parse::<jiff::Timestamp>()
            .unwrap_or_else(|e| panic!("{rel}: {time}: {e}"))
            .as_second();
        assert!(
            (started - 2..=finished + 2).contains(&at),
            "{rel}: stamped {time}, run {started}..{finished}"
        );
        let results = reader.validation_results().unwrap();
        let codes: Vec<&str> = results
            .active_manifest()
            .unwrap()
            .success()
            .iter()
            .map(|s| s.code())
            .collect();
        assert!(codes.contains(&"timeStamp.trusted"), "{rel}: {codes:?}");
    }
    // Every delivered file's signature was stamped once, plus the start-up
    // checks of `plan` and `run`.
    let stats = emu.stats();
    assert_eq!(stats.tsa_requests, stats.tsa_granted);
    assert!(
        stats.tsa_granted >= files.len() as u64 + 2,
        "{} tokens for {} files",
        stats.tsa_granted,
        files.len()
    );
    // adloc verify trusts them too.
    assert_verifies(&ws, &env, &signer);
    // The URL's secrets are nowhere adloc wrote or printed.
    for text in [stdout(&plan), stderr(&plan), stdout(&run), stderr(&run)] {
        assert!(
            !text.contains("s3cret-pw") && !text.contains("t0k3n"),
            "{text}"
        );
    }
    for (path, bytes) in ws.all_bytes() {
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("s3cret-pw") && !text.contains("t0k3n"),
            "{} holds the TSA credentials",
            path.display()
        );
    }
}

/// Every image under a delivered name in `ws`'s output is whole and
/// carries a C2PA manifest that is not invalid (temporary files, the
/// vendor's kept bytes and review thumbnails aside).
fn assert_every_file_on_disk_whole_and_signed(ws: &Workspace) {
    let mut stack = vec![ws.out()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                // The vendor's own bytes are theirs, not adloc's;
                // review thumbnails are rebuilt when missing, and
                // never delivered.
                if name != ".vendor" && name != "review" {
                    stack.push(path);
                }
                continue;
            }
            let ext = path.extension().and_then(|x| x.to_str()).unwrap_or("");
            if name.contains(".adloc-tmp-") || !matches!(ext, "jpg" | "png" | "webp") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            image::load_from_memory(&bytes)
                .unwrap_or_else(|e| panic!("{}: not a whole image: {e}", path.display()));
            let mime = match image::guess_format(&bytes).unwrap() {
                image::ImageFormat::Jpeg => "image/jpeg",
                image::ImageFormat::Png => "image/png",
                _ => "image/webp",
            };
            let reader = c2pa::Reader::from_context(c2pa::Context::new())
                .with_stream(mime, std::io::Cursor::new(bytes))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_ne!(
                reader.validation_state(),
                c2pa::ValidationState::Invalid,
                "{}: {:?}",
                path.display(),
                reader.validation_status()
            );
        }
    }
}

#[test]
fn runs_killed_while_signing_and_time_stamping_leave_no_half_signed_file() {
    let ws = Workspace::new();
    signed_example(&ws);
    // Slow enough answers that most kills land mid-run on a fast machine.
    let emu = Emu::start(adloc_emulator::Faults {
        latency_ms: 150,
        ..adloc_emulator::Faults::default()
    });
    let signer = test_signer(&ws, adloc_emulator::pki::Flaw::None);
    let mut env = signing_env(&emu, &signer);
    // A round trip to the TSA inside every signature widens the window a
    // kill lands in while a file is being signed.
    env.push(("ADLOC_C2PA_TSA_URL", format!("{}/tsa", emu.base_url())));
    let mut rng = fastrand::Rng::with_seed(0x5167);
    let mut kills = 0;
    for _ in 0..5 {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_adloc"));
        cmd.current_dir(ws.path())
            .args(["run", "campaigns/example"])
            .env_remove("GEMINI_API_KEY")
            .env_remove("GOOGLE_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .env("ADLOC_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        if crate::crash::kill_after(cmd.spawn().unwrap(), rng.u64(200..2000)) {
            kills += 1;
        }
        assert_every_file_on_disk_whole_and_signed(&ws);
    }
    assert!(kills >= 2, "too few kills landed mid-run ({kills})");
    let o = ws.adloc_with(&env, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_verifies(&ws, &env, &signer);
    assert!(
        temporaries(ws.path()).is_empty(),
        "temporary files left behind"
    );
}

#[test]
fn a_time_stamp_authority_that_fails_mid_run_stops_the_run_with_signing_failed_and_nothing_unsigned()
 {
    let ws = Workspace::new();
    signed_example(&ws);
    let emu = Emu::start(adloc_emulator::Faults {
        // Two tokens at start-up (the TSA check, then the signer's test
        // signature) and two files get theirs; then 503s.
        tsa_fail_after: Some(4),
        ..adloc_emulator::Faults::default()
    });
    let signer = test_signer(&ws, adloc_emulator::pki::Flaw::None);
    let mut env = signing_env(&emu, &signer);
    let tsa = format!("{}/tsa", emu.base_url());
    env.push(("ADLOC_C2PA_TSA_URL", tsa.clone()));
    let o = ws.adloc_with(&env, &["run", "campaigns/example"]);
    assert_eq!(
        code(&o),
        4,
        "stdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(err.contains(&tsa) && err.contains("503"), "{err}");
    assert!(err.contains("signing_failed"), "{err}");
    // Retried before giving up, then nothing more asked of it.
    let stats = emu.stats();
    assert_eq!(stats.tsa_granted, 4);
    assert!(stats.tsa_requests > 5, "{stats:?}");
    assert_every_file_on_disk_whole_and_signed(&ws);
    // The TSA is back: the rerun finishes and every file verifies.
    emu.set_faults(adloc_emulator::Faults::default());
    let o = ws.adloc_with(&env, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    assert_verifies(&ws, &env, &signer);
}

#[test]
fn a_time_stamp_authority_url_without_a_signer_is_refused() {
    let ws = Workspace::new();
    signed_example(&ws);
    let emu = Emu::start(adloc_emulator::Faults::default());
    let mut env = emu.both_env();
    env.push(("ADLOC_C2PA_TSA_URL", format!("{}/tsa", emu.base_url())));
    let o = ws.adloc_with(&env, &["run", "campaigns/example"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("ADLOC_C2PA_CERT"), "{}", stderr(&o));
    assert_eq!(emu.stats().generate_calls, 0, "nothing bought");
}

/// `adloc verify example`, which must exit 3: its output and its line
/// about `rel`.
fn verify_failing(
    ws: &Workspace,
    env: &[(&'static str, String)],
    rel: &str,
) -> (std::process::Output, String) {
    let o = ws.adloc_with(env, &["verify", "example"]);
    assert_eq!(code(&o), 3, "{}", stdout(&o));
    let line = stdout(&o)
        .lines()
        .find(|l| l.contains(rel))
        .unwrap_or_else(|| panic!("no line about {rel}: {}", stdout(&o)))
        .to_string();
    (o, line)
}

/// The sha256 the manifest lists for the file at `rel`.
fn sha_of_listed(m: &serde_json::Value, rel: &str) -> String {
    m["assets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            std::iter::once(a)
                .chain(a["renditions"].as_array().into_iter().flatten())
                .chain(a["placements"].as_array().into_iter().flatten())
        })
        .find(|e| e["path"].as_str() == Some(rel))
        .and_then(|e| e["sha256"].as_str())
        .unwrap_or_else(|| panic!("{rel} is not listed"))
        .to_string()
}

/// contentauth's Python bindings (PyPI `c2pa-python`, which ./test.sh
/// installs), reading each file with trust in `anchors`: one JSON line per
/// file with its validation state, claim generator, actions and how many
/// manifests the chain holds.
const PY_VERIFY: &str = r#"
import json, sys
from c2pa import Context, Reader, Settings
anchors = open(sys.argv[1]).read()
settings = Settings.from_dict({"trust": {"trust_anchors": anchors}, "verify": {"verify_trust": True}})
ctx = Context(settings)
for path in sys.argv[2:]:
    r = Reader(path, context=ctx)
    store = json.loads(r.json())
    active = store["manifests"][store["active_manifest"]]
    actions = [a["action"] for x in active.get("assertions", []) if x["label"].startswith("c2pa.actions") for a in x["data"]["actions"]]
    print(json.dumps({
        "path": path,
        "state": r.get_validation_state(),
        "generator": active["claim_generator_info"][0]["name"],
        "actions": actions,
        "manifests": len(store["manifests"]),
    }))
"#;

#[test]
fn contentauths_python_verifier_trusts_every_signed_file_and_sees_the_vendor_chain() {
    let ws = Workspace::new();
    signed_example(&ws);
    let emu = Emu::start(adloc_emulator::Faults::default());
    let signer = test_signer(&ws, adloc_emulator::pki::Flaw::None);
    let o = ws.adloc_with(&signing_env(&emu, &signer), &["run", "campaigns/example"]);
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    let files = delivered_files(&ws.manifest());
    let mut cmd = std::process::Command::new("python3");
    cmd.arg("-c").arg(PY_VERIFY).arg(&signer.anchors);
    for (rel, ..) in &files {
        cmd.arg(ws.out().join(rel));
    }
    let o = cmd.output().expect("python3 runs");
    assert!(
        o.status.success(),
        "c2pa-python failed (./test.sh installs it): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len());
    for l in &lines {
        assert_eq!(l["state"], "Trusted", "{l}");
        assert_eq!(l["generator"], "adloc", "{l}");
        assert!(
            l["manifests"].as_u64().unwrap() >= 2,
            "the vendor's claim is in the chain: {l}"
        );
        let first = l["actions"][0].as_str().unwrap();
        assert_eq!(first, "c2pa.opened", "{l}");
    }
}
