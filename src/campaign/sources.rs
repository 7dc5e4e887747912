//! A campaign folder as data: every file `adloc enqueue` reads, kept in the
//! store so a worker on another host can load the very same campaign
//! without a shared filesystem (and `adloc manifest` can rebuild from the
//! store alone).
//!
//! A worker materializes the files into a folder named after their digest
//! and loads that folder with [`super::Campaign::load`], so the campaign a
//! worker serves is exactly the one that was enqueued: same rows, same
//! templates, same reference bytes, same request hashes.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::domain::Error;

/// Folders never taken into a campaign's sources: output trees and state
/// that users often keep inside the campaign folder.
const SKIPPED_DIRS: [&str; 3] = ["out", "review", "contact-sheets"];

/// The most a campaign folder may hold (references included). Bigger
/// folders are refused at enqueue with the total, not silently truncated.
pub const MAX_SOURCES_BYTES: u64 = 256 * 1024 * 1024;

/// The files of a campaign folder, by path relative to it (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    files: Vec<(String, Vec<u8>)>,
}

impl Sources {
    /// Read every regular file under `dir`, skipping hidden entries and
    /// output folders ([`SKIPPED_DIRS`]).
    pub fn collect(dir: &Path) -> Result<Sources, Error> {
        let mut files = Vec::new();
        let mut total = 0u64;
        collect_into(dir, dir, &mut files, &mut total)?;
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Sources { files })
    }

    /// The files of a loaded campaign: its folder, plus each template found
    /// in the project's shared `templates/` folder, placed in the
    /// campaign's own `templates/` (where loading looks first). A reference
    /// outside the folder cannot travel with it and is refused.
    pub fn of(campaign: &super::Campaign) -> Result<Sources, Error> {
        let dir = campaign.dir.as_path();
        let mut s = Sources::collect(dir)?;
        let inside = |p: &Path| {
            let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            let (p, d) = (abs(p), abs(dir));
            !p.components().any(|c| c == Component::ParentDir) && p.starts_with(d)
        };
        for r in campaign.references.paths() {
            if !inside(r) {
                return Err(Error::Usage(format!(
                    "reference {} is outside the campaign folder {}: workers load a campaign from the state, so move it into the folder",
                    r.display(),
                    dir.display()
                )));
            }
        }
        for v in &campaign.variants {
            if inside(&v.template_path) {
                continue;
            }
            let Some(file) = v.template_path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let rel = format!("templates/{file}");
            if !s.files.iter().any(|(p, _)| *p == rel) {
                s.files.push((rel, v.template_source.clone().into_bytes()));
            }
        }
        s.files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(s)
    }

    /// Prove that these files are what loading the campaign read: every
    /// file the loader read (campaign.toml, the rows, templates, reference
    /// images, brand files) is held here at the path a worker's load looks
    /// for it, with the SHA-256 of the very bytes the loader read. Loading
    /// is a function of those files alone, so a worker that loads the
    /// materialized folder expands exactly the jobs this load expanded,
    /// and `adloc enqueue` need not expand the campaign a second time to
    /// know it. A file outside the folder, hidden, in an output folder,
    /// or changed between the two reads fails here, naming it.
    pub fn check_holds(&self, campaign: &super::Campaign) -> Result<(), Error> {
        let dir = campaign.dir.as_path();
        for read in read_files(campaign) {
            let rel = match read
                .stored_as
                .clone()
                .or_else(|| relative_inside(&read.path, dir))
            {
                Some(rel) => rel,
                None => {
                    return Err(Error::Usage(format!(
                        "{} is read by the campaign but lies outside its folder {}: workers load a campaign from the state, so move it into the folder; nothing was queued",
                        read.path.display(),
                        dir.display()
                    )));
                }
            };
            let held = self
                .files
                .binary_search_by(|(p, _)| p.as_str().cmp(&rel))
                .ok()
                .map(|i| &self.files[i].1);
            let Some(bytes) = held else {
                return Err(Error::Usage(format!(
                    "{} is read by the campaign but is not kept with it (hidden files and the {} folders are not): workers load a campaign from the state, so move it; nothing was queued",
                    read.path.display(),
                    SKIPPED_DIRS.join(", ")
                )));
            };
            if hex::encode(Sha256::digest(bytes)) != read.sha256 {
                return Err(Error::Usage(format!(
                    "{} changed while the campaign was read; nothing was queued, enqueue again",
                    read.path.display()
                )));
            }
        }
        Ok(())
    }

    /// Sources read back from the store. Paths are checked so a tampered
    /// row cannot write outside the folder it is materialized in.
    pub fn from_files(files: Vec<(String, Vec<u8>)>) -> Result<Sources, Error> {
        for (path, _) in &files {
            if !is_safe_relative(path) {
                return Err(Error::Internal(format!(
                    "stored campaign file `{path}` is not a path inside the campaign folder"
                )));
            }
        }
        let mut files = files;
        files.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Sources { files })
    }

    /// The files, sorted by path.
    pub fn files(&self) -> &[(String, Vec<u8>)] {
        &self.files
    }

    /// Hex SHA-256 over paths and contents: equal digests, equal campaigns.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (path, bytes) in &self.files {
            h.update((path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        hex::encode(h.finalize())
    }

    /// Write the files under `root/<digest>/` (once: a folder that exists
    /// with its completion marker is reused) and return that folder.
    /// Written to a temporary sibling and renamed, so a worker killed
    /// half-way leaves no folder that looks complete.
    pub fn materialize(&self, root: &Path) -> Result<PathBuf, Error> {
        let digest = self.digest();
        let dir = root.join(&digest);
        if dir.join(COMPLETE_MARKER).is_file() {
            return Ok(dir);
        }
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let staged = root.join(format!(
            ".{digest}-{}-{}",
            std::process::id(),
            crate::domain::now_ms()
        ));
        std::fs::create_dir_all(&staged).map_err(|e| Error::io(&staged, e))?;
        for (rel, bytes) in &self.files {
            let path = staged.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        }
        let marker = staged.join(COMPLETE_MARKER);
        std::fs::write(&marker, digest.as_bytes()).map_err(|e| Error::io(&marker, e))?;
        match std::fs::rename(&staged, &dir) {
            Ok(()) => Ok(dir),
            // Another worker on this host materialized it first.
            Err(_) if dir.join(COMPLETE_MARKER).is_file() => {
                std::fs::create_dir_all(&staged).map_err(|e| Error::io(&staged, e))?;
                Ok(dir)
            }
            Err(e) => Err(Error::io(&dir, e)),
        }
    }
}

