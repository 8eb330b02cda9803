//! tinc's address cache (tinc's address_cache.py): `init` and `join` make `cache/`; a node
//! writes `cache/NODE` when a session with a node it connects to comes up (not for nodes
//! that connected to it), the inviter when a join is accepted; a node whose host file lost
//! its `Address` lines is still found through the cache.

mod cli_support;

use cli_support::*;
use std::path::Path;
use std::time::Duration;

fn copy_host(from: &Path, to: &Path, name: &str) {
    std::fs::copy(from.join("hosts").join(name), to.join("hosts").join(name)).unwrap();
}

#[test]
fn the_address_cache_finds_a_node_without_address_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (pa, pb) = (free_port(), free_port());
    init_node(&a, "alpha", pa);
    init_node(&b, "beta", pb);
    assert!(a.join("cache").is_dir() && b.join("cache").is_dir());
    copy_host(&a, &b, "alpha");
    copy_host(&b, &a, "beta");
    append(&b.join("tinc.conf"), "ConnectTo = alpha\n");
    for d in [&a, &b] {
        append(
            &d.join("tinc.conf"),
            "HelloInterval = 100ms\nDeadInterval = 400ms\n",
        );
    }
    let mut reaper = Reaper::default();
    let pa = start_node(&mut reaper, &a, "alpha", pa, &[&a, &b]);
    let pb = start_node(&mut reaper, &b, "beta", pb, &[&a, &b]);
    let cached = b.join("cache/alpha");
    assert!(
        wait_until(Duration::from_secs(10), || cached.exists()),
        "beta never cached alpha"
    );
    assert!(
        sees_reachable(&b, "beta", "alpha", pa)
            || wait_until(Duration::from_secs(5), || sees_reachable(
                &b, "beta", "alpha", pa
            ))
    );
    assert!(
        read(&cached).contains(&format!("Address = 127.0.0.1 {pa}")),
        "{}",
        read(&cached)
    );
    // alpha does not connect to beta: it caches nothing.
    assert!(!a.join("cache/beta").exists());

    // beta forgets alpha's Address lines; the cache still leads it there.
    assert_ok(&meshd(&b, &["stop"]));
    let host = b.join("hosts/alpha");
    let text: String = read(&host)
        .lines()
        .filter(|l| !l.starts_with("Address"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&host, text).unwrap();
    start_node(&mut reaper, &b, "beta", pb, &[&a, &b]);
    assert!(
        wait_until(Duration::from_secs(10), || sees_reachable(
            &b, "beta", "alpha", pa
        )),
        "beta did not find alpha through cache/alpha"
    );
    for d in [&b, &a] {
        assert_ok(&meshd(d, &["stop"]));
    }
}

#[test]
fn a_join_makes_cache_and_the_inviter_caches_the_invitee() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, j) = (tmp.path().join("a"), tmp.path().join("j"));
    let port = free_port();
    init_node(&a, "alpha", port);
    let mut reaper = Reaper::default();
    start_node(&mut reaper, &a, "alpha", port, &[&a]);
    let o = meshd(&a, &["invite", "beta"]);
    assert_ok(&o);
    let url = stdout(&o).trim().to_string();
    assert_ok(&meshd(
        &j,
        &["join", &url, "--port", &free_port().to_string()],
    ));
    assert!(j.join("cache").is_dir());
    let cached = a.join("cache/beta");
    assert!(
        wait_until(Duration::from_secs(10), || cached.exists()),
        "the inviter did not cache the invitee"
    );
    assert!(
        read(&cached).contains("Address = 127.0.0.1\n"),
        "{}",
        read(&cached)
    );
    assert_ok(&meshd(&a, &["stop"]));
}
