//! Unit tests of a `format = "statuspage"` target's keys: page, key and component
//! mapping read, the default API base, and each error with its key and line.

use super::notify_tests::{at, only, Dir};
use super::*;

#[test]
fn statuspage_targets() {
    let d = Dir::new();
    d.file("sp.key", "k3y\n", 0o600);
    let c = d
        .parse(
            r#"[[notify]]
name = "sp"
format = "statuspage"
page_id = "abc123XYZ"
api_key_file = "sp.key"
components = { cloud = "comp1", mail = "comp2" }
events = ["component", "incident"]
"#,
        )
        .unwrap();
    let n = &c.notify[0];
    assert_eq!(n.url.expose_str(), STATUSPAGE_API);
    assert_eq!(n.url.expose_str(), "https://api.statuspage.io/v1");
    let sp = n.statuspage.as_ref().unwrap();
    assert_eq!(sp.page_id, "abc123XYZ");
    assert_eq!(sp.api_key.expose_str(), "k3y");
    assert_eq!(
        sp.components.iter().collect::<Vec<_>>(),
        [
            (&"cloud".to_string(), &"comp1".to_string()),
            (&"mail".to_string(), &"comp2".to_string())
        ]
    );
    assert!(!format!("{n:?}").contains("k3y"));
    // Another API base (a trailing slash dropped), or one from a file; no components.
    let c = d
        .parse("[[notify]]\nname = \"sp\"\nformat = \"statuspage\"\nurl = \"http://127.0.0.1:5000/v1/\"\npage_id = \"p\"\napi_key_file = \"sp.key\"\n")
        .unwrap();
    assert_eq!(c.notify[0].url.expose_str(), "http://127.0.0.1:5000/v1");
    assert!(c.notify[0]
        .statuspage
        .as_ref()
        .unwrap()
        .components
        .is_empty());
    d.file("sp.url", "https://sp.example/v1\n", 0o600);
    let c = d
        .parse("[[notify]]\nname = \"sp\"\nformat = \"statuspage\"\nurl_file = \"sp.url\"\npage_id = \"p\"\napi_key_file = \"sp.key\"\n")
        .unwrap();
    assert_eq!(c.notify[0].url.expose_str(), "https://sp.example/v1");
}

#[test]
fn statuspage_errors() {
    let d = Dir::new();
    d.file("sp.key", "k3y\n", 0o600);
    let head = "[[notify]]\nname = \"sp\"\nformat = \"statuspage\"\n";
    // Line 11 is [[notify]], 14 the first key after these.
    let errs = d.errors(head);
    assert_eq!(
        at(&errs, "notify[1].page_id"),
        [(
            11,
            "missing: format = \"statuspage\" needs page_id (the page's ID)".to_string()
        )]
    );
    assert_eq!(at(&errs, "notify[1].api_key_file").len(), 1, "{errs:#?}");
    assert_eq!(at(&errs, "notify[1].api_key_file")[0].0, 11);
    assert_eq!(errs.len(), 2, "{errs:#?}");

    let keys = "page_id = \"p1\"\napi_key_file = \"sp.key\"\n";
    let m = only(
        &d.errors(&format!(
            "{head}page_id = \"a/b\"\napi_key_file = \"sp.key\"\n"
        )),
        "notify[1].page_id",
        14,
    );
    assert!(m.contains("not a Statuspage page ID"), "{m}");
    let m = only(
        &d.errors(&format!("{head}page_id = 1\napi_key_file = \"sp.key\"\n")),
        "notify[1].page_id",
        14,
    );
    assert!(m.contains("expected a string"), "{m}");
    let m = only(
        &d.errors(&format!("{head}page_id = \"p\"\napi_key_file = []\n")),
        "notify[1].api_key_file",
        15,
    );
    assert!(m.contains("expected a string"), "{m}");
    let m = only(
        &d.errors(&format!(
            "{head}page_id = \"\"\napi_key_file = \"sp.key\"\n"
        )),
        "notify[1].page_id",
        14,
    );
    assert!(m.contains("not a Statuspage page ID"), "{m}");
    let m = only(
        &d.errors(&format!(
            "{head}{keys}components = {{ cloud = \"x\", nope = \"y\" }}\n"
        )),
        "notify[1].components.nope",
        16,
    );
    assert_eq!(
        m,
        "\"nope\" is neither a [[site]] nor a [[component]] of this config"
    );
    let m = only(
        &d.errors(&format!(
            "{head}{keys}components = {{ cloud = \"../x\" }}\n"
        )),
        "notify[1].components.cloud",
        16,
    );
    assert!(m.contains("not a Statuspage component ID"), "{m}");
    let m = only(
        &d.errors(&format!("{head}{keys}components = {{ cloud = 1 }}\n")),
        "notify[1].components.cloud",
        16,
    );
    assert!(m.contains("expected a string"), "{m}");
    let m = only(
        &d.errors(&format!("{head}{keys}components = [\"cloud\"]\n")),
        "notify[1].components",
        16,
    );
    assert!(m.contains("expected a table"), "{m}");
    let m = only(
        &d.errors(&format!(
            "{head}page_id = \"p\"\napi_key_file = \"missing.key\"\n"
        )),
        "notify[1].api_key_file",
        15,
    );
    assert!(m.contains("missing.key"), "{m}");
    d.file("open.key", "k3y\n", 0o644);
    let m = only(
        &d.errors(&format!(
            "{head}page_id = \"p\"\napi_key_file = \"open.key\"\n"
        )),
        "notify[1].api_key_file",
        15,
    );
    assert!(m.contains("readable by everyone"), "{m}");

    // The statuspage keys with another format.
    let errs = d.errors(&format!(
        "[[notify]]\nname = \"x\"\nurl = \"https://h.example\"\n{keys}components = {{ nope = \"y\" }}\n"
    ));
    assert_eq!(
        at(&errs, "notify[1].page_id"),
        [(
            14,
            "page_id is for format = \"statuspage\" only".to_string()
        )]
    );
    assert_eq!(
        at(&errs, "notify[1].api_key_file"),
        [(
            15,
            "api_key_file is for format = \"statuspage\" only".to_string()
        )]
    );
    assert_eq!(
        at(&errs, "notify[1].components"),
        [(
            16,
            "components is for format = \"statuspage\" only".to_string()
        )]
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}