/// One file the campaign loader read.
struct ReadFile {
    /// As resolved by the loader.
    path: PathBuf,
    /// Where [`Sources::of`] keeps it when that is not its place in the
    /// folder (a shared template, kept in the campaign's `templates/`).
    stored_as: Option<String>,
    /// Hex SHA-256 of the bytes read.
    sha256: String,
}

/// Every file [`super::Campaign::load`] read, with what it read.
fn read_files(c: &super::Campaign) -> Vec<ReadFile> {
    let sha = |b: &[u8]| hex::encode(Sha256::digest(b));
    let mut out = vec![
        ReadFile {
            path: c.dir.join("campaign.toml"),
            stored_as: None,
            sha256: c.config_sha256.clone(),
        },
        ReadFile {
            path: c.rows.path.clone(),
            stored_as: None,
            sha256: c.rows.file_sha256.clone(),
        },
    ];
    for v in &c.variants {
        let shared = relative_inside(&v.template_path, &c.dir).is_none();
        out.push(ReadFile {
            path: v.template_path.clone(),
            stored_as: shared
                .then(|| v.template_path.file_name().and_then(|f| f.to_str()))
                .flatten()
                .map(|f| format!("templates/{f}")),
            sha256: sha(v.template_source.as_bytes()),
        });
    }
    out.extend(c.references.loaded().map(|r| ReadFile {
        path: r.path.clone(),
        stored_as: None,
        sha256: r.file_sha256.clone(),
    }));
    out.extend(c.brand.files().map(|f| ReadFile {
        path: c.dir.join(&f.rel),
        stored_as: None,
        sha256: f.sha256.clone(),
    }));
    out
}

/// `path` relative to `dir` (`/`-separated), when it lies inside it
/// without leaving it on the way (`..`).
fn relative_inside(path: &Path, dir: &Path) -> Option<String> {
    if path.components().any(|c| c == Component::ParentDir) {
        return None;
    }
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (p, d) = (abs(path), abs(dir));
    let rel = p.strip_prefix(&d).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Written last into a materialized folder.
const COMPLETE_MARKER: &str = ".adloc-sources-complete";

fn collect_into(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, Vec<u8>)>,
    total: &mut u64,
) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(Error::Usage(format!(
                "{}: file names in a campaign folder must be UTF-8",
                entry.path().display()
            )));
        };
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_dir() {
            if dir == root && SKIPPED_DIRS.contains(&name) {
                continue;
            }
            collect_into(root, &path, files, total)?;
        } else if path.is_file() {
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            *total += bytes.len() as u64;
            if *total > MAX_SOURCES_BYTES {
                return Err(Error::Usage(format!(
                    "{}: the campaign folder holds more than {} MiB; enqueue keeps every file of it in the state, so move large files that are not references out of it",
                    root.display(),
                    MAX_SOURCES_BYTES / (1024 * 1024)
                )));
            }
            let rel = path.strip_prefix(root).map_err(|_| {
                Error::Internal(format!("{} is not under its root", path.display()))
            })?;
            let rel: Vec<&str> = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => s.to_str(),
                    _ => None,
                })
                .collect();
            files.push((rel.join("/"), bytes));
        }
    }
    Ok(())
}

fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materialized_sources_read_back_identical_and_skip_output_folders() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("campaign.toml"), "name = \"x\"\n").unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/hero.hbs"), "{{headline}}").unwrap();
        std::fs::create_dir_all(dir.path().join("out/x")).unwrap();
        std::fs::write(dir.path().join("out/x/manifest.json"), "{}").unwrap();
        std::fs::write(dir.path().join(".hidden"), "no").unwrap();
        let s = Sources::collect(dir.path()).unwrap();
        let names: Vec<&str> = s.files().iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["campaign.toml", "templates/hero.hbs"]);

        let root = tempfile::tempdir().unwrap();
        let at = s.materialize(root.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(at.join("templates/hero.hbs")).unwrap(),
            "{{headline}}"
        );
        let again = Sources::collect(&at).unwrap();
        assert_eq!(again.digest(), s.digest());
        assert_eq!(s.materialize(root.path()).unwrap(), at);
    }

    #[test]
    fn stored_paths_that_leave_the_folder_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "a//b"] {
            assert!(
                Sources::from_files(vec![(bad.to_string(), vec![])]).is_err(),
                "{bad}"
            );
        }
        assert!(Sources::from_files(vec![("a/b.hbs".into(), vec![])]).is_ok());
    }
}
