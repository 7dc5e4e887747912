//! The one-way house: a top-level module of `src/` imports only modules
//! before it in the data flow, so a reader can follow the data down the
//! list and nothing comes back up except through the store.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::repo;

/// The data flow, upstream first. Modules on one line may not import each
/// other (they are independent stages of the same rank).
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["imaging", "prompt"],
    &["campaign"],
    &["expand"],
    &["store"],
    &["provider"],
    &["assets"],
    &["derive"],
    &["manifest"],
    &["review", "notify"],
    &["run"],
    &["cli"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::<module>` a file names, outside comments.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

#[test]
fn every_top_level_module_imports_only_modules_upstream_of_it() {
    let src = repo().join("src");
    let mut violations = Vec::new();
    let mut seen = 0;
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        let module = p.file_stem().unwrap().to_string_lossy().to_string();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let Some(own) = rank(&module) else {
            violations.push(format!(
                "src/{module} is not in the layer list; add it where it belongs"
            ));
            continue;
        };
        seen += 1;
        let mut files = Vec::new();
        if p.is_dir() {
            rust_files(&p, &mut files);
        } else {
            files.push(p.clone());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for dep in imports(&text) {
                if dep == module {
                    continue;
                }
                match rank(&dep) {
                    Some(r) if r < own => {}
                    Some(_) => violations.push(format!(
                        "{} ({module}) imports {dep}, which is not upstream of it",
                        f.strip_prefix(repo()).unwrap_or(&f).display()
                    )),
                    None => {}
                }
            }
        }
    }
    assert_eq!(
        seen,
        LAYERS.iter().map(|l| l.len()).sum::<usize>(),
        "a layer has no module"
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_import_scanner_sees_paths_and_ignores_comments() {
    let found =
        imports("use crate::store::Store; // crate::cli::x\nlet a = crate::domain::now_ms();");
    assert_eq!(
        found,
        BTreeSet::from(["domain".to_string(), "store".to_string()])
    );
}
