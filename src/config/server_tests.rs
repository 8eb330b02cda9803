//! Tests for the typed server configuration ([`super::server`]).

use std::path::Path;
use std::time::Duration;

use super::netdir::NetDir;
use super::parse::parse_config_text;
use super::server::{build_server_config, expand_name, load_server_config, resolve_name};
use super::types::AddressFamily;
use super::{ConfigError, ServerConfig};

const CONF: &str = "/n/meshd.conf";
const HOST: &str = "/n/hosts/alpha";

/// Builds a config from text without touching the file system.
pub(super) fn from_text(conf: &str, host: &str) -> Result<ServerConfig, ConfigError> {
    let conf_lines = parse_config_text(conf, Path::new(CONF))?;
    let host_lines = parse_config_text(host, Path::new(HOST))?;
    let name = resolve_name(&conf_lines, Path::new(CONF), &|_| None)?;
    build_server_config(&NetDir::new("/n"), name, conf_lines, host_lines, Vec::new())
}

#[test]
fn defaults() {
    let c = from_text("Name = alpha\n", "").unwrap();
    assert_eq!(c.name, "alpha");
    assert_eq!(c.port, 655);
    assert_eq!(c.address_family, AddressFamily::Any);
    assert_eq!(c.mac_expire, Duration::from_secs(600));
    assert_eq!(c.hello_interval, Duration::from_millis(100));
    assert_eq!(c.dead_interval, Duration::from_millis(300));
    assert_eq!(c.key_expire, Duration::from_secs(3600));
    assert_eq!(c.rekey_packets, 1 << 40);
    assert_eq!(c.replay_window, 2048);
    assert_eq!(c.private_key_file, Path::new("/n/ed25519_key.priv"));
    assert!(!c.store_learned_hosts);
    assert!(c.warnings.is_empty());
    assert!(c.interface.is_none() && c.device.is_none());
}

#[test]
fn typed_values() {
    let c = from_text(
        "Name = alpha\nmode = Switch\nConnectTo = beta\nconnectto gamma\nInterface = vpn0\n\
         AddressFamily = ipv6\nBindToAddress = * 700\nMACExpire = 30\nHelloInterval = 50ms\n\
         DeadInterval = 1s\nKeyExpire = 1m\nRekeyPackets = 1000\nReplayWindow = 16\n\
         Ed25519PrivateKeyFile = keys/k.priv\nDevice = /dev/net/tun\nDeviceType = TAP\n\
         StoreLearnedHosts = yes\nCipher = aes\nCompression = 0\n",
        "Port = 1655\nAddress = 192.0.2.1\nSubnet = 02:00:00:00:00:01\n",
    )
    .unwrap();
    assert_eq!(c.connect_to, ["beta", "gamma"]);
    assert_eq!(c.interface.as_deref(), Some("vpn0"));
    assert_eq!(c.address_family, AddressFamily::Ipv6);
    assert_eq!(c.bind_to_address[0].port, Some(700));
    assert_eq!(c.mac_expire, Duration::from_secs(30));
    assert_eq!(c.hello_interval, Duration::from_millis(50));
    assert_eq!(c.dead_interval, Duration::from_secs(1));
    assert_eq!(c.key_expire, Duration::from_secs(60));
    assert_eq!(c.rekey_packets, 1000);
    assert_eq!(c.replay_window, 128);
    assert_eq!(c.private_key_file, Path::new("/n/keys/k.priv"));
    assert_eq!(c.device.as_deref(), Some("/dev/net/tun"));
    assert!(c.store_learned_hosts);
    assert_eq!(c.port, 1655);
    assert_eq!(c.addresses.len(), 1);
    assert_eq!(c.subnets[0].to_string(), "02:00:00:00:00:01");
    // A tinc variable meshd does not implement is named, with what to do instead.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains(":18: Cipher = aes is not implemented by meshd"),
        "{:?}",
        c.warnings
    );
    assert!(!c.strict_subnets);
    assert_eq!(c.get("cipher").map(|l| l.value.as_str()), Some("aes"));
    assert_eq!(c.get_all("ConnectTo").count(), 2);
}

