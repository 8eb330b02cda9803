//! End-to-end: an IPv6 VIP held by a container behind its holder (needs
//! root; builds its own namespaces) — `netns_vip_owner.rs` over IPv6, with
//! its lab (`vip_probe::owner_lab`): node_2 serves fd00:1::10 with weight 5
//! from a container namespace on bridge br-c, which also holds node_2's TAP,
//! with `HealthCheck = fd00:1::10 presence` (Neighbour Solicitation probes);
//! node_3 serves it with weight 10 on its own TAP (a /128 `nodad`); the
//! client is a container behind node_4's bridge (fd00:1::60), no mesh
//! member, pinging the VIP every 10 ms.
//!
//! The container answers (found by its Neighbour Advertisements); when it
//! loses the address, presence withdraws node_2's VIP and the client fails
//! over to node_3; when it gets it back, node_2 offers it again. With the VIP
//! on the container only (never on node_2 itself), a SIGKILL of node_2's
//! daemon fails the client over within 500 ms, and `ip netns del` of the
//! container has node_2 withdraw its VIP within a second with at most one
//! ping lost: node_2 hears over rtnetlink that the owner left its bridge,
//! confirms it with fast solicitations for 20 ms while holding the VIP's
//! frames, then sends them on to node_3.

mod vip_probe;

use meshd_lab::netns;
use meshd_lab::require_netns;
use vip_probe::owner_lab::{
    container_holder_sigkill, container_namespace_deleted, presence_fails_over,
};

const VIP: &str = "fd00:1::10";

#[test]
fn an_ipv6_vip_in_a_container_behind_the_holder_answers_and_presence_fails_it_over() {
    require_netns!();
    netns::need_tools(&["ping", "bridge"]);
    presence_fails_over("v6", VIP);
}

#[test]
fn a_container_held_ipv6_vip_fails_over_on_sigkill_of_the_holder_daemon() {
    require_netns!();
    netns::need_tools(&["ping", "bridge"]);
    container_holder_sigkill("v6k", VIP);
}

#[test]
fn a_container_held_ipv6_vip_is_withdrawn_within_a_second_of_the_container_namespace_deleted() {
    require_netns!();
    netns::need_tools(&["ping", "bridge"]);
    container_namespace_deleted("v6d", VIP);
}
