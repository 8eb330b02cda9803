//! End-to-end: a VIP held by a container behind its holder (needs root;
//! builds its own namespaces). node_1 is the hub; node_2 serves 10.1.1.10
//! with weight 5 (active) from a container namespace on bridge br-c, which
//! also holds node_2's TAP, with `HealthCheck = 10.1.1.10 presence`; node_3
//! serves it with weight 10 on its own TAP (`vip-up`/`vip-down`); node_4's
//! TAP is on a bridge too, with a client container behind it that is no
//! mesh member (10.1.1.60). The client pings the VIP every 10 ms.
//!
//! Before meshd delivered steered frames to the VIP's owner, node_2 rewrote
//! them to its TAP's MAC and br-c handed them to node_2's own stack: 0
//! answers. Now the container answers; when it loses the address, presence
//! withdraws node_2's VIP and the client fails over to node_3 (the outage
//! is printed and bounded); when it gets the address back, node_2 offers it
//! again. A client container that is no mesh member, behind node_4's
//! bridge, reaches a VIP served from a TAP as it always did. With the VIP on
//! the container only (never on node_2 itself), a SIGKILL of node_2's daemon
//! fails the client over to node_3 within 500 ms, and deleting the container
//! namespace outright (`ip netns del`) has node_2 withdraw its VIP within a
//! second — at once, as it hears over rtnetlink that the owner left its
//! bridge — with no ping lost: what still reaches node_2 meanwhile goes on to
//! node_3.
//!
//! The lab and the scenarios are shared with `netns_vip_owner_v6.rs` (the
//! same over IPv6): `vip_probe::owner_lab`.

mod vip_probe;

use meshd_lab::netns;
use meshd_lab::require_netns;
use std::time::Duration;
use vip_probe::owner_lab::{
    container_holder_sigkill, container_namespace_deleted, eligible, mac_of, offered, owner_lab,
    presence_fails_over, station_behind, text,
};
use vip_probe::{finish_probe, start_probe_in};

const VIP: &str = "10.1.1.10";

#[test]
fn a_vip_in_a_container_behind_the_holder_answers_and_presence_fails_it_over() {
    require_netns!();
    netns::need_tools(&["ping", "bridge"]);
    presence_fails_over("vo", VIP);
}

#[test]
fn a_client_that_is_no_member_behind_a_bridge_reaches_a_vip_on_a_tap() {
    require_netns!();
    netns::need_tools(&["ping", "bridge"]);
    let mut lab = owner_lab("vn", VIP);
    // No container on node_2: presence keeps its VIP out, node_3 serves it
    // from its TAP. The client is a container behind node_4's bridge.
    let cli = station_behind(&mut lab, "node_4", "c4", "10.1.1.60/24");
    let ready = lab.wait(Duration::from_secs(10), |lab| {
        eligible(lab, "node_4", "node_3", VIP) && !offered(lab, "node_4", "node_2", VIP)
    });
    assert!(
        ready.is_some(),
        "node_4 does not see node_3 alone serving:\n{}",
        text(&lab, "node_4", &["dump", "vips"])
    );
    let probe = start_probe_in(&mut lab, &cli, "nonmember", 100, VIP);
    let r = finish_probe(&mut lab, &probe);
    eprintln!("non-member client: {} of {} answered", r.received, r.sent);
    assert!(
        r.received * 10 >= r.sent * 9,
        "the non-member client behind node_4 does not reach the VIP: {r:?}\n{}",
        text(&lab, "node_3", &["info", VIP])
    );
    // node_4's own stack, on the same bridge, still reaches it too.
    let ns = lab.node("node_4").ns.clone();
    let out = lab.exec_in(&ns, &["ping", "-c", "3", "-i", "0.2", "-W", "2", VIP]);
    assert!(
        out.status.success(),
        "node_4 itself cannot ping the VIP: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let info = text(&lab, "node_3", &["info", VIP]);
    let tap_mac = mac_of(&lab, &lab.node("node_3").ns, "mesh0");
    assert!(
        info.lines()
            .any(|l| l.starts_with("Owner here:") && l.contains(&tap_mac)),
        "node_3 does not deliver to its TAP ({tap_mac}):\n{info}"
    );
}

#[test]
fn a_container_held_vip_fails_over_on_sigkill_of_the_holder_daemon() {
    require_netns!();
    netns::need_tools(&["ping", "bridge"]);
    container_holder_sigkill("vok", VIP);
}

#[test]
fn a_container_held_vip_is_withdrawn_within_a_second_of_the_container_namespace_deleted() {
    require_netns!();
    netns::need_tools(&["ping", "bridge"]);
    container_namespace_deleted("vod", VIP);
}
