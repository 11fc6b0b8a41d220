//! Docs that code depends on stay true: the schema table and the error codes in docs/schema.md.

use sandgym_core::{Error, store};

fn schema_doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema.md");
    std::fs::read_to_string(path).expect("docs/schema.md exists")
}

#[test]
fn schema_doc_lists_every_column_in_order() {
    let doc = schema_doc();
    // The first table whose rows start with a backticked name is the column table.
    let documented: Vec<String> = doc
        .lines()
        .skip_while(|line| !line.starts_with("| `"))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_string()))
        .collect();
    let actual: Vec<String> = store::schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        documented, actual,
        "docs/schema.md's column table must match store::schema()"
    );
}

#[test]
fn schema_doc_explains_every_guest_error_kind() {
    let doc = schema_doc();
    for kind in Error::KINDS {
        if [
            "reset_needed",
            "invalid_argument",
            "unknown_env",
            "pool_exhausted",
            "io",
            "storage",
            "sandbox",
        ]
        .contains(kind)
        {
            continue; // raised to callers, never written to a row
        }
        assert!(
            doc.contains(&format!("`{kind}`")),
            "docs/schema.md does not explain `{kind}`"
        );
    }
}
