//! One type per concept: no two public types of meshd and meshd-core share a
//! name (two `VipSettings` or two `WireError`s meant two things under one word).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// `NAME` of every `pub struct/enum/type/trait/union NAME` (also `pub(crate)`) in `text`.
fn public_types(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim_start();
            let rest = rest
                .strip_prefix("pub ")
                .or_else(|| rest.strip_prefix("pub(crate) "))?;
            let rest = ["struct ", "enum ", "type ", "trait ", "union "]
                .iter()
                .find_map(|kw| rest.strip_prefix(kw))?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

#[test]
fn no_two_public_types_share_a_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("core/src"), &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for name in public_types(&text) {
            let at = f.strip_prefix(root).unwrap_or(f).display().to_string();
            seen.entry(name).or_default().push(at);
        }
    }
    assert!(seen.contains_key("NodeName") && seen.contains_key("VipSettings"));
    let dups: Vec<_> = seen.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(dups.is_empty(), "public types with one name: {dups:?}");
}

#[test]
fn the_scanner_finds_what_it_should() {
    let text = "pub struct A;\n  pub(crate) enum B {}\npub fn c() {}\npub type D = u8;\n\
                // pub struct NotMe\npub trait E {}\n";
    assert_eq!(public_types(text), ["A", "B", "D", "E"]);
}
