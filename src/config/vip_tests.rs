//! Tests of the VIP configuration ([`super`]): `VirtualIP`, `VirtualMAC`, `HealthCheck`,
//! the VIP settings, and the refusals of bad input with file and line.

use super::super::parse::parse_config_text;
use super::*;
use sha2::{Digest, Sha256};
use std::path::Path;

fn parse(text: &str) -> Result<(VipSettings, Vec<String>), ConfigError> {
    let lines = parse_config_text(text, Path::new("/n/meshd.conf"))?;
    let mut warnings = Vec::new();
    let s = parse_vip_settings(&lines, &mut warnings)?;
    Ok((s, warnings))
}

fn ok(text: &str) -> VipSettings {
    let (s, w) = parse(text).unwrap();
    assert!(w.is_empty(), "{w:?}");
    s
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn mac_derivation() {
    assert_eq!(
        virtual_mac_for(ip("10.1.1.10")),
        [0x02, 0x6d, 0x0a, 0x01, 0x01, 0x0a]
    );
    assert_eq!(
        fmt_mac(&virtual_mac_for(ip("10.1.1.10"))),
        "02:6d:0a:01:01:0a"
    );
    let v6 = virtual_mac_for(ip("2001:db8::10"));
    assert_eq!(&v6[..2], &[0x06, 0x6d]);
    let h = Sha256::digest(ip6_octets("2001:db8::10"));
    assert_eq!(&v6[2..], &h[..4]);
    for mac in [virtual_mac_for(ip("192.0.2.1")), v6] {
        assert_eq!(mac[0] & 0x01, 0, "unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
    }
    assert_ne!(v6, virtual_mac_for(ip("2001:db8::11")));
}

fn ip6_octets(s: &str) -> [u8; 16] {
    match ip(s) {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => unreachable!(),
    }
}

#[test]
fn defaults_without_vips() {
    let s = ok("Name = alpha\n");
    assert_eq!(s, VipSettings::default());
    assert_eq!(s.hold_down, Duration::from_secs(1));
    assert_eq!(s.flow_idle_timeout, Duration::from_secs(60));
    assert_eq!(s.shutdown_grace, ms(500));
    assert!(s.health_checks().is_empty());
}

#[test]
fn virtual_ip_forms() {
    let s = ok(
        "VirtualIP = 10.1.1.10/24\nvirtualip 10.1.2.10/24#5\nVIRTUALIP=10.1.3.10\n\
         VirtualIP = 2001:db8::10/64#3\nVirtualIP = 10.1.4.10 # 7\n",
    );
    let got: Vec<_> = s
        .vips
        .iter()
        .map(|v| (v.address, v.prefix_len, v.weight, v.mac_overridden))
        .collect();
    assert_eq!(
        got,
        vec![
            (ip("10.1.1.10"), 24, 10, false),
            (ip("10.1.2.10"), 24, 5, false),
            (ip("10.1.3.10"), 32, 10, false),
            (ip("2001:db8::10"), 64, 3, false),
            (ip("10.1.4.10"), 32, 7, false),
        ]
    );
    assert_eq!(s.vips[0].virtual_mac, [0x02, 0x6d, 10, 1, 1, 10]);
    assert_eq!(ok("VirtualIP = 2001:db8::1\n").vips[0].prefix_len, 128);
    assert!(s.vips.iter().all(|v| v.checks.is_empty()));
    assert_eq!(s.find(ip("10.1.2.10")).map(|v| v.weight), Some(5));
    assert!(s.find(ip("10.9.9.9")).is_none());
}

#[test]
fn virtual_ip_errors() {
    assert_eq!(
        err("Name = a\nVirtualIP = 10.1.1.300/24\n"),
        "/n/meshd.conf:2: VirtualIP: '10.1.1.300/24' is not an IP address[/prefix][#weight]"
    );
    for bad in [
        "foo",
        "10.1.1.1/",
        "10.1.1.1/x",
        "10.1.1.1/+8",
        "10.1.1.1 extra",
    ] {
        assert!(
            err(&format!("VirtualIP = {bad}\n")).contains("is not an IP address[/prefix][#weight]"),
            "{bad}"
        );
    }
    assert!(err("VirtualIP = 10.1.1.1/33\n").contains("prefix length must be 0-32"));
    assert!(err("VirtualIP = ::10/129\n").contains("prefix length must be 0-128"));
    assert!(err("VirtualIP = 10.1.1.1#-1\n").contains("'-1' in '10.1.1.1#-1' is not a weight"));
    assert!(err("VirtualIP = 10.1.1.1#\n").contains("is not a weight"));
    for bad in [
        "0.0.0.0",
        "127.0.0.1",
        "224.0.0.5",
        "255.255.255.255",
        "::",
        "::1",
        "ff02::1",
    ] {
        assert!(
            err(&format!("VirtualIP = {bad}\n")).contains("cannot be a virtual IP"),
            "{bad}"
        );
    }
}

#[test]
fn duplicate_vip_errors_at_second_line() {
    assert_eq!(
        err("VirtualIP = 10.1.1.10/24\nVirtualIP = 10.1.1.11\nVirtualIP = 10.1.1.10#5\n"),
        "/n/meshd.conf:3: VirtualIP: 10.1.1.10 is already configured at /n/meshd.conf:1"
    );
}

#[test]
fn ipv6_virtual_ip_bad_input() {
    assert_eq!(
        err("Name = a\nVirtualIP = fe80::10/64\n"),
        "/n/meshd.conf:2: VirtualIP: 'fe80::10/64': fe80::10 is link-local (fe80::/10); a virtual IP must be routable (use a ULA such as fd00::/8)"
    );
    assert!(err("VirtualIP = febf::1\n").contains("is link-local"));
    assert!(err("VirtualIP = ff05::10\n").contains("cannot be a virtual IP"));
    assert!(err("VirtualIP = ::ffff:10.1.1.10\n").contains("IPv4-mapped"));
    // fec0:: is past fe80::/10: accepted.
    assert_eq!(ok("VirtualIP = fec0::1\n").vips.len(), 1);
    // A VIP equal to the node's own address (a host Subnet or an Address line).
    assert_eq!(
        err("Subnet = fd00:1::2/128\nVirtualIP = fd00:1::2/64\n"),
        "/n/meshd.conf:2: VirtualIP: fd00:1::2 is this node's own address (Subnet at /n/meshd.conf:1); a VIP must be an address of its own"
    );
    assert!(err("VirtualIP = 10.1.1.2/24\nSubnet = 10.1.1.2\n")
        .starts_with("/n/meshd.conf:1: VirtualIP: 10.1.1.2 is this node's own address"));
    assert!(err("Address = fd00:9::1 655\nVirtualIP = fd00:9::1\n")
        .contains("own address (Address at /n/meshd.conf:1)"));
    // A network Subnet containing the VIP is fine (that is the usual case).
    assert_eq!(
        ok("Subnet = fd00:1::/64\nVirtualIP = fd00:1::10/64\nVirtualIP = 10.1.1.10/24\n")
            .vips
            .len(),
        2
    );
}

#[test]
fn ipv6_macs_never_equal_ipv4_ones() {
    // Derived IPv6 MACs start 06:6d, derived IPv4 ones 02:6d.
    for s in ["fd00:1::10", "2001:db8::1", "fd00::a01:10a", "::a01:10a"] {
        assert_eq!(&virtual_mac_for(ip(s))[..2], &[0x06, 0x6d], "{s}");
    }
    // The documented example (PROTOCOL.md §7.1).
    assert_eq!(
        fmt_mac(&virtual_mac_for(ip("fd00:1::10"))),
        fmt_mac(&{
            let h = Sha256::digest(ip6_octets("fd00:1::10"));
            [0x06, 0x6d, h[0], h[1], h[2], h[3]]
        })
    );
    // An override that collides with a derived IPv6 MAC of another VIP is refused.
    let v6mac = fmt_mac(&virtual_mac_for(ip("fd00:1::10")));
    let e = err(&format!(
        "VirtualIP = fd00:1::10/64\nVirtualIP = 10.1.1.10/24\nVirtualMAC = 10.1.1.10 {v6mac}\n"
    ));
    assert!(e.starts_with("/n/meshd.conf:3: VirtualMAC "), "{e}");
    assert!(
        e.contains("also the virtual MAC of fd00:1::10 (/n/meshd.conf:1)"),
        "{e}"
    );
    // A dual-stack service: one IPv4 and one IPv6 VIP, distinct MACs.
    let s = ok("VirtualIP = 10.1.1.10/24\nVirtualIP = fd00:1::10/64\n");
    assert_ne!(s.vips[0].virtual_mac, s.vips[1].virtual_mac);
}

#[test]
fn virtual_mac_override() {
    let s = ok("VirtualIP = 10.1.1.10/24\nVirtualIP = 10.1.1.11\n\
         VirtualMAC = 10.1.1.10 02:00:5E:00:01:0a\n");
    assert_eq!(s.vips[0].virtual_mac, [2, 0, 0x5e, 0, 1, 0x0a]);
    assert!(s.vips[0].mac_overridden);
    assert_eq!(s.vips[1].virtual_mac, virtual_mac_for(ip("10.1.1.11")));
    assert!(!s.vips[1].mac_overridden);
}

#[test]
fn virtual_mac_rules() {
    // Not locally administered: a warning.
    let (s, w) =
        parse("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 00:11:22:33:44:55\n").unwrap();
    assert_eq!(s.vips[0].virtual_mac, [0, 0x11, 0x22, 0x33, 0x44, 0x55]);
    assert_eq!(w.len(), 1);
    assert!(w[0].starts_with("/n/meshd.conf:2: VirtualMAC 00:11:22:33:44:55 for 10.1.1.10 is not locally administered"), "{w:?}");
    // Multicast: an error.
    assert_eq!(
        err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 03:00:00:00:00:01\n"),
        "/n/meshd.conf:2: VirtualMAC: 03:00:00:00:00:01 is a multicast address; a virtual MAC must be unicast"
    );
    assert!(
        err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 ff:ff:ff:ff:ff:ff\n")
            .contains("multicast")
    );
    assert!(
        err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 00:00:00:00:00:00\n")
            .contains("not a usable MAC")
    );
    // No VirtualIP for that address (even a later one in another VIP is not enough).
    assert_eq!(
        err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.11 02:00:00:00:00:01\n"),
        "/n/meshd.conf:2: VirtualMAC: 10.1.1.11 has no VirtualIP line"
    );
    // Syntax.
    assert!(
        err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10\n").contains("expected 'ADDRESS MAC'")
    );
    assert_eq!(
        err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 02:00:00:00:00\n"),
        "/n/meshd.conf:2: VirtualMAC: invalid MAC address \"02:00:00:00:00\": 5 ':'-separated \
         groups, expected 6 (a MAC is six groups of 1-2 hex digits separated by ':', e.g. \
         02:00:00:00:00:0a)"
    );
    // One MAC grammar (tinc's, MacAddr's): one-digit groups yes, '-' no.
    let s = ok("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 2:0:0:0:0:a\n");
    assert_eq!(s.vips[0].virtual_mac, [2, 0, 0, 0, 0, 0x0a]);
    assert!(
        err("VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 02-00-00-00-00-0a\n")
            .contains("'-' is not a MAC separator (use ':')")
    );
    assert!(
        err("VirtualIP = 10.1.1.10\nVirtualMAC = x 02:00:00:00:00:01\n")
            .contains("'x' is not an IP address")
    );
    // Twice for the same VIP.
    assert_eq!(
        err(
            "VirtualIP = 10.1.1.10\nVirtualMAC = 10.1.1.10 02:00:00:00:00:01\n\
             VirtualMAC = 10.1.1.10 02:00:00:00:00:02\n"
        ),
        "/n/meshd.conf:3: VirtualMAC: 10.1.1.10 already has a VirtualMAC at /n/meshd.conf:2"
    );
    // The VirtualMAC line may come before the VirtualIP line.
    let s = ok("VirtualMAC = 10.1.1.10 02:00:00:00:00:01\nVirtualIP = 10.1.1.10\n");
    assert!(s.vips[0].mac_overridden);
}

#[test]
fn virtual_macs_must_be_distinct() {
    // An override equal to another VIP's derived MAC.
    assert_eq!(
        err("VirtualIP = 10.1.1.10\nVirtualIP = 10.1.1.11\nVirtualMAC = 10.1.1.11 02:6d:0a:01:01:0a\n"),
        "/n/meshd.conf:3: VirtualMAC 02:6d:0a:01:01:0a of 10.1.1.11 is also the virtual MAC of 10.1.1.10 (/n/meshd.conf:1); every VIP needs its own"
    );
    // Two overrides alike.
    let e = err(
        "VirtualIP = 10.1.1.10\nVirtualIP = 10.1.1.11\nVirtualMAC = 10.1.1.10 02:00:00:00:00:01\n\
         VirtualMAC = 10.1.1.11 02:00:00:00:00:01\n",
    );
    assert!(
        e.starts_with("/n/meshd.conf:4: VirtualMAC 02:00:00:00:00:01"),
        "{e}"
    );
}

#[test]
fn health_checks_with_defaults() {
    let s = ok("VirtualIP = 10.1.1.10/24\n\
         HealthCheck = 10.1.1.10 exec /usr/local/bin/check-dns --fast\n\
         HealthCheck = 10.1.1.10 tcp 127.0.0.1:53\n\
         HealthCheck = 10.1.1.10 udp [::1]:53\n");
    let c = &s.vips[0].checks;
    assert_eq!(c.len(), 3);
    assert_eq!(
        c[0].kind,
        CheckKind::Exec("/usr/local/bin/check-dns --fast".into())
    );
    assert_eq!(c[1].kind, CheckKind::Tcp("127.0.0.1:53".parse().unwrap()));
    assert_eq!(
        c[2].kind,
        CheckKind::Udp {
            addr: "[::1]:53".parse().unwrap(),
            send: Vec::new(),
            expect: None
        }
    );
    for check in c {
        assert_eq!(check.vip, ip("10.1.1.10"));
        assert_eq!((check.interval, check.timeout), (ms(500), ms(500)));
        assert_eq!((check.rise, check.fall), (2, 2));
    }
    assert_eq!(c[1].origin, "/n/meshd.conf:3");
    assert_eq!(s.health_checks().len(), 3);
}

#[test]
fn health_check_options() {
    let s = ok("VirtualIP = 10.1.1.10\n\
         HealthCheck = 10.1.1.10 tcp interval=1s 127.0.0.1:53 timeout=300ms rise=3 fall=1\n\
         HealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=0A0b expect=ff rise=5\n\
         HealthCheck = 10.1.1.10 exec timeout=100ms  fall=4   FOO=x  test -f '/a b'  rise=9\n");
    let c = &s.vips[0].checks;
    assert_eq!(
        (c[0].interval, c[0].timeout, c[0].rise, c[0].fall),
        (ms(1000), ms(300), 3, 1)
    );
    assert_eq!(
        c[1].kind,
        CheckKind::Udp {
            addr: "127.0.0.1:53".parse().unwrap(),
            send: vec![0x0a, 0x0b],
            expect: Some(vec![0xff])
        }
    );
    assert_eq!((c[1].rise, c[1].fall), (5, 2));
    // exec: options only before the command; the command is kept verbatim.
    assert_eq!(
        c[2].kind,
        CheckKind::Exec("FOO=x  test -f '/a b'  rise=9".into())
    );
    assert_eq!((c[2].timeout, c[2].fall, c[2].rise), (ms(100), 4, 2));
}

#[test]
fn global_check_defaults() {
    let (s, w) = parse(
        "VirtualIP = 10.1.1.10\nHealthCheckInterval = 200ms\nHealthCheckTimeout = 1s\n\
         HealthCheckRise = 4\nHealthCheckFall = 3\n\
         HealthCheck = 10.1.1.10 tcp 127.0.0.1:80\n\
         HealthCheck = 10.1.1.10 tcp 127.0.0.1:81 timeout=100ms\n",
    )
    .unwrap();
    let c = &s.vips[0].checks;
    assert_eq!(
        (c[0].interval, c[0].timeout, c[0].rise, c[0].fall),
        (ms(200), ms(1000), 4, 3)
    );
    assert_eq!((c[1].interval, c[1].timeout), (ms(200), ms(100)));
    // The global mismatch is warned about once, at the HealthCheckTimeout line.
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with(
        "/n/meshd.conf:3: HealthCheckTimeout (1s) is longer than HealthCheckInterval (200ms)"
    ));
    // A check's own mismatch is warned about at its line.
    let (_, w) =
        parse("VirtualIP = 10.1.1.10\nHealthCheck = 10.1.1.10 tcp 127.0.0.1:80 interval=100ms\n")
            .unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with(
        "/n/meshd.conf:2: HealthCheck timeout (500ms) is longer than its interval (100ms)"
    ));
}

