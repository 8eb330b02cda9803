//! A container holding a VIP behind its holder leaves the bridge (simulated
//! reference scenario of `sim_vip_owner.rs`, with its container,
//! `sim::owner`): the driver tells node_2 the owner's MAC left; node_2
//! confirms with fast probes for 20 ms — `info VIP` and `dump vips` say
//! `presence confirming` meanwhile — then withdraws the VIP and sends the
//! frames it held on to a backup; a false alarm changes nothing.

mod sim;

use meshd::cli::{format_vip_info, format_vip_lines};
use meshd::node::Event;
use meshd::switch::MacAddr;
use meshd::vip::{PresenceSpec, VANISH_CONFIRM};
use sim::lab::*;
use sim::owner::*;
use std::net::IpAddr;
use std::time::Duration;

/// node_2's `info 10.1.1.10` text and its `Owner here:` line.
fn owner_line(lab: &Lab) -> (String, String) {
    let st = lab.net.node("node_2").vip_statuses(lab.net.now);
    let v = st
        .iter()
        .find(|v| v.vip == VIP.to_string())
        .expect("node_2 knows the VIP");
    let info = format_vip_info(v);
    let dump = format_vip_lines(v);
    let line = info
        .lines()
        .find(|l| l.starts_with("Owner here:"))
        .unwrap_or_default()
        .to_string();
    // `dump vips` ends node_2's own line with the same owner words.
    let words = line.trim_start_matches("Owner here:").trim();
    assert!(
        dump.lines()
            .any(|l| l.contains(" holder node_2 ") && l.ends_with(words)),
        "dump vips does not show {words:?}:\n{dump}"
    );
    (info, line)
}

/// While a vanish is being confirmed, `info` and `dump vips` say so (and how
/// long is left); after, the presence state: `present` again on a false
/// alarm, `absent` when the owner is gone.
#[test]
fn info_and_dump_show_the_owner_confirmation_and_presence_state() {
    let spec = PresenceSpec {
        interval: Duration::from_millis(100),
        rise: 2,
        fall: 2,
    };
    let (mut lab, up) = owner_lab(38, |v| v.presence = Some(spec));
    let ctr = MacAddr(CTR_MAC).to_string();
    let (_, line) = owner_line(&lab);
    assert!(
        line.starts_with(&format!("Owner here:   {ctr} (learned) seen "))
            && line.ends_with(" presence present"),
        "{line}"
    );

    // A false alarm: confirming, then present again once the container answers.
    let now = lab.net.now;
    lab.net.node_mut("node_2").station_left(now, CTR_MAC);
    let (info, line) = owner_line(&lab);
    let left = VANISH_CONFIRM.as_millis();
    assert!(
        line.ends_with(&format!(
            " presence confirming (owner left the bridge; fails in {left} ms unless it answers)"
        )),
        "{info}"
    );
    assert!(info.contains("Served here:  yes (healthy)"), "{info}");
    lab.net.run_for(ms(10));
    let (_, line) = owner_line(&lab);
    assert!(line.ends_with(" presence present"), "{line}");

    // The container goes: confirming, then absent.
    up.set(false);
    let now = lab.net.now;
    lab.net.node_mut("node_2").station_left(now, CTR_MAC);
    lab.net.run_for(ms(5));
    let (_, line) = owner_line(&lab);
    assert!(
        line.contains(" presence confirming (owner left the bridge; fails in "),
        "{line}"
    );
    lab.net.run_for(VANISH_CONFIRM);
    let (info, line) = owner_line(&lab);
    assert!(line.ends_with(" presence absent"), "{info}");
    assert!(
        info.contains("Served here:  yes (presence: no station answers for it: withdrawn)"),
        "{info}"
    );
    let json = lab.net.node("node_2").vip_statuses(lab.net.now);
    let o = json[0].owner.as_ref().expect("node_2 serves the VIP");
    assert_eq!(
        (o.presence.as_deref(), o.present, o.confirm_ms_left),
        (Some("absent"), Some(false), None)
    );
}