#[test]
fn absolute_key_path_kept() {
    let c = from_text("Name = a\nEd25519PrivateKeyFile = /k/key\n", "").unwrap();
    assert_eq!(c.private_key_file, Path::new("/k/key"));
}

#[test]
fn unknown_variable_warns() {
    let c = from_text("Name = alpha\nFoo = bar\n", "Bar = 1\n").unwrap();
    assert_eq!(
        c.warnings,
        [
            "/n/meshd.conf:2: unknown variable 'Foo' ignored",
            "/n/hosts/alpha:1: unknown variable 'Bar' ignored"
        ]
    );
}

#[test]
fn mode_router_rejected_with_location() {
    let e = from_text("Name = alpha\n\nMode = router\n", "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/n/meshd.conf:3: Mode = router is not supported: meshd implements only switch mode"
    );
    let e = from_text("Name = alpha\nMode = HUB\n", "").unwrap_err();
    assert!(e
        .to_string()
        .starts_with("/n/meshd.conf:2: Mode = hub is not supported"));
    let e = from_text("Name = alpha\nMode = bridge\n", "").unwrap_err();
    assert!(e.message.starts_with("bad value for Mode: 'bridge'"));
    let e = from_text("Name = alpha\nDeviceType = tun\n", "").unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("tap"));
}

#[test]
fn dead_must_exceed_hello() {
    let e = from_text("Name = a\nHelloInterval = 1s\nDeadInterval = 1s\n", "").unwrap_err();
    assert_eq!(e.line, Some(3));
    assert!(e
        .message
        .contains("DeadInterval (1s) must be longer than HelloInterval (1s)"));
    // Only HelloInterval given, above the default DeadInterval: error names its line.
    let e = from_text("Name = a\nHelloInterval = 500ms\n", "").unwrap_err();
    assert_eq!(e.line, Some(2));
    let e = from_text("Name = a\nHelloInterval = 0\n", "").unwrap_err();
    assert!(e.message.contains("greater than zero"));
}

#[test]
fn ping_variables_parsed_with_warning() {
    let c = from_text("Name = a\nPingInterval = 10\nPingTimeout = 2\n", "").unwrap();
    assert_eq!(c.ping_interval, Duration::from_secs(10));
    assert_eq!(c.ping_timeout, Duration::from_secs(2));
    assert_eq!(c.warnings.len(), 2);
    assert!(c.warnings[0].starts_with("/n/meshd.conf:2: PingInterval is accepted"));
    assert!(c.warnings[1].contains("superseded by HelloInterval/DeadInterval"));
}

#[test]
fn bad_values_name_file_line_and_problem() {
    let e = from_text("Name = a\n\nPort = abc\n", "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/n/meshd.conf:3: bad value for Port: 'abc' is not a port number (0-65535)"
    );
    for (conf, var) in [
        ("ConnectTo = b-c", "ConnectTo"),
        ("MACExpire = soon", "MACExpire"),
        ("AddressFamily = ipx", "AddressFamily"),
        ("StoreLearnedHosts = maybe", "StoreLearnedHosts"),
        ("ReplayWindow = 999999999999", "ReplayWindow"),
        ("RekeyPackets = 0", "RekeyPackets"),
        ("Interface = a/b", "Interface"),
        ("BindToAddress = host", "BindToAddress"),
    ] {
        let e = from_text(&format!("Name = a\n{conf}\n"), "").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        assert!(
            e.message.starts_with(&format!("bad value for {var}: ")),
            "{e}"
        );
    }
    let e = from_text("Port = 1\n", "").unwrap_err();
    assert_eq!(e.to_string(), "/n/meshd.conf: Could not find Name");
    let e = from_text("Name = a.b\n", "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/n/meshd.conf:1: bad value for Name: node name 'a.b' has '.' at byte 1: \
         use letters, digits and _ only"
    );
    // 65 bytes: the config refuses what every handshake would refuse.
    let e = from_text(&format!("Name = {}\n", "a".repeat(65)), "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "/n/meshd.conf:1: bad value for Name: node name is too long (65 bytes, at most 64)"
    );
    let e = from_text(&format!("Name = a\nConnectTo = {}\n", "b".repeat(65)), "").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("too long (65 bytes, at most 64)"), "{e}");
    assert!(from_text(&format!("Name = {}\n", "a".repeat(64)), "").is_ok());
}