#[test]
fn timing_variables() {
    let s = ok("VIPHoldDown = 2.5s\nFlowIdleTimeout = 5m\nShutdownGrace = 0\n");
    assert_eq!(s.hold_down, ms(2500));
    assert_eq!(s.flow_idle_timeout, Duration::from_secs(300));
    assert_eq!(s.shutdown_grace, Duration::ZERO);
    assert_eq!(ok("viPholddown = 0ms\n").hold_down, Duration::ZERO);
    assert!(err("FlowIdleTimeout = 0\n")
        .contains("bad value for FlowIdleTimeout: '0' must be greater than zero"));
    assert!(err("VIPHoldDown = soon\n")
        .starts_with("/n/meshd.conf:1: bad value for VIPHoldDown: 'soon' is not a duration"));
    assert!(err("ShutdownGrace = -1s\n").contains("bad value for ShutdownGrace"));
    assert!(err("HealthCheckInterval = 0s\n").contains("bad value for HealthCheckInterval"));
    assert!(err("HealthCheckTimeout = x\n").contains("bad value for HealthCheckTimeout"));
    assert!(err("HealthCheckRise = 0\n")
        .contains("bad value for HealthCheckRise: '0' is not a positive count"));
    assert!(err("HealthCheckFall = +2\n").contains("bad value for HealthCheckFall"));
    // Given twice: the first wins, with a warning.
    let (s, w) = parse("VIPHoldDown = 2s\nVIPHoldDown = 3s\n").unwrap();
    assert_eq!(s.hold_down, Duration::from_secs(2));
    assert_eq!(w.len(), 1);
}

