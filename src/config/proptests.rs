//! Property tests: generated valid configurations (server variables, host files, VIPs) survive
//! text rendering and parsing; arbitrary lines never panic the parsers and errors name FILE:LINE.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;

use super::server_tests::from_text;
use super::types::format_duration;
use super::{
    parse_duration, parse_vip_settings, virtual_mac_for, AddressFamily, AddressHost, BindAddress,
    CheckKind, DeviceType, HealthCheckSpec, HostAddress, Subnet, SubnetAddr, VipConfig,
    VipSettings,
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

// ---------------------------------------------------------------- more server variables

#[derive(Debug, Clone)]
struct More {
    mac_table_max: usize,
    mac_table_max_per_node: usize,
    arp_expire: Duration,
    answer_arp: bool,
    interface_mtu: u32,
    script_timeout: Duration,
    interpreter: Option<String>,
    extension: Option<String>,
    device: Option<String>,
    dummy: bool,
    key_file: Option<String>,
}

fn arb_positive_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (1u64..100_000).prop_map(Duration::from_millis),
        (1u64..1_000_000_000_000).prop_map(Duration::from_nanos),
        (1u64..1_000_000).prop_map(Duration::from_secs),
    ]
}

fn arb_more() -> impl Strategy<Value = More> {
    (
        (
            1usize..10_000_000,
            1usize..1_000_000,
            arb_positive_duration(),
            any::<bool>(),
            576u32..=65535,
            arb_positive_duration(),
        ),
        (
            proptest::option::of("/[a-z/]{1,20}"),
            proptest::option::of("\\.[a-z]{1,4}"),
            proptest::option::of("/dev/[a-z/]{1,12}"),
            any::<bool>(),
            proptest::option::of("[a-z_/]{1,20}\\.priv"),
        ),
    )
        .prop_map(
            |(
                (mac_table_max, mac_table_max_per_node, arp_expire, answer_arp, mtu, script),
                (interpreter, extension, device, dummy, key_file),
            )| More {
                mac_table_max,
                mac_table_max_per_node,
                arp_expire,
                answer_arp,
                interface_mtu: mtu,
                script_timeout: script,
                interpreter,
                extension,
                device,
                dummy,
                key_file,
            },
        )
}

fn render_more(m: &More, styles: &[(u8, u8)]) -> String {
    let mut st = styles.iter().copied().cycle();
    let st = &mut st;
    let mut conf = String::new();
    line(&mut conf, st, "Name", "alpha");
    line(&mut conf, st, "MACTableMax", &m.mac_table_max.to_string());
    line(
        &mut conf,
        st,
        "MACTableMaxPerNode",
        &m.mac_table_max_per_node.to_string(),
    );
    line(&mut conf, st, "ARPExpire", &format_duration(m.arp_expire));
    line(
        &mut conf,
        st,
        "AnswerARP",
        if m.answer_arp { "yes" } else { "no" },
    );
    line(&mut conf, st, "InterfaceMTU", &m.interface_mtu.to_string());
    line(
        &mut conf,
        st,
        "ScriptTimeout",
        &format_duration(m.script_timeout),
    );
    if let Some(i) = &m.interpreter {
        line(&mut conf, st, "ScriptsInterpreter", i);
    }
    if let Some(e) = &m.extension {
        line(&mut conf, st, "ScriptsExtension", e);
    }
    if let Some(d) = &m.device {
        line(&mut conf, st, "Device", d);
    }
    line(
        &mut conf,
        st,
        "DeviceType",
        if m.dummy { "dummy" } else { "tap" },
    );
    if let Some(k) = &m.key_file {
        line(&mut conf, st, "Ed25519PrivateKeyFile", k);
    }
    conf
}

// ---------------------------------------------------------------- VIP configuration

/// A VIP as generated: the expected parse result is built from it.
#[derive(Debug, Clone)]
struct GenVip {
    address: IpAddr,
    prefix: Option<u8>,
    weight: Option<u32>,
    mac: Option<[u8; 6]>,
    checks: Vec<GenCheck>,
}

#[derive(Debug, Clone)]
struct GenCheck {
    kind: CheckKind,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    rise: Option<u32>,
    fall: Option<u32>,
}

#[derive(Debug, Clone)]
struct GenVips {
    vips: Vec<GenVip>,
    hold_down: Option<Duration>,
    idle: Option<Duration>,
    grace: Option<Duration>,
    /// Global interval and a timeout no longer than it (no warning).
    timing: Option<(Duration, Duration)>,
    rise: Option<u32>,
    fall: Option<u32>,
}

/// What the parser accepts as a VIP (link-local and IPv4-mapped IPv6 are refused too).
fn usable_vip(ip: &IpAddr) -> bool {
    crate::vip::usable_vip(ip)
}

