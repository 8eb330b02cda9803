//! Property tests: generated valid configurations survive text rendering and parsing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;

use super::server_tests::from_text;
use super::types::format_duration;
use super::{
    parse_duration, AddressFamily, AddressHost, BindAddress, HostAddress, Subnet, SubnetAddr,
};

#[derive(Debug, Clone)]
struct Gen {
    name: String,
    port: Option<u16>,
    connect_to: Vec<String>,
    subnets: Vec<Subnet>,
    addresses: Vec<HostAddress>,
    bind: Vec<BindAddress>,
    hello: Duration,
    dead: Duration,
    mac_expire_secs: u64,
    key_expire: Duration,
    rekey: u64,
    replay_bytes: Option<u32>,
    family: AddressFamily,
    store: bool,
    interface: Option<String>,
}

fn arb_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_]{1,12}"
}

fn arb_subnet() -> impl Strategy<Value = Subnet> {
    let addr = prop_oneof![
        any::<[u8; 6]>().prop_map(SubnetAddr::Mac),
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| SubnetAddr::Ipv4 {
            addr: Ipv4Addr::from(a & u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0)),
            prefix: p
        }),
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| SubnetAddr::Ipv6 {
            addr: Ipv6Addr::from(a & u128::MAX.checked_shl(128 - u32::from(p)).unwrap_or(0)),
            prefix: p
        }),
    ];
    let weight = prop_oneof![Just(10), any::<i32>()];
    (addr, weight).prop_map(|(addr, weight)| Subnet { addr, weight })
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(a.into())),
        any::<u128>().prop_map(|a| IpAddr::V6(a.into())),
    ]
}

fn arb_address() -> impl Strategy<Value = HostAddress> {
    let host = prop_oneof![
        arb_ip().prop_map(AddressHost::Ip),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5})?".prop_map(AddressHost::Name),
    ];
    (host, proptest::option::of(any::<u16>())).prop_map(|(host, port)| HostAddress { host, port })
}