#[test]
fn health_check_errors() {
    let e = |line: &str| err(&format!("VirtualIP = 10.1.1.10\n{line}\n"));
    assert_eq!(
        e("HealthCheck = 10.1.1.11 tcp 127.0.0.1:53"),
        "/n/meshd.conf:2: HealthCheck: 10.1.1.11 has no VirtualIP line"
    );
    assert_eq!(
        e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 interval=5x"),
        "/n/meshd.conf:2: HealthCheck: bad interval: '5x' is not a duration (e.g. 100ms, 2s, 1.5s, 1m; a bare number means seconds)"
    );
    assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 timeout=0")
        .contains("bad timeout: '0' must be greater than zero"));
    assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 rise=0")
        .contains("bad rise: '0' is not a positive count"));
    assert!(e("HealthCheck = 10.1.1.10 exec fall=x true")
        .contains("bad fall: 'x' is not a positive count"));
    assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 rise=1 rise=2")
        .contains("rise= is given twice"));
    assert!(e("HealthCheck = x tcp 127.0.0.1:53").contains("HealthCheck: 'x' is not an IP address"));
    assert!(e("HealthCheck = 10.1.1.10").contains("expected 'ADDRESS exec|tcp|udp|presence ...'"));
    assert!(e("HealthCheck = 10.1.1.10 icmp 127.0.0.1").contains("'icmp' is not a check type"));
    assert!(e("HealthCheck = 10.1.1.10 exec").contains("exec needs a command"));
    assert!(e("HealthCheck = 10.1.1.10 exec interval=1s").contains("exec needs a command"));
    assert!(e("HealthCheck = 10.1.1.10 tcp").contains("tcp needs an address:port"));
    assert!(e("HealthCheck = 10.1.1.10 udp rise=1").contains("udp needs an address:port"));
    assert!(e("HealthCheck = 10.1.1.10 tcp localhost:53")
        .contains("'localhost:53' is not an address:port"));
    assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1").contains("is not an address:port"));
    assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:0").contains("port 0"));
    assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 127.0.0.1:54")
        .contains("unexpected '127.0.0.1:54'"));
    assert!(e("HealthCheck = 10.1.1.10 tcp 127.0.0.1:53 send=00")
        .contains("unknown option 'send=00' for tcp"));
    assert!(e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 foo=1")
        .contains("unknown option 'foo=1' for udp"));
    assert!(e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=zz")
        .contains("bad send: 'zz' is not hex bytes"));
    assert!(e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=abc").contains("bad send"));
    assert!(e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 expect=")
        .contains("bad expect: it must not be empty"));
    assert!(
        e("HealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=00 send=01")
            .contains("send= is given twice")
    );
    // An empty send= is an empty datagram.
    let s = ok("VirtualIP = 10.1.1.10\nHealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=\n");
    assert!(matches!(&s.vips[0].checks[0].kind, CheckKind::Udp { send, .. } if send.is_empty()));
}

