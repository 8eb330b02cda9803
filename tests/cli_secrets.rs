//! Secrets on disk, as a user meets them through the `meshd` binary: the modes `init`,
//! `generate-ed25519-keys`, `invite` and `join` create, and the refusals (with the `chmod` that
//! fixes them) when a key, an invitation or their directory is open to group or others.
//! Loopback daemons with `DeviceType = dummy`: no root needed.

mod cli_support;

use cli_support::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// Names under `dir` (recursive) that start with a dot: leftover temporary files.
fn dotfiles(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                out.push(e.path().display().to_string());
            }
            if e.path().is_dir() {
                out.extend(dotfiles(&e.path()));
            }
        }
    }
    out
}

fn public_key_line(host_text: &str) -> String {
    host_text
        .lines()
        .find(|l| l.starts_with("Ed25519PublicKey"))
        .unwrap_or_else(|| panic!("no key line in {host_text}"))
        .to_string()
}

#[test]
fn init_makes_a_private_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("etc").join("net");
    assert_ok(&meshd(&dir, &["init", "alpha", "--port", "6551"]));
    assert_eq!(mode_of(&dir), 0o700, "the network directory");
    assert_eq!(
        mode_of(&tmp.path().join("etc")),
        0o755,
        "a parent made on the way"
    );
    assert_eq!(mode_of(&dir.join("ed25519_key.priv")), 0o600);
    assert_eq!(mode_of(&dir.join("hosts")), 0o755);
    assert_eq!(mode_of(&dir.join("hosts/alpha")), 0o644);
    assert_eq!(mode_of(&dir.join("tinc.conf")), 0o644);
    assert_eq!(mode_of(&dir.join("tinc-up")), 0o755);
    assert!(dotfiles(&dir).is_empty(), "{:?}", dotfiles(&dir));
}

#[test]
fn init_refuses_a_directory_others_can_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o777);
    let o = meshd(&dir, &["init", "alpha"]);
    assert_exit1(&o);
    let err = stderr(&o);
    assert!(err.contains("0777"), "{}", show(&o));
    assert!(
        err.contains(&format!("chmod go-w {}", dir.display())),
        "{}",
        show(&o)
    );
    assert!(!dir.join("tinc.conf").exists());
    assert!(!dir.join("ed25519_key.priv").exists());
    // Fixed as told, it works (and an existing directory keeps its mode).
    chmod(&dir, 0o755);
    assert_ok(&meshd(&dir, &["init", "alpha"]));
    assert_eq!(mode_of(&dir), 0o755);
    assert_eq!(mode_of(&dir.join("ed25519_key.priv")), 0o600);
}

#[test]
fn start_refuses_a_key_others_can_read_or_replace() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    init_node(&dir, "alpha", free_port());
    let key = dir.join("ed25519_key.priv");

    chmod(&key, 0o644);
    let o = meshd(&dir, &["start", "-D"]);
    assert_exit1(&o);
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}: permissions 0644 are too open (group/world can read it); run chmod 600 {}",
            key.display(),
            key.display()
        )),
        "{}",
        show(&o)
    );

    chmod(&key, 0o600);
    chmod(&dir, 0o777);
    let o = meshd(&dir, &["start", "-D"]);
    chmod(&dir, 0o700);
    assert_exit1(&o);
    let err = stderr(&o);
    assert!(err.contains(&key.display().to_string()), "{}", show(&o));
    assert!(err.contains("0777"), "{}", show(&o));
    assert!(
        err.contains(&format!("chmod go-w {}", dir.display())),
        "{}",
        show(&o)
    );
    assert!(!dir.join("meshd.pid").exists());
}

#[test]
fn generate_keys_comments_out_the_old_key_and_replaces_files_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    assert_ok(&meshd(&dir, &["init", "alpha", "--port", "6551"]));
    let host = dir.join("hosts/alpha");
    let key = dir.join("ed25519_key.priv");
    chmod(&host, 0o640);
    let old_line = public_key_line(&read(&host));
    let old_key = read(&key);

    assert_ok(&meshd(&dir, &["generate-ed25519-keys"]));
    let text = read(&host);
    let new_line = public_key_line(&text);
    assert_ne!(new_line, old_line);
    assert!(text.starts_with("Port = 6551\n"), "{text}");
    assert!(text.contains(&format!("#{old_line}\n")), "{text}");
    assert!(text.ends_with(&format!("{new_line}\n")), "{text}");
    assert_eq!(text.matches("\nEd25519PublicKey").count(), 1, "{text}");
    assert_eq!(mode_of(&host), 0o640, "the host file keeps its mode");
    assert_eq!(mode_of(&key), 0o600);
    // As tinc: the old key stays in the same file, commented out, the new one after it.
    assert!(!key.with_extension("priv.old").exists());
    let commented: String = old_key.lines().map(|l| format!("#{l}\n")).collect();
    assert!(read(&key).starts_with(&commented));
    // The new private key is the one the host file announces.
    let loaded = meshd::keyfile::load_private_key(&key).unwrap();
    assert_eq!(new_line, format!("Ed25519PublicKey = {}", loaded.public()));
    let nd = meshd::config::NetDir::new(&dir);
    let parsed =
        meshd::config::load_host_config(&nd, &meshd::config::NodeName::new("alpha").unwrap())
            .unwrap();
    assert_eq!(
        parsed.ed25519_public_key.as_deref(),
        Some(loaded.public().to_string().as_str())
    );
    assert!(dotfiles(&dir).is_empty(), "{:?}", dotfiles(&dir));
}