fn arb_bind() -> impl Strategy<Value = BindAddress> {
    (
        proptest::option::of(arb_ip()),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(|(addr, port)| BindAddress { addr, port })
}

fn arb_gen() -> impl Strategy<Value = Gen> {
    (
        (
            arb_name(),
            proptest::option::of(any::<u16>()),
            proptest::collection::vec(arb_name(), 0..4),
            proptest::collection::vec(arb_subnet(), 0..5),
            proptest::collection::vec(arb_address(), 0..3),
            proptest::collection::vec(arb_bind(), 0..3),
        ),
        (
            1u64..10_000_000,
            1u64..10_000_000,
            1u64..1_000_000,
            1u64..1_000_000_000,
            1u64..=u64::MAX,
            proptest::option::of(0u32..=u32::MAX / 8),
            prop_oneof![
                Just(AddressFamily::Any),
                Just(AddressFamily::Ipv4),
                Just(AddressFamily::Ipv6)
            ],
            any::<bool>(),
            proptest::option::of("[a-z][a-z0-9]{0,14}"),
        ),
    )
        .prop_map(
            |(
                (name, port, connect_to, subnets, addresses, bind),
                (hello_us, extra_us, mac, key_ms, rekey, replay_bytes, family, store, interface),
            )| Gen {
                name,
                port,
                connect_to,
                subnets,
                addresses,
                bind,
                hello: Duration::from_micros(hello_us),
                dead: Duration::from_micros(hello_us + extra_us),
                mac_expire_secs: mac,
                key_expire: Duration::from_millis(key_ms),
                rekey,
                replay_bytes,
                family,
                store,
                interface,
            },
        )
}

/// Renders `Var SEP Value` with a style-chosen variable case and separator.
fn line(out: &mut String, style: &mut impl Iterator<Item = (u8, u8)>, var: &str, value: &str) {
    let (case, sep) = style.next().unwrap_or((0, 0));
    let var = match case % 3 {
        0 => var.to_string(),
        1 => var.to_ascii_lowercase(),
        _ => var.to_ascii_uppercase(),
    };
    let sep = [" = ", "=", " ", "\t", " =\t", "\t= "][usize::from(sep) % 6];
    out.push_str(&format!("{var}{sep}{value}\r\n"));
    if case % 5 == 0 {
        out.push_str("# a comment\n\n");
    }
}

fn render(g: &Gen, styles: &[(u8, u8)]) -> (String, String) {
    let mut st = styles.iter().copied().cycle();
    let (mut conf, mut host) = (String::new(), String::new());
    let st = &mut st;
    line(&mut conf, st, "Name", &g.name);
    line(&mut conf, st, "Mode", "switch");
    for c in &g.connect_to {
        line(&mut conf, st, "ConnectTo", c);
    }
    for b in &g.bind {
        line(&mut conf, st, "BindToAddress", &b.to_string());
    }
    line(&mut conf, st, "HelloInterval", &format_duration(g.hello));
    line(&mut conf, st, "DeadInterval", &format_duration(g.dead));
    line(&mut conf, st, "MACExpire", &g.mac_expire_secs.to_string());
    line(&mut conf, st, "KeyExpire", &format_duration(g.key_expire));
    line(&mut conf, st, "RekeyPackets", &g.rekey.to_string());
    if let Some(r) = g.replay_bytes {
        line(&mut conf, st, "ReplayWindow", &r.to_string());
    }
    line(&mut conf, st, "AddressFamily", &g.family.to_string());
    let yes_no = if g.store { "yes" } else { "off" };
    line(&mut conf, st, "StoreLearnedHosts", yes_no);
    if let Some(i) = &g.interface {
        line(&mut conf, st, "Interface", i);
    }
    line(&mut conf, st, "Compression", "9");
    if let Some(p) = g.port {
        line(&mut host, st, "Port", &p.to_string());
    }
    for a in &g.addresses {
        line(&mut host, st, "Address", &a.to_string());
    }
    for s in &g.subnets {
        line(&mut host, st, "Subnet", &s.to_string());
    }
    host.push_str(
        "-----BEGIN ED25519 PUBLIC KEY-----\nPort = 1\n-----END ED25519 PUBLIC KEY-----\n",
    );
    (conf, host)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn server_config_roundtrip(
        g in arb_gen(),
        styles in proptest::collection::vec(any::<(u8, u8)>(), 1..16),
    ) {
        let (conf, host) = render(&g, &styles);
        let c = from_text(&conf, &host).map_err(|e| TestCaseError::fail(format!("{e}\n{conf}\n{host}")))?;
        prop_assert_eq!(&c.name, &g.name);
        prop_assert_eq!(c.port, g.port.unwrap_or(655));
        prop_assert_eq!(&c.connect_to, &g.connect_to);
        prop_assert_eq!(&c.bind_to_address, &g.bind);
        prop_assert_eq!(&c.addresses, &g.addresses);
        prop_assert_eq!(&c.subnets, &g.subnets);
        prop_assert_eq!(c.hello_interval, g.hello);
        prop_assert_eq!(c.dead_interval, g.dead);
        prop_assert_eq!(c.mac_expire, Duration::from_secs(g.mac_expire_secs));
        prop_assert_eq!(c.key_expire, g.key_expire);
        prop_assert_eq!(c.rekey_packets, g.rekey);
        prop_assert_eq!(c.replay_window, g.replay_bytes.map_or(2048, |b| b * 8));
        prop_assert_eq!(c.address_family, g.family);
        prop_assert_eq!(c.store_learned_hosts, g.store);
        prop_assert_eq!(&c.interface, &g.interface);
        prop_assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn subnet_display_roundtrip(s in arb_subnet()) {
        prop_assert_eq!(s.to_string().parse::<Subnet>(), Ok(s));
    }

    #[test]
    fn duration_format_roundtrip(n in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let d = Duration::new(n / 1000, nanos);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
}