fn arb_check_kind() -> impl Strategy<Value = CheckKind> {
    let target = || (arb_ip(), 1u16..=65535).prop_map(|(ip, port)| SocketAddr::new(ip, port));
    prop_oneof![
        "[a-z][a-z0-9_]{0,7}( [a-z0-9./:_-]{1,8}){0,3}".prop_map(CheckKind::Exec),
        target().prop_map(CheckKind::Tcp),
        (
            target(),
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 1..8)),
        )
            .prop_map(|(addr, send, expect)| CheckKind::Udp { addr, send, expect }),
    ]
}

fn arb_check() -> impl Strategy<Value = GenCheck> {
    (
        arb_check_kind(),
        proptest::option::of((2u64..5000).prop_map(Duration::from_millis)),
        proptest::option::of(1u32..10),
        proptest::option::of(1u32..10),
    )
        .prop_map(|(kind, interval, rise, fall)| GenCheck {
            kind,
            // A timeout only together with an interval at least as long (no warning).
            timeout: interval.map(|i| i / 2 + Duration::from_millis(1)),
            interval,
            rise,
            fall,
        })
}

fn arb_gen_vip() -> impl Strategy<Value = GenVip> {
    (
        arb_ip().prop_filter("usable VIP", usable_vip),
        any::<u8>(),
        any::<bool>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<[u8; 5]>()),
        proptest::collection::vec(arb_check(), 0..3),
    )
        .prop_map(|(address, p, with_prefix, weight, mac, checks)| {
            let max = if address.is_ipv4() { 33 } else { 129 };
            GenVip {
                address,
                prefix: with_prefix.then_some(p % max),
                weight,
                // Unicast, locally administered, never all zero.
                mac: mac.map(|m| [0x0a, m[0], m[1], m[2], m[3], m[4]]),
                checks,
            }
        })
}