/// The container is deleted (its namespace goes, and with it its port on
/// node_2's bridge): the driver tells node_2 its MAC left the bridge.
/// node_2 confirms with fast probes, withdraws the VIP within ~20 ms (no
/// presence rounds to wait for), and the frames that reach it meanwhile —
/// held through the confirmation, or sent before node_5 learned of the
/// withdrawal — go on once to the holder node_5 will pick, so no probe is
/// lost. A false alarm (the entry aged out, the container still answers)
/// changes nothing and loses nothing.
#[test]
fn a_container_that_leaves_the_bridge_is_withdrawn_at_once_and_its_frames_go_on_to_a_backup() {
    let spec = PresenceSpec {
        interval: Duration::from_millis(100),
        rise: 2,
        fall: 2,
    };
    let (mut lab, up) = owner_lab(36, |v| v.presence = Some(spec));
    // Slow links, so frames are in flight when node_2 withdraws.
    for n in ["node_1", "node_3", "node_4", "node_5"] {
        lab.net
            .set_link_delay("node_2", n, Duration::from_millis(15));
    }
    lab.net.run_for(Duration::from_millis(500));
    let before = lab.probe_for(Duration::from_millis(300), 6100);
    // Answers take a round trip (30 ms) to come back.
    lab.net.run_for(Duration::from_millis(100));
    assert!(answered_by(&lab, before).iter().all(|h| *h == 2));

    // A false alarm: the container's entry went, the container did not.
    let now = lab.net.now;
    lab.net.node_mut("node_2").station_left(now, CTR_MAC);
    lab.net.pump(1);
    let alarm = lab.probe_for(Duration::from_millis(200), 6100);
    lab.net.run_for(Duration::from_millis(100));
    let (_, lost) = lab.outage(alarm.clone());
    assert_eq!(lost, 0, "a false alarm lost probes");
    assert!(answered_by(&lab, alarm).iter().all(|h| *h == 2));
    let c = lab.net.node("node_2").vip_engine().counters().clone();
    assert_eq!(c.owner_vanish_reports, 1, "{c:?}");
    assert_eq!(c.resteered, 0, "a false alarm re-steered frames: {c:?}");

    // The container really goes.
    let first = lab.probe_for(Duration::from_millis(50), 6100).start;
    up.set(false);
    let gone_at = lab.net.now;
    lab.net.node_mut("node_2").station_left(gone_at, CTR_MAC);
    lab.net.pump(1);
    let withdrawn = lab.net.run_until_cond(
        Duration::from_millis(200),
        Duration::from_millis(1),
        |net| {
            net.node("node_2")
                .vip_engine()
                .local_state(&IpAddr::V4(VIP))
                .is_some_and(|s| !s.offered)
        },
    );
    let range = first..lab.probe_for(Duration::from_millis(800), 6100).end;
    lab.net.run_for(Duration::from_millis(100));
    let (outage, lost) = lab.outage(range.clone());
    let by = answered_by(&lab, range);
    let c = lab.net.node("node_2").vip_engine().counters().clone();
    let delivered: u64 = ["node_3", "node_4"]
        .iter()
        .map(|n| lab.net.node(n).vip_engine().counters().resteer_delivered)
        .sum();
    eprintln!(
        "container gone: withdrawn after {withdrawn:?}, outage {outage:?}, {lost} lost; \
         held {}, re-steered {}, dropped {}; delivered by the backups {delivered}",
        c.vanish_held, c.resteered, c.resteer_dropped
    );
    assert!(
        withdrawn.is_some_and(|d| d <= Duration::from_millis(25)),
        "node_2 withdrew its VIP only after {withdrawn:?}"
    );
    assert_eq!(
        lost, 0,
        "probes lost across the container's removal: {by:?}"
    );
    assert!(c.resteered >= 1, "nothing was re-steered: {c:?}");
    assert_eq!(c.resteer_dropped, 0, "{c:?}");
    assert_eq!(
        delivered, c.resteered,
        "a re-steered frame was not delivered"
    );
    // One flow, one backup: the re-steered frames went where node_5 sends now.
    let tail: Vec<u8> = by.iter().rev().take(60).copied().collect();
    assert!(
        tail.iter().all(|h| *h == tail[0] && (*h == 3 || *h == 4)),
        "the flow did not settle on one backup: {by:?}"
    );
    assert!(
        by.iter().skip_while(|h| **h == 2).all(|h| *h == tail[0]),
        "re-steered frames went to another backup than node_5's choice: {by:?}"
    );
    let down = lab.net.nodes[1]
        .events
        .iter()
        .any(|(_, e)| matches!(e, Event::VipDown { .. }));
    assert!(down, "no vip-down on node_2");
}

/// A frame re-steered to a holder whose owner is gone too is dropped, never
/// sent on: two holders cannot bounce it between them.
#[test]
fn a_re_steered_frame_is_never_sent_on_again() {
    let spec = PresenceSpec {
        interval: Duration::from_millis(100),
        rise: 2,
        fall: 2,
    };
    let (mut lab, up) = owner_lab(37, |v| v.presence = Some(spec));
    up.set(false);
    lab.net.run_for(Duration::from_millis(600));
    // node_2's owner is gone: a frame for the VIP at its re-steer MAC, as
    // another holder would send it, is dropped and counted.
    let rmac = meshd::vip::resteer_mac(MacAddr(VMAC));
    assert_eq!(rmac, MacAddr([0x02, 0x6e, 10, 1, 1, 10]));
    let f = udp(rmac.0, CLIENT_MAC, CLIENT_IP, VIP, 6200, 53, &[0, 0, 0, 9]);
    let sent_before: u64 = lab.net.node("node_2").vip_engine().counters().resteered;
    let now = lab.net.now;
    assert!(lab.net.node_mut("node_3").send_frame(now, "node_2", &f));
    lab.net.pump(2);
    lab.net.run_for(Duration::from_millis(50));
    let c = lab.net.node("node_2").vip_engine().counters().clone();
    assert_eq!(c.resteer_dropped, 1, "{c:?}");
    assert_eq!(
        c.resteered, sent_before,
        "a re-steered frame was sent on: {c:?}"
    );
}
