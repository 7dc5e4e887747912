//! One vocabulary of failures: the manifest schema's reason enum, the
//! README's list and `adloc::Reason::ALL` are the same set.

use std::collections::BTreeSet;

use crate::common::repo;

fn reason_codes() -> BTreeSet<String> {
    adloc::Reason::ALL
        .iter()
        .map(|r| r.code().to_string())
        .collect()
}

#[test]
fn the_schema_enum_lists_exactly_the_reason_codes() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schema/manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let listed: BTreeSet<String> = schema["$defs"]["reason"]["enum"]
        .as_array()
        .expect("schema $defs.reason.enum")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, reason_codes());
    let failure_reason = &schema["properties"]["failures"]["items"]["properties"]["reason"];
    assert_eq!(failure_reason["$ref"], "#/$defs/reason");
}

#[test]
fn the_readme_lists_exactly_the_reason_codes() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("<!-- reasons:start -->")
        .expect("README marks its reason list");
    let end = readme.find("<!-- reasons:end -->").expect("end marker");
    let listed: BTreeSet<String> = readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert_eq!(listed, reason_codes());
}
