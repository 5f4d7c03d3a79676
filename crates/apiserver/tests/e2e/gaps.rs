//! What real clients hit beyond plain CRUD: kinds the server does not serve,
//! protobuf bodies, identity reviews, metrics and health details.

use crate::kubectl::kubectl;

#[tokio::test]
async fn applying_a_kind_the_server_does_not_serve_says_no_matches() {
    let manifest = "apiVersion: example.org/v1\nkind: Gizmo\nmetadata:\n  name: g\n  namespace: default\nspec: {size: 1}\n";
    let out = kubectl(&["apply", "-f", "-"], Some(manifest));
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("no matches for kind \"Gizmo\" in version \"example.org/v1\""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("ensure CRDs are installed first"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("proto:"), "{}", out.stderr);
}
