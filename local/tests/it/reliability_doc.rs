//! RELIABILITY.md names the test behind each guarantee; this keeps the names true.

use std::path::Path;

#[test]
fn every_test_named_in_reliability_md_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(root.join("RELIABILITY.md")).unwrap();
    let mut named = 0;
    // Code spans like `functions/web/tests/it/admin.rs::some_test`.
    for span in doc.split('`').skip(1).step_by(2) {
        let Some((file, function)) = span.split_once(".rs::") else {
            continue;
        };
        let source = std::fs::read_to_string(root.join(format!("{file}.rs")))
            .unwrap_or_else(|e| panic!("RELIABILITY.md names {file}.rs: {e}"));
        assert!(
            source.contains(&format!("fn {function}(")),
            "RELIABILITY.md names {span}, which does not exist"
        );
        named += 1;
    }
    assert!(named >= 30, "only {named} tests named");
    assert!(root.join("scripts/schemathesis.sh").exists());
}