#[test]
fn multi_vip_config() {
    let lines = parse_config_text(
        "Name = alpha\nHealthCheckFall = 3\nVIPHoldDown = 500ms\n\
         VirtualIP = 10.1.1.10/24\nHealthCheck = 10.1.1.10 udp 127.0.0.1:53 send=00\n",
        Path::new("/n/meshd.conf"),
    )
    .unwrap()
    .into_iter()
    .chain(
        parse_config_text(
            "Subnet = 10.1.1.2/32\nVirtualIP = 10.1.1.20/24#20\nVirtualIP = 2001:db8::53/64#5\n\
             VirtualMAC = 10.1.1.20 02:00:00:00:00:20\n\
             HealthCheck = 2001:db8::53 tcp [::1]:53 rise=1\n\
             HealthCheck = 10.1.1.20 exec /bin/true\nHealthCheck = 10.1.1.20 tcp 127.0.0.1:80\n",
            Path::new("/n/hosts/alpha"),
        )
        .unwrap(),
    )
    .collect::<Vec<_>>();
    let mut warnings = Vec::new();
    let s = parse_vip_settings(&lines, &mut warnings).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(s.hold_down, ms(500));
    let addrs: Vec<_> = s.vips.iter().map(|v| v.address).collect();
    assert_eq!(
        addrs,
        [ip("10.1.1.10"), ip("10.1.1.20"), ip("2001:db8::53")]
    );
    let v = &s.vips;
    assert_eq!((v[0].weight, v[1].weight, v[2].weight), (10, 20, 5));
    assert_eq!(v[0].checks.len(), 1);
    assert_eq!(v[0].checks[0].fall, 3);
    assert_eq!(v[1].virtual_mac, [2, 0, 0, 0, 0, 0x20]);
    assert_eq!(v[1].checks.len(), 2);
    assert_eq!(v[1].checks[0].origin, "/n/hosts/alpha:6");
    assert_eq!(v[2].virtual_mac, virtual_mac_for(ip("2001:db8::53")));
    assert_eq!((v[2].checks[0].rise, v[2].checks[0].fall), (1, 3));
    let all: Vec<_> = s.health_checks().iter().map(|c| c.vip).collect();
    assert_eq!(
        all,
        [
            ip("10.1.1.10"),
            ip("10.1.1.20"),
            ip("10.1.1.20"),
            ip("2001:db8::53")
        ]
    );
}