#[test]
fn invite_refuses_an_open_invitations_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    init_node(&dir, "alpha", free_port());
    let inv = dir.join("invitations");
    std::fs::create_dir(&inv).unwrap();
    chmod(&inv, 0o755);
    let o = meshd(&dir, &["invite", "beta"]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains(&format!("chmod 700 {}", inv.display())),
        "{}",
        show(&o)
    );
    assert!(stdout(&o).is_empty(), "no URL: {}", show(&o));
    assert_eq!(std::fs::read_dir(&inv).unwrap().count(), 0);

    chmod(&inv, 0o700);
    let o = meshd(&dir, &["invite", "beta"]);
    assert_ok(&o);
    let names: Vec<String> = std::fs::read_dir(&inv)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for n in &names {
        assert_eq!(mode_of(&inv.join(n)), 0o600, "{n}");
    }
    assert!(dotfiles(&dir).is_empty(), "{:?}", dotfiles(&dir));
}

#[test]
fn join_makes_a_private_directory_and_the_inviter_refuses_an_open_invitation() {
    let tmp = tempfile::tempdir().unwrap();
    let (n1, n2) = (tmp.path().join("n1"), tmp.path().join("n2"));
    let mut reaper = Reaper::default();
    let port1 = free_port();
    init_node(&n1, "node_1", port1);
    start_node(&mut reaper, &n1, "node_1", port1, &[&n1]);

    // An invitation file others can read is refused by the running inviter, and kept.
    let url = stdout(&meshd(&n1, &["invite", "node_2"]))
        .trim()
        .to_string();
    let inv = n1.join("invitations");
    let file = std::fs::read_dir(&inv)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.ends_with("ed25519_key.priv"))
        .unwrap();
    chmod(&file, 0o644);
    let o = meshd(&n2, &["join", &url]);
    assert_exit1(&o);
    assert!(
        stderr(&o).contains("the inviter could not read this invitation"),
        "{}",
        show(&o)
    );
    assert!(!n2.exists(), "a refused join writes nothing");
    let log = read(&n1.join("meshd.log"));
    assert!(
        log.contains(&format!("chmod 600 {}", file.display())),
        "the inviter's log says how to fix it:\n{log}"
    );
    chmod(&file, 0o600);

    let port2 = free_port();
    let o = meshd(&n2, &["join", &url, "--port", &port2.to_string()]);
    assert_ok(&o);
    assert_eq!(mode_of(&n2), 0o700, "the joined network directory");
    assert_eq!(mode_of(&n2.join("ed25519_key.priv")), 0o600);
    assert_eq!(mode_of(&n2.join("invitation-data")), 0o600);
    assert_eq!(mode_of(&n2.join("hosts")), 0o755);
    assert_eq!(mode_of(&n2.join("hosts/node_2")), 0o644);
    assert_eq!(mode_of(&n2.join("tinc-up")), 0o755);
    // The inviter stored the joiner's key, complete, with no temporary file beside it.
    assert_eq!(mode_of(&n1.join("hosts/node_2")), 0o644);
    assert!(read(&n1.join("hosts/node_2")).starts_with("Ed25519PublicKey = "));
    // The inviter's address cache entry for node_2 is written just after the
    // join is answered (atomically, through a temporary file): wait for it.
    let cached = n1.join("cache/node_2");
    let t = std::time::Instant::now();
    while !cached.exists() && t.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(cached.exists(), "the inviter cached node_2's address");
    assert!(dotfiles(&n1).is_empty(), "{:?}", dotfiles(&n1));
    assert!(
        dotfiles(tmp.path()).is_empty(),
        "{:?}",
        dotfiles(tmp.path())
    );
    assert_ok(&meshd(&n1, &["stop"]));
}
