//! End-to-end (needs root; creates its own network namespaces and removes them):
//! three real daemons on a bridge form a direct UDP mesh through one hub; a
//! SIGKILLed node is seen unreachable within DeadInterval plus a margin; a
//! restarted one comes back.

use meshd_lab::netns::Lab;
use meshd_lab::require_netns;
use std::time::Duration;

#[test]
fn three_daemons_mesh_detect_a_kill_and_heal() {
    require_netns!();
    let mut lab = Lab::new("m", &["alpha", "beta", "gamma"]);
    lab.init_all();
    // alpha is the hub: it knows everyone; beta and gamma know only alpha.
    lab.hub("alpha");
    for n in ["alpha", "beta", "gamma"] {
        lab.start(n);
    }
    let all = ["alpha", "beta", "gamma"];
    let everyone_sees_everyone = |lab: &Lab| {
        all.iter().all(|n| {
            lab.reachable(n)
                .is_some_and(|r| all.iter().all(|m| r.iter().any(|x| x == m)))
        })
    };
    let took = lab
        .wait(Duration::from_secs(15), everyone_sees_everyone)
        .expect("no full mesh within 15 s");
    eprintln!("full mesh of 3 real daemons after {took:?}");

    // dump nodes shows direct UDP (udp_confirmed 0x80) to the others.
    let text = String::from_utf8_lossy(&lab.ctl("beta", &["dump", "nodes"]).stdout).into_owned();
    eprintln!("{text}");
    let gamma_line = text
        .lines()
        .find(|l| l.starts_with("gamma "))
        .expect("gamma in dump nodes");
    assert!(gamma_line.contains("at 192.0.2.3 port 655"), "{gamma_line}");
    let status = gamma_line
        .split(" status ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("status");
    assert!(
        u32::from_str_radix(status, 16).expect("hex status") & 0x90 == 0x90,
        "{gamma_line}"
    );

    // SIGKILL gamma: alpha and beta see it unreachable within its detection
    // deadline + margin. No node holds a VIP, so the pairs heartbeat at the
    // idle rate (2 s) and the deadline is 4.3-8.3 s (PROTOCOL §5.1).
    lab.kill("gamma", nix::sys::signal::Signal::SIGKILL);
    let gone = |lab: &Lab| {
        ["alpha", "beta"].iter().all(|n| {
            lab.reachable(n)
                .is_some_and(|r| !r.iter().any(|x| x == "gamma"))
        })
    };
    let detect = lab
        .wait(Duration::from_secs(12), gone)
        .expect("gamma still reachable 12 s after SIGKILL");
    eprintln!("SIGKILL detected by both peers after {detect:?} (idle pairs: deadline 4.3-8.3 s)");
    assert!(
        detect < Duration::from_millis(9000),
        "detection took {detect:?}"
    );

    // Restart gamma: reachable again on both.
    lab.start("gamma");
    let back = lab
        .wait(Duration::from_secs(15), everyone_sees_everyone)
        .expect("gamma did not come back");
    eprintln!("gamma back after {back:?}");

    // stop is clean: exit 0, pidfile and socket removed; then commands say "not running".
    let out = lab.ctl("beta", &["stop"]);
    assert!(
        out.status.success(),
        "stop: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = &lab.node("beta").netdir;
    assert!(!dir.join("meshd.pid").exists() && !dir.join("meshd.socket").exists());
    let out = lab.ctl("beta", &["dump", "nodes"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}