#[test]
fn known_variables() {
    for var in [
        "VirtualIP",
        "VirtualMAC",
        "HealthCheck",
        "HealthCheckInterval",
        "HealthCheckTimeout",
        "HealthCheckRise",
        "HealthCheckFall",
        "VIPHoldDown",
        "FlowIdleTimeout",
        "ShutdownGrace",
    ] {
        assert!(super::super::known::is_known(var), "{var}");
    }
    assert!(super::super::known::is_multi_valued("healthcheck"));
}

#[test]
fn vip_owner_and_presence() {
    let s = ok("VirtualIP = 10.1.1.10/24\n\
                VIPOwner = 10.1.1.10 02:42:AC:11:00:02\n\
                HealthCheck = 10.1.1.10 presence interval=100ms rise=3 fall=1\n\
                HealthCheck = 10.1.1.10 tcp 127.0.0.1:53\n");
    let v = &s.vips[0];
    assert_eq!(v.owner, Some([0x02, 0x42, 0xac, 0x11, 0, 2]));
    let p = v.presence().expect("a presence check");
    assert_eq!((p.interval, p.rise, p.fall), (ms(100), 3, 1));
    assert_eq!(p.origin, "/n/meshd.conf:3");
    // The driver runs only the tcp check.
    let driver = s.health_checks();
    assert_eq!(driver.len(), 1);
    assert!(matches!(driver[0].kind, CheckKind::Tcp(_)));
    // Defaults from the global settings.
    let s =
        ok("HealthCheckInterval = 750ms\nVirtualIP = fd00::10\nHealthCheck = fd00::10 presence\n");
    let p = s.vips[0].presence().expect("presence");
    assert_eq!((p.interval, p.rise, p.fall), (ms(750), 2, 2));
}

