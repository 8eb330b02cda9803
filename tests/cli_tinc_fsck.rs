//! Issue 21: `fsck` in tinc 1.1's words for what its own test (test/integration/cmd_fsck.py)
//! checks — obsolete, empty, repeated and misplaced variables, a missing Name, a broken key —
//! and `--force` writing the own public key as tinc does (a PEM block), which meshd reads back
//! like the one-line form, as it reads `Ed25519PublicKeyFile`.

mod cli_support;

use cli_support::*;
use std::path::{Path, PathBuf};

/// A fresh directory made by `init NAME`.
fn fresh(tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    assert_ok(&meshd(&dir, &["init", name]));
    dir
}

/// `fsck` (with `--force` if asked): its exit code and stderr.
fn fsck(dir: &Path, force: bool) -> (Option<i32>, String) {
    let args: &[&str] = if force {
        &["--force", "fsck"]
    } else {
        &["fsck"]
    };
    let o = meshd(dir, args);
    (o.status.code(), stderr(&o))
}

/// `text` without its `Ed25519PublicKey` line.
fn without_key_line(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("Ed25519PublicKey"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn fsck_warns_in_tincs_words_about_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, Option<i32>, &str)] = &[
        (
            "hosts",
            "GraphDumpFile = /dev/null\n",
            Some(0),
            "obsolete variable GraphDumpFile",
        ),
        (
            "hosts",
            "Weight = \n",
            Some(1),
            "No value for variable `Weight'",
        ),
        (
            "hosts",
            "Weight = 0\nWeight = 1\n",
            Some(0),
            "multiple instances of variable Weight",
        ),
        (
            "hosts",
            "Interface = fake0\n",
            Some(0),
            "server variable Interface found in host config",
        ),
        (
            "tinc.conf",
            "Port = 1337\n",
            Some(0),
            "host variable Port found in server config",
        ),
    ];
    for (i, (file, line, code, want)) in cases.iter().enumerate() {
        let name = format!("n{i}");
        let dir = fresh(tmp.path(), &name);
        let path = match *file {
            "hosts" => dir.join("hosts").join(&name),
            _ => dir.join(file),
        };
        append(&path, line);
        let (rc, err) = fsck(&dir, false);
        assert_eq!(rc, *code, "{line:?}: {err}");
        assert!(err.contains(want), "{line:?}: want {want:?} in {err}");
        // Each names the file (and the line where there is one).
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

#[test]
fn fsck_says_what_tinc_says_about_name_and_private_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path(), "alpha");
    let conf = dir.join("tinc.conf");
    let text = read(&conf);
    let no_name: String = text
        .lines()
        .filter(|l| !l.starts_with("Name"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&conf, no_name).unwrap();
    let (rc, err) = fsck(&dir, false);
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("cannot run without a valid Name"), "{err}");
    std::fs::write(&conf, text).unwrap();

    // A truncated key file.
    std::fs::write(dir.join("ed25519_key.priv"), "").unwrap();
    let (rc, err) = fsck(&dir, false);
    assert_eq!(rc, Some(1), "{err}");
    assert!(err.contains("No Ed25519 private key found"), "{err}");
}

#[test]
fn fsck_force_writes_the_public_key_as_a_pem_block_that_meshd_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fresh(tmp.path(), "alpha");
    let host = dir.join("hosts/alpha");
    let line = read(&host)
        .lines()
        .find(|l| l.starts_with("Ed25519PublicKey"))
        .unwrap()
        .to_string();
    std::fs::write(&host, without_key_line(&read(&host))).unwrap();
    // Without --force: a warning, exit 0, the file untouched.
    let (rc, err) = fsck(&dir, false);
    assert_eq!(rc, Some(0), "{err}");
    assert!(err.contains("No (usable) public Ed25519"), "{err}");
    assert!(!read(&host).contains("ED25519 PUBLIC KEY"));
    // With it: tinc's message and block.
    let (rc, err) = fsck(&dir, true);
    assert_eq!(rc, Some(0), "{err}");
    assert!(err.contains("Wrote Ed25519 public key"), "{err}");
    assert!(read(&host).contains("-----BEGIN ED25519 PUBLIC KEY-----"));
    // meshd reads the block: fsck is silent.
    assert_eq!(fsck(&dir, false), (Some(0), String::new()));
    // The same key through Ed25519PublicKeyFile (tinc's third form), from tinc.conf.
    let key = line.split_whitespace().last().unwrap();
    let pem = dir.join("ec_pubkey");
    std::fs::write(
        &pem,
        format!("-----BEGIN ED25519 PUBLIC KEY-----\n{key}\n-----END ED25519 PUBLIC KEY-----\n"),
    )
    .unwrap();
    std::fs::write(&host, "Port = 0\n").unwrap();
    append(
        &dir.join("tinc.conf"),
        &format!("Ed25519PublicKeyFile = {}\n", pem.display()),
    );
    let (rc, err) = fsck(&dir, false);
    assert_eq!(rc, Some(0), "{err}");
    assert!(!err.contains("No (usable) public Ed25519"), "{err}");
}
