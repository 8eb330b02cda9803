//! Issue 21: `start -U USER` drops to USER once the TAP, the sockets and the
//! pidfile are open, keeping only CAP_NET_ADMIN and CAP_NET_RAW, which its
//! scripts inherit (needs root; builds its own namespace and removes it). What
//! a user checks: a VIP holder running as `nobody` still puts its VIP on its
//! TAP (`vip-up`, run as nobody, calls `ip addr add`) and takes it off again
//! when it stops (`vip-down`).

use meshd_lab::netns::{self, Lab};
use meshd_lab::require_netns;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const VIP: &str = "10.1.7.10";

fn vip_on_tap(lab: &Lab) -> bool {
    let out = lab.exec("alpha", &["ip", "-o", "-4", "addr", "show", "dev", "mesh0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!("inet {VIP}/32"))
}

#[test]
fn a_vip_holder_running_as_nobody_still_puts_its_vip_on_the_tap() {
    require_netns!();
    let mut lab = Lab::new("priv", &["alpha"]);
    lab.init_all();
    lab.conf("alpha", "Interface = mesh0");
    lab.overlay_up("alpha", "10.1.7.1/24");
    let netdir = lab.node("alpha").netdir.clone();
    netns::append(
        &netdir.join("hosts/alpha"),
        &format!("VirtualIP = {VIP}/24\n"),
    );
    for (script, op) in [("vip-up", "add"), ("vip-down", "del")] {
        lab.script(
            "alpha",
            script,
            &format!("#!/bin/sh\nip addr {op} \"$VIP/32\" dev \"$INTERFACE\"\n"),
        );
    }
    // nobody must reach the scripts: the directory (and the lab's) readable by all,
    // the private key still 0600 (it is read before the drop).
    for dir in [
        lab.dir.path().to_path_buf(),
        netdir.clone(),
        netdir.join("hosts"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for f in ["tinc.conf", "hosts/alpha"] {
        std::fs::set_permissions(netdir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    lab.start_with("alpha", &["-U", "nobody"]);
    let pid = lab.pid("alpha").expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains(&nobody.uid.to_string())),
        "not running as nobody:\n{status}"
    );
    let log = || std::fs::read_to_string(netdir.join("meshd.log")).unwrap_or_default();
    lab.wait(Duration::from_secs(10), vip_on_tap)
        .unwrap_or_else(|| panic!("vip-up as nobody did not put {VIP} on mesh0:\n{}", log()));
    let out = lab.ctl("alpha", &["stop"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !vip_on_tap(&lab),
        "vip-down as nobody left {VIP} on mesh0:\n{}",
        log()
    );
    assert!(
        !log().contains("exited with status"),
        "a script failed:\n{}",
        log()
    );
}