#[test]
fn bad_vip_owner_and_presence_lines_name_the_line() {
    for (text, want) in [
        (
            "VirtualIP = 10.1.1.10\nVIPOwner = 10.1.1.11 02:00:00:00:00:01\n",
            "meshd.conf:2: VIPOwner: 10.1.1.11 has no VirtualIP line",
        ),
        (
            "VirtualIP = 10.1.1.10\nVIPOwner = 10.1.1.10\n",
            "meshd.conf:2: VIPOwner: '10.1.1.10': expected 'ADDRESS MAC'",
        ),
        (
            "VirtualIP = 10.1.1.10\nVIPOwner = 10.1.1.10 03:00:00:00:00:01\n",
            "meshd.conf:2: VIPOwner: 03:00:00:00:00:01 is not a station's MAC",
        ),
        (
            "VirtualIP = 10.1.1.10\nVirtualIP = 10.1.1.20\nVIPOwner = 10.1.1.10 02:6d:0a:01:01:14\n",
            "meshd.conf:3: VIPOwner: 02:6d:0a:01:01:14 is the virtual MAC of 10.1.1.20",
        ),
        (
            "VirtualIP = 10.1.1.10\nVIPOwner = 10.1.1.10 02:00:00:00:00:01\nVIPOwner = 10.1.1.10 02:00:00:00:00:02\n",
            "meshd.conf:3: VIPOwner: 10.1.1.10 already has a VIPOwner at /n/meshd.conf:2",
        ),
        (
            "VirtualIP = 10.1.1.10\nHealthCheck = 10.1.1.10 presence\nHealthCheck = 10.1.1.10 presence fall=3\n",
            "meshd.conf:3: HealthCheck: 10.1.1.10 already has a presence check at /n/meshd.conf:2",
        ),
        (
            "VirtualIP = 10.1.1.10\nHealthCheck = 10.1.1.10 presence timeout=1s\n",
            "meshd.conf:2: HealthCheck: unexpected 'timeout=1s' (presence takes only",
        ),
        (
            "VirtualIP = 10.1.1.10\nHealthCheck = 10.1.1.10 presence 10.1.1.10\n",
            "meshd.conf:2: HealthCheck: unexpected '10.1.1.10'",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
}

#[test]
fn vip_policy() {
    let s = ok("VirtualIP = 10.1.1.10\nVirtualIP = 10.1.1.20\nVIPPolicy = 10.1.1.10 Nearest\n");
    assert_eq!(s.vips[0].policy, SteerPolicy::Nearest);
    assert_eq!(s.vips[1].policy, SteerPolicy::Hash);
    for (text, want) in [
        (
            "VirtualIP = 10.1.1.10\nVIPPolicy = 10.1.1.10 closest\n",
            "meshd.conf:2: VIPPolicy: 'closest' is not a policy (hash or nearest)",
        ),
        (
            "VirtualIP = 10.1.1.10\nVIPPolicy = 10.1.1.11 nearest\n",
            "meshd.conf:2: VIPPolicy: 10.1.1.11 has no VirtualIP line",
        ),
        (
            "VirtualIP = 10.1.1.10\nVIPPolicy = 10.1.1.10 hash\nVIPPolicy = 10.1.1.10 nearest\n",
            "meshd.conf:3: VIPPolicy: 10.1.1.10 already has a VIPPolicy at /n/meshd.conf:2",
        ),
        (
            "VirtualIP = 10.1.1.10\nVIPPolicy = nearest\n",
            "meshd.conf:2: VIPPolicy: 'nearest': expected 'ADDRESS hash|nearest'",
        ),
    ] {
        let e = err(text);
        assert!(e.contains(want), "{text:?}: {e}");
    }
}
