//! End-to-end (needs root; creates its own network namespaces and removes them): the
//! reference five-node network built with init / invite / join / start alone. node_1 is
//! initialised and started; it invites node_2..node_5; each joins from its own namespace
//! with `meshd join URL --start --force`; all five see all five; the generated tinc-up
//! (enabled by --force) gave each its overlay address (a ping crosses the mesh); a URL used
//! twice fails the second time.

use meshd_lab::netns::{self, meshd, need_tools, Lab};
use meshd_lab::require_netns;
use std::process::Command;
use std::time::Duration;

const NAMES: [&str; 5] = ["node_1", "node_2", "node_3", "node_4", "node_5"];

#[test]
fn five_nodes_from_init_invite_join() {
    require_netns!();
    need_tools(&["ping"]);
    let mut lab = Lab::new("i", &NAMES);
    let n1 = lab.node("node_1").netdir.clone();
    let out = lab.ctl("node_1", &["init", "node_1", "--address", "192.0.2.1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    netns::append(
        &n1.join("tinc-up"),
        "ip addr replace 10.1.1.1/24 dev \"$INTERFACE\"\n",
    );
    lab.start("node_1");

    let mut urls = Vec::new();
    for (i, name) in NAMES.iter().enumerate().skip(1) {
        let out = lab.ctl(
            "node_1",
            &[
                "invite",
                name,
                "--set",
                &format!("Ifconfig=10.1.1.{}/24", i + 1),
            ],
        );
        assert!(
            out.status.success(),
            "invite {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(url.starts_with("192.0.2.1:655/"), "{url}");
        urls.push(url);
    }
    let listed =
        String::from_utf8_lossy(&lab.ctl("node_1", &["dump", "invitations"]).stdout).into_owned();
    assert_eq!(listed.lines().count(), 4, "{listed}");

    for (name, url) in NAMES.iter().skip(1).zip(&urls) {
        let node = lab.node(name);
        let out = Command::new("ip")
            .args(["netns", "exec", &node.ns, meshd(), "-c"])
            .arg(&node.netdir)
            .args(["join", url, "--start", "--force"])
            .output()
            .expect("run meshd join");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "join {name}: {err}");
        assert!(err.contains("Invitation successfully accepted."), "{err}");
        let pid = lab.pid(name).expect("joined node's pid");
        lab.pids.push(pid);
    }
    let everyone_sees_everyone = |lab: &Lab| {
        NAMES.iter().all(|n| {
            lab.reachable(n)
                .is_some_and(|r| NAMES.iter().all(|m| r.iter().any(|x| x == m)))
        })
    };
    let took = lab
        .wait(Duration::from_secs(20), everyone_sees_everyone)
        .expect("the five joined nodes never formed a full mesh");
    eprintln!("five nodes built by invite/join: full mesh {took:?} after the last join");
    let listed = lab.ctl("node_1", &["dump", "invitations"]);
    assert!(listed.stdout.is_empty(), "all four invitations used");

    // The tinc-up written from the invitation's Ifconfig gave node_5 its address.
    let out = lab.exec(
        "node_5",
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.1.1.2"],
    );
    assert!(
        out.status.success(),
        "ping over the overlay: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same URL a second time: refused, nothing written.
    let again = lab.dir.path().join("again");
    let node5 = lab.node("node_5");
    let out = Command::new("ip")
        .args(["netns", "exec", &node5.ns, meshd(), "-c"])
        .arg(&again)
        .args(["join", &urls[0]])
        .output()
        .expect("run meshd join");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already used"), "{err}");
    assert!(!again.exists());

    for n in NAMES.iter().rev() {
        let out = lab.ctl(n, &["stop"]);
        assert!(out.status.success(), "stop {n}");
    }
}
