//! `offramp import` on input it cannot read: a clear error naming file and line,
//! exit 1, nothing on stdout, never a panic.

use super::{import_fails, run, text, tmp, write};

#[test]
fn unbalanced_braces_name_file_and_line() {
    let dir = tmp();
    let f = write(
        dir.path(),
        "Caddyfile",
        b"a.example {\n  reverse_proxy 10.0.0.1\n\nb.example {\n  reverse_proxy 10.0.0.2\n}\n",
    );
    let err = import_fails("caddyfile", &f);
    assert!(err.contains("Caddyfile:1: this { is never closed"), "{err}");
    let f = write(dir.path(), "Caddyfile", b"a.example {\n}\n}\n");
    assert!(import_fails("caddyfile", &f).contains("Caddyfile:3: unexpected }"));
}

#[test]
fn an_unknown_snippet_names_file_and_line() {
    let dir = tmp();
    let f = write(
        dir.path(),
        "Caddyfile",
        b"a.example {\n  import nosuch\n  reverse_proxy 10.0.0.1\n}\n",
    );
    let err = import_fails("caddyfile", &f);
    assert!(
        err.contains("Caddyfile:2: import nosuch: no snippet (nosuch)"),
        "{err}"
    );
}

#[test]
fn recursive_imports_are_errors() {
    let dir = tmp();
    let f = write(
        dir.path(),
        "Caddyfile",
        b"(a) {\n  import b\n}\n(b) {\n  import a\n}\nx.example {\n  import a\n}\n",
    );
    let err = import_fails("caddyfile", &f);
    assert!(err.contains("recursive import: snippet (a)"), "{err}");
    assert!(err.contains("Caddyfile:5:"), "{err}");
    // A file importing itself through a glob.
    std::fs::create_dir(dir.path().join("conf.d")).expect("mkdir");
    write(
        &dir.path().join("conf.d"),
        "loop.caddy",
        b"import ../Caddyfile\n",
    );
    let f = write(dir.path(), "Caddyfile", b"import conf.d/*.caddy\n");
    let err = import_fails("caddyfile", &f);
    assert!(err.contains("recursive import"), "{err}");
    assert!(
        err.contains("conf.d/loop.caddy:1: recursive import: conf.d/../Caddyfile imports itself"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_utf8_names_its_line() {
    let dir = tmp();
    let f = write(
        dir.path(),
        "Caddyfile",
        b"a.example {\n  respond \"\xff\xfe\"\n}\n",
    );
    let err = import_fails("caddyfile", &f);
    assert!(err.contains("Caddyfile:2: not UTF-8"), "{err}");
    let err = import_fails("caddy-json", &f);
    assert!(err.contains("Caddyfile:2: not UTF-8"), "{err}");
}

#[test]
fn a_10_mib_file_is_refused() {
    let dir = tmp();
    let line = b"a.example { reverse_proxy 10.0.0.1 }\n";
    let body: Vec<u8> = line.iter().copied().cycle().take(10 << 20).collect();
    let f = write(dir.path(), "Caddyfile", &body);
    let err = import_fails("caddyfile", &f);
    assert!(err.contains("Caddyfile:"), "{err}");
    assert!(err.contains("larger than 4 MiB"), "{err}");
}

#[test]
fn bad_json_names_its_line() {
    let dir = tmp();
    let f = write(
        dir.path(),
        "caddy.json",
        b"{\n  \"apps\": {\n    \"http\": [\n}\n",
    );
    let err = import_fails("caddy-json", &f);
    assert!(err.contains("caddy.json:4: not valid JSON"), "{err}");
    assert!(import_fails("caddy-json", &dir.path().join("missing.json")).contains("cannot read"));
}

#[test]
fn a_caddyfile_with_no_site_imports_nothing() {
    let dir = tmp();
    let f = write(dir.path(), "Caddyfile", b"{\n  email a@b.example\n}\n");
    let out = run(
        &["import", "caddyfile", f.to_str().expect("utf-8")],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("nothing to import"));
    assert!(out.stdout.is_empty());
    write(
        dir.path(),
        "Caddyfile",
        b":8080 {\n  reverse_proxy 10.0.0.1\n}\n{$DOMAIN} {\n  reverse_proxy 10.0.0.2\n}\n",
    );
    let out = run(&["import", "caddyfile", "Caddyfile"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("Caddyfile:1: address :8080 names no host"),
        "{err}"
    );
    assert!(
        err.contains("Caddyfile:4: environment placeholder in \"{$DOMAIN}\" left as is"),
        "{err}"
    );
}