fn arb_gen_vips() -> impl Strategy<Value = GenVips> {
    (
        proptest::collection::vec(arb_gen_vip(), 0..5),
        proptest::option::of((0u64..10_000).prop_map(Duration::from_millis)),
        proptest::option::of(arb_positive_duration()),
        proptest::option::of((0u64..10_000).prop_map(Duration::from_millis)),
        proptest::option::of((2u64..10_000, 0u64..1000)),
        proptest::option::of(1u32..100),
        proptest::option::of(1u32..100),
    )
        .prop_map(|(vips, hold_down, idle, grace, timing, rise, fall)| {
            // Distinct addresses and distinct virtual MACs.
            let mut seen_ip = std::collections::HashSet::new();
            let mut seen_mac = std::collections::HashSet::new();
            let vips = vips
                .into_iter()
                .filter(|v| seen_ip.insert(v.address))
                .filter(|v| seen_mac.insert(v.mac.unwrap_or(virtual_mac_for(v.address))))
                .collect();
            GenVips {
                vips,
                hold_down,
                idle,
                grace,
                timing: timing.map(|(i, t)| {
                    let t = (t % i).max(1);
                    (Duration::from_millis(i), Duration::from_millis(t))
                }),
                rise,
                fall,
            }
        })
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Renders the VIP lines into `out`, returning the expected settings (origins
/// point at `file` and the line numbers the lines land on).
fn render_vips(g: &GenVips, file: &str, out: &mut String) -> VipSettings {
    let mut lineno = out.matches('\n').count();
    let mut push = |out: &mut String, text: String| -> usize {
        out.push_str(&text);
        out.push('\n');
        lineno += 1;
        lineno
    };
    let d = VipSettings::default();
    let hold_down = g.hold_down.unwrap_or(d.hold_down);
    let flow_idle_timeout = g.idle.unwrap_or(d.flow_idle_timeout);
    let shutdown_grace = g.grace.unwrap_or(d.shutdown_grace);
    if let Some(h) = g.hold_down {
        push(out, format!("VIPHoldDown = {}", format_duration(h)));
    }
    if let Some(i) = g.idle {
        push(out, format!("flowidletimeout {}", format_duration(i)));
    }
    if let Some(s) = g.grace {
        push(out, format!("ShutdownGrace={}", format_duration(s)));
    }
    let (mut interval, mut timeout) = (Duration::from_millis(500), Duration::from_millis(500));
    if let Some((i, t)) = g.timing {
        (interval, timeout) = (i, t);
        push(out, format!("HealthCheckInterval = {}", format_duration(i)));
        push(out, format!("HEALTHCHECKTIMEOUT = {}", format_duration(t)));
    }
    if let Some(r) = g.rise {
        push(out, format!("HealthCheckRise = {r}"));
    }
    if let Some(f) = g.fall {
        push(out, format!("HealthCheckFall = {f}"));
    }
    let mut vips = Vec::new();
    for v in &g.vips {
        let mut value = v.address.to_string();
        if let Some(p) = v.prefix {
            value.push_str(&format!("/{p}"));
        }
        if let Some(w) = v.weight {
            value.push_str(&format!("#{w}"));
        }
        push(out, format!("VirtualIP = {value}"));
        vips.push(VipConfig {
            address: v.address,
            prefix_len: v
                .prefix
                .unwrap_or(if v.address.is_ipv4() { 32 } else { 128 }),
            weight: v.weight.unwrap_or(10),
            virtual_mac: v.mac.unwrap_or(virtual_mac_for(v.address)),
            mac_overridden: v.mac.is_some(),
            checks: Vec::new(),
            owner: None,
            policy: Default::default(),
        });
    }
    // MACs and checks after all VirtualIP lines (they may come in any order).
    for v in &g.vips {
        if let Some(m) = v.mac {
            let mac: Vec<String> = m.iter().map(|b| format!("{b:02X}")).collect();
            push(out, format!("VirtualMAC = {} {}", v.address, mac.join(":")));
        }
    }
    for (vi, v) in g.vips.iter().enumerate() {
        for c in &v.checks {
            let mut opts = String::new();
            if let Some(i) = c.interval {
                opts.push_str(&format!(" interval={}", format_duration(i)));
            }
            if let Some(t) = c.timeout {
                opts.push_str(&format!(" timeout={}", format_duration(t)));
            }
            if let Some(r) = c.rise {
                opts.push_str(&format!(" rise={r}"));
            }
            if let Some(f) = c.fall {
                opts.push_str(&format!(" fall={f}"));
            }
            let body = match &c.kind {
                CheckKind::Exec(cmd) => format!("exec{opts} {cmd}"),
                CheckKind::Tcp(a) => format!("tcp {a}{opts}"),
                CheckKind::Presence => format!("presence{opts}"),
                CheckKind::Udp { addr, send, expect } => {
                    let mut b = format!("udp{opts} {addr}");
                    if !send.is_empty() {
                        b.push_str(&format!(" send={}", hex_bytes(send)));
                    }
                    if let Some(e) = expect {
                        b.push_str(&format!(" expect={}", hex_bytes(e)));
                    }
                    b
                }
            };
            let n = push(out, format!("HealthCheck = {} {body}", v.address));
            vips[vi].checks.push(HealthCheckSpec {
                vip: v.address,
                kind: c.kind.clone(),
                interval: c.interval.unwrap_or(interval),
                timeout: c.timeout.unwrap_or(timeout),
                rise: c.rise.or(g.rise).unwrap_or(2),
                fall: c.fall.or(g.fall).unwrap_or(2),
                origin: format!("{file}:{n}"),
            });
        }
    }
    VipSettings {
        vips,
        hold_down,
        flow_idle_timeout,
        shutdown_grace,
    }
}

// ---------------------------------------------------------------- arbitrary lines

/// Variables the parsers know (the same lists they use), plus one they do not,
/// so random lines hit real code paths.
fn variables() -> Vec<&'static str> {
    use super::known::{MESHD_VARIABLES, TINC_HOST_VARIABLES, TINC_SERVER_VARIABLES};
    let mut all: Vec<&'static str> =
        [TINC_SERVER_VARIABLES, TINC_HOST_VARIABLES, MESHD_VARIABLES].concat();
    all.sort_unstable();
    all.dedup();
    all.push("Unknown_Var");
    all
}

fn arb_value() -> impl Strategy<Value = String> {
    prop_oneof![
        // Numbers, durations, addresses, words, and their near misses.
        "[0-9]{1,22}",
        "-?[0-9]{0,6}(\\.[0-9]{0,4})?(ns|us|ms|s|m|h|d|x)?",
        "[0-9a-fA-F:.]{1,40}(/[0-9]{1,3})?(#[0-9-]{1,12})?",
        "(10\\.1\\.1\\.[0-9]{1,3}|::1|fe80::1) (exec|tcp|udp|EXEC|foo)( [a-z=0-9.:\\[\\]]{0,12}){0,4}",
        "[ -~]{1,40}",
        "\\PC{1,20}",
    ]
}

fn arb_lines() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(
        (
            prop_oneof![
                4 => proptest::sample::select(variables()).prop_map(str::to_string),
                1 => "[A-Za-z]{1,12}",
            ],
            arb_value(),
        ),
        0..14,
    )
}

fn text_of(lines: &[(String, String)], sep_seed: u8) -> String {
    let seps = [" = ", "=", " ", "\t"];
    lines
        .iter()
        .enumerate()
        .map(|(i, (k, v))| {
            let sep = seps[(usize::from(sep_seed) + i) % seps.len()];
            format!("{k}{sep}{v}\n")
        })
        .collect()
}