#[test]
fn config_file_wins_over_host_file() {
    let c = from_text("Name = a\nPort = 1\n", "Port = 2\n").unwrap();
    assert_eq!(c.port, 1);
    assert!(c.warnings[0].starts_with("/n/hosts/alpha:1: Port is given more than once"));
}

#[test]
fn name_from_environment() {
    let env = |v: &str| match v {
        "HOST" => Some("web-01.example".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    assert_eq!(expand_name("$HOST", &env).unwrap(), "web_01_example");
    assert!(expand_name("$NOPE", &env).unwrap_err().contains("NOPE"));
    assert!(expand_name("$EMPTY", &env).is_err());
    assert_eq!(expand_name("plain_1", &env).unwrap(), "plain_1");
    // $HOST without the variable falls back to gethostname().
    let n = expand_name("$HOST", &|_| None).unwrap();
    assert!(super::NodeName::new(n.as_str()).is_ok(), "{n}");
    // An expansion longer than a node name may be is refused, not truncated.
    let long = |_: &str| Some("h".repeat(65));
    let e = expand_name("$HOST", &long).unwrap_err();
    assert!(e.contains("too long (65 bytes, at most 64)"), "{e}");
}

fn netdir_with(files: &[(&str, &str)]) -> (tempfile::TempDir, NetDir) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let nd = NetDir::new(dir.path());
    (dir, nd)
}

#[test]
fn load_merges_own_host_file() {
    let (_d, nd) = netdir_with(&[
        ("meshd.conf", "Name = alpha\nConnectTo = beta\n"),
        ("hosts/alpha", "Port = 1655\nSubnet = 10.0.0.0/24\n"),
    ]);
    let c = load_server_config(&nd).unwrap();
    assert_eq!(c.port, 1655);
    assert_eq!(c.subnets.len(), 1);
    assert_eq!(c.connect_to, ["beta"]);
}

#[test]
fn load_falls_back_to_tinc_conf_and_conf_d() {
    let (_d, nd) = netdir_with(&[
        ("tinc.conf", "Name = alpha\nMode = switch\n"),
        ("conf.d/b.conf", "ConnectTo = b\n"),
        ("conf.d/a.conf", "ConnectTo = a\n"),
        ("conf.d/ignored.txt", "ConnectTo = z\n"),
    ]);
    let c = load_server_config(&nd).unwrap();
    assert_eq!(c.raw[0].file, nd.root.join("tinc.conf"));
    assert_eq!(c.connect_to, ["a", "b"]);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("own host file does not exist"));
}

#[test]
fn load_missing_config_names_file() {
    let (_d, nd) = netdir_with(&[]);
    let e = load_server_config(&nd).unwrap_err();
    assert_eq!(e.file, nd.root.join("tinc.conf"));
    assert!(e.message.contains("not found"));
}

#[test]
fn load_bad_own_host_file_is_error() {
    let (_d, nd) = netdir_with(&[("meshd.conf", "Name = alpha\n"), ("hosts/alpha", "Port\n")]);
    let e = load_server_config(&nd).unwrap_err();
    assert_eq!(
        e.file,
        nd.host_file(&super::NodeName::new("alpha").unwrap())
    );
    assert_eq!(e.line, Some(1));
}

#[test]
fn strict_subnets_and_tunnel_server() {
    let c = from_text("Name = alpha\nStrictSubnets = yes\nTunnelServer = no\n", "").unwrap();
    assert!(c.strict_subnets);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let err = from_text("Name = alpha\nTunnelServer = yes\n", "")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(":2: TunnelServer = yes is not supported"),
        "{err}"
    );
    assert!(err.contains("StrictSubnets"), "{err}");
    let err = from_text("Name = alpha\nStrictSubnets = maybe\n", "")
        .unwrap_err()
        .to_string();
    assert!(err.contains(":2: bad value for StrictSubnets"), "{err}");
    // Values that ask for what meshd does anyway are quiet; others are named.
    let c = from_text(
        "Name = alpha\nForwarding = off\nProxy = socks5 10.0.0.1 1080\n",
        "",
    )
    .unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains(":3: Proxy = socks5 10.0.0.1 1080 is not implemented"));
}
