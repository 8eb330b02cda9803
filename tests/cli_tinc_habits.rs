//! Issue 21 ("A tinc 1.1 user's habits"): behaviour a tinc user relies on, checked against
//! what a real tinc 1.1 did (../shared/tinc11-observed).

mod cli_support;

use cli_support::*;

/// Bug 5: tinc (cli/17.txt) fails with "Could not change to configuration directory: No
/// such file or directory", rc 1; meshd names the missing directory and no log file.
#[test]
fn start_in_a_missing_directory_names_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nonexistent");
    let o = meshd(&dir, &["start"]);
    assert!(!o.status.success(), "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains(&dir.display().to_string()), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!err.to_lowercase().contains("log"), "{err}");
    assert!(!dir.exists(), "start created {}", dir.display());
}

/// Bug 3: `generate-ed25519-keys` comments the old key out in place (tinc's "old key(s)
/// found and disabled", cli/37.txt), no `.priv.old`; the file stays 0600 and loads.
#[test]
fn generate_keys_comments_the_old_key_out_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a");
    let port = free_port();
    init_node(&dir, "alpha", port);
    let key = dir.join("ed25519_key.priv");
    let host = dir.join("hosts").join("alpha");
    let old_key = read(&key);
    let old_pub = read(&host)
        .lines()
        .find(|l| l.starts_with("Ed25519PublicKey"))
        .unwrap()
        .to_string();
    assert_ok(&meshd(&dir, &["generate-ed25519-keys"]));
    assert!(!dir.join("ed25519_key.priv.old").exists());
    assert_eq!(mode_of(&key), 0o600);
    let text = read(&key);
    let commented: String = old_key.lines().map(|l| format!("#{l}\n")).collect();
    assert!(text.starts_with(&commented), "{text}");
    let rest = &text[commented.len()..];
    assert_eq!(
        rest.matches("-----BEGIN ED25519 PRIVATE KEY-----").count(),
        1,
        "{text}"
    );
    assert!(!rest.contains('#'), "{text}");
    let host_text = read(&host);
    assert!(host_text.contains(&format!("#{old_pub}\n")), "{host_text}");
    let new_pub: Vec<&str> = host_text
        .lines()
        .filter(|l| l.starts_with("Ed25519PublicKey"))
        .collect();
    assert_eq!(new_pub.len(), 1, "{host_text}");
    assert_ne!(new_pub[0], old_pub);
    // A second rotation reads the file with the disabled block; the daemon loads the result.
    assert_ok(&meshd(&dir, &["generate-ed25519-keys"]));
    let text2 = read(&key);
    assert_eq!(
        text2
            .matches("#-----BEGIN ED25519 PRIVATE KEY-----")
            .count(),
        2,
        "{text2}"
    );
    assert_eq!(mode_of(&key), 0o600);
    let mut reaper = Reaper::default();
    start_node(&mut reaper, &dir, "alpha", port, &[&dir]);
    assert_ok(&meshd(&dir, &["stop"]));
}