/// An error names one of the two files, and its line (when it has one)
/// exists in that file; a file-level error is one of the known whole-file ones.
fn check_error(e: &super::ConfigError, conf: &str, host: &str) -> Result<(), TestCaseError> {
    let text = if e.file == std::path::Path::new(CONF_PATH) {
        conf
    } else if e.file == std::path::Path::new(HOST_PATH) {
        host
    } else {
        return Err(TestCaseError::fail(format!(
            "error names another file: {e}"
        )));
    };
    let shown = e.to_string();
    prop_assert!(
        shown.starts_with(&format!("{}", e.file.display())),
        "{}",
        shown
    );
    match e.line {
        Some(n) => {
            let l = text.split('\n').nth(n.saturating_sub(1)).unwrap_or("");
            prop_assert!(
                n >= 1 && !l.trim().is_empty(),
                "{} points at an empty or missing line",
                shown
            );
            prop_assert!(
                shown.starts_with(&format!("{}:{n}: ", e.file.display())),
                "{}",
                shown
            );
        }
        None => prop_assert!(
            e.message.contains("Could not find Name") || e.message.contains("must be longer than"),
            "error without a line: {}",
            shown
        ),
    }
    Ok(())
}

const CONF_PATH: &str = "/n/meshd.conf";
const HOST_PATH: &str = "/n/hosts/alpha";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The server variables the first round-trip leaves out.
    #[test]
    fn server_config_more_variables_roundtrip(
        m in arb_more(),
        styles in proptest::collection::vec(any::<(u8, u8)>(), 1..16),
    ) {
        let conf = render_more(&m, &styles);
        let c = from_text(&conf, "").map_err(|e| TestCaseError::fail(format!("{e}\n{conf}")))?;
        prop_assert_eq!(c.mac_table_max, m.mac_table_max);
        prop_assert_eq!(c.mac_table_max_per_node, m.mac_table_max_per_node);
        prop_assert_eq!(c.arp_expire, m.arp_expire);
        prop_assert_eq!(c.answer_arp, m.answer_arp);
        prop_assert_eq!(c.interface_mtu, m.interface_mtu);
        prop_assert_eq!(c.script_timeout, m.script_timeout);
        prop_assert_eq!(&c.scripts_interpreter, &m.interpreter);
        prop_assert_eq!(&c.scripts_extension, &m.extension.clone().unwrap_or_default());
        prop_assert_eq!(&c.device, &m.device);
        prop_assert_eq!(c.device_type, if m.dummy { DeviceType::Dummy } else { DeviceType::Tap });
        let key = m.key_file.as_ref().map_or_else(
            || std::path::PathBuf::from("/n/ed25519_key.priv"),
            |k| std::path::Path::new("/n").join(k),
        );
        prop_assert_eq!(&c.private_key_file, &key);
        prop_assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    /// Generated VIP configurations (addresses, prefixes, weights, virtual
    /// MACs, exec/tcp/udp checks with options, global timings), written as
    /// configuration lines in the server config or the own host file, parse
    /// back to exactly what was written, without warnings.
    #[test]
    fn vip_config_roundtrip(g in arb_gen_vips(), in_host in any::<bool>()) {
        let (file, mut text) = if in_host {
            (HOST_PATH, String::from("Port = 655\n"))
        } else {
            (CONF_PATH, String::from("Name = alpha\n# VIPs\n\n"))
        };
        let expect = render_vips(&g, file, &mut text);
        let (conf, host) = if in_host { ("Name = alpha\n".to_string(), text.clone()) } else { (text.clone(), String::new()) };
        let c = from_text(&conf, &host).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let mut warnings = Vec::new();
        let got = parse_vip_settings(&c.raw, &mut warnings)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(got, expect, "{}", text);
        prop_assert!(warnings.is_empty(), "{:?}\n{}", warnings, text);
    }

    /// Arbitrary `Variable = value` lines (known variables with random and
    /// near-miss values) never panic the server or VIP parsers, and every
    /// error names its file and, when it is about a line, that line.
    #[test]
    fn arbitrary_lines_never_panic_and_errors_name_file_and_line(
        conf_lines in arb_lines(),
        host_lines in arb_lines(),
        with_name in any::<bool>(),
        sep in any::<u8>(),
    ) {
        let mut conf = if with_name { String::from("Name = alpha\n") } else { String::new() };
        conf.push_str(&text_of(&conf_lines, sep));
        let host = text_of(&host_lines, sep.wrapping_add(1));
        match from_text(&conf, &host) {
            Ok(c) => {
                let mut warnings = Vec::new();
                if let Err(e) = parse_vip_settings(&c.raw, &mut warnings) {
                    check_error(&e, &conf, &host)?;
                }
                for w in c.warnings.iter().chain(&warnings) {
                    prop_assert!(w.starts_with(CONF_PATH) || w.starts_with(HOST_PATH), "warning without a file: {}", w);
                }
            }
            Err(e) => check_error(&e, &conf, &host)?,
        }
    }
}
