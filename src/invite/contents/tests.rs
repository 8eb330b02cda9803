//! Tests of invitation files: building, parsing, the generated scripts.

use super::*;
use crate::config::{parse_config_text, NodeName};
use std::path::Path;

/// Runs a generated script with a stub `ip` that records its arguments.
fn run_with_stub_ip(script: &str, vip: &str, prefix: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("args");
    let stub = dir.path().join("ip");
    std::fs::write(
        &stub,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", out.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let st = std::process::Command::new("/bin/sh")
        .args(["-c", script])
        .env("PATH", path)
        .env("VIP", vip)
        .env("VIP_PREFIXLEN", prefix)
        .env("INTERFACE", "mesh0")
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read_to_string(out).unwrap_or_default()
}

#[test]
fn vip_scripts_handle_both_families() {
    assert_eq!(
        run_with_stub_ip(VIP_UP, "fd00:1::10", "64"),
        "-6 addr add fd00:1::10/64 dev mesh0 nodad\n"
    );
    assert_eq!(
        run_with_stub_ip(VIP_UP, "10.1.1.10", "24"),
        "addr add 10.1.1.10/24 dev mesh0\n"
    );
    assert_eq!(
        run_with_stub_ip(VIP_DOWN, "fd00:1::10", "64"),
        "addr del fd00:1::10/64 dev mesh0\n"
    );
}

const KEY: &str = "Ed25519PublicKey = 8kfJb7RBQcUXWxJ4HBbHQ6XCD5DyLhd8cnyU1Qbvk9C";

fn spec() -> InvitationSpec {
    InvitationSpec {
        invitee: NodeName::new("node_2").unwrap(),
        netname: Some("lab".into()),
        inviter: NodeName::new("node_1").unwrap(),
        variables: vec![
            ("Mode".into(), "switch".into()),
            ("DeadInterval".into(), "300ms".into()),
            ("Ifconfig".into(), "10.1.1.2/24".into()),
        ],
        inviter_host_file: format!("Address = 192.0.2.1\nPort = 0\n{KEY}\n"),
        inviter_port: 655,
    }
}

#[test]
fn built_invitation_has_tincs_layout_and_parses_back() {
    let text = build_invitation(&spec());
    assert_eq!(
        text,
        format!(
            "Name = node_2\nNetName = lab\nConnectTo = node_1\nMode = switch\n\
             DeadInterval = 300ms\nIfconfig = 10.1.1.2/24\n{SEPARATOR}\nName = node_1\n\
             Address = 192.0.2.1\nPort = 655\n{KEY}\n"
        )
    );
    // Without a Port line the port is appended; a second Port line is dropped.
    let mut s = spec();
    s.inviter_host_file = format!("{KEY}\n");
    assert!(build_invitation(&s).ends_with(&format!("Name = node_1\n{KEY}\nPort = 655\n")));
    s.inviter_host_file = format!("Port = 1\n{KEY}\nPort = 2\n");
    assert!(build_invitation(&s).ends_with(&format!("Name = node_1\nPort = 655\n{KEY}\n")));
    let plan = parse_invitation(&text).unwrap();
    assert_eq!(plan.name, "node_2");
    assert_eq!(plan.netname.as_deref(), Some("lab"));
    assert_eq!(plan.connect_to(), vec!["node_1"]);
    assert!(plan.refused.is_empty(), "{:?}", plan.refused);
    assert_eq!(
        plan.tinc_up_commands,
        vec![
            "ip link set \"$INTERFACE\" up",
            "ip addr replace 10.1.1.2/24 dev \"$INTERFACE\""
        ]
    );
    assert_eq!(plan.hosts.len(), 1);
    assert_eq!(plan.hosts[0].name, "node_1");
    assert!(plan.hosts[0].text.contains("Port = 655"));
    let conf = plan.tinc_conf();
    assert!(
        conf.contains("Name = node_2\nConnectTo = node_1\nMode = switch\nDeadInterval = 300ms\n")
    );
    let conf_lines = parse_config_text(&conf, Path::new("x")).unwrap();
    assert!(crate::config::parse::lookup(&conf_lines, "Ifconfig").is_none());
}

#[test]
fn tincs_own_invitation_file_is_accepted() {
    let text = format!(
        "Name = beta\nConnectTo = alpha\nMode = switch\n{SEPARATOR}\nName = alpha\n\
         -----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA\n-----END RSA PUBLIC KEY-----\n\
         {KEY}\nAddress = 192.0.2.1\nPort = 655\n"
    );
    let plan = parse_invitation(&text).unwrap();
    assert_eq!(plan.name, "beta");
    assert_eq!(plan.tinc_conf().matches("Mode = switch").count(), 1);
    assert!(plan.hosts[0].text.contains("BEGIN RSA PUBLIC KEY"));
    assert!(plan.tinc_up().contains("edit $0"), "placeholder tinc-up");
}

#[test]
fn a_connect_to_that_is_no_node_name_is_refused() {
    let long = "c".repeat(65);
    let text = format!("Name = n2\nConnectTo = n1\nConnectTo = {long}\nName = n1\n{KEY}\n");
    let plan = parse_invitation(&text).unwrap();
    assert_eq!(plan.connect_to(), vec!["n1"]);
    assert_eq!(
        plan.refused,
        vec!["line 3: ConnectTo: node name is too long (65 bytes, at most 64)".to_string()]
    );
}

#[test]
fn unsafe_and_unknown_variables_are_refused_and_shown() {
    let text = format!(
        "Name = n2\nConnectTo = n1\nScriptsInterpreter = /bin/evil\nFrobnicate = 1\n\
         HealthCheck = 10.1.1.10 exec /bin/true\nHealthCheck = 10.1.1.10 tcp 53\n\
         Subnet = 10.1.1.2\nIfconfig = dhcp\nRoute = 10.2.0.0/16 10.1.1.1\n\
         Ifconfig = 10.1.1.2/24; rm -rf /\nVirtualIP = 10.1.1.10/24\nName = n1\n{KEY}\n"
    );
    let plan = parse_invitation(&text).unwrap();
    let refused = plan.refused.join("\n");
    assert!(
        refused.contains("line 3: ScriptsInterpreter is not accepted"),
        "{refused}"
    );
    assert!(
        refused.contains("line 4: unknown variable Frobnicate"),
        "{refused}"
    );
    assert!(
        refused.contains("line 5: HealthCheck is accepted only with tcp"),
        "{refused}"
    );
    assert!(refused.contains("line 8: Ifconfig = dhcp"), "{refused}");
    assert!(
        refused.contains("line 10: Ifconfig = 10.1.1.2/24; rm -rf /"),
        "{refused}"
    );
    assert_eq!(plan.refused.len(), 5, "{refused}");
    assert_eq!(
        plan.host_lines,
        vec![
            ("HealthCheck".into(), "10.1.1.10 tcp 53".into()),
            ("Subnet".into(), "10.1.1.2".into()),
            ("VirtualIP".into(), "10.1.1.10/24".into())
        ]
    );
    assert!(plan.has_vips());
    assert!(plan
        .tinc_up_commands
        .contains(&"ip route replace 10.2.0.0/16 via 10.1.1.1 dev \"$INTERFACE\"".to_string()));
}

#[test]
fn broken_invitations_are_refused() {
    for (text, why) in [
        ("", "no `Name"),
        ("ConnectTo = x\n", "expected `Name"),
        ("Name = bad-name\n", "line 1: node name 'bad-name' has '-'"),
        (
            &format!("Name = {}\n", "a".repeat(65)),
            "line 1: node name is too long (65 bytes, at most 64)",
        ),
        (
            &format!(
                "Name = n2\nConnectTo = n1\nName = {}\n{KEY}\n",
                "b".repeat(65)
            ),
            "line 3: node name is too long (65 bytes, at most 64)",
        ),
        ("Name = n2\nConnectTo = n1\n", "no host file"),
        (
            &format!("Name = n2\nConnectTo = n1\nName = n2\n{KEY}\n"),
            "the new node itself",
        ),
        (
            &format!("Name = n2\nConnectTo = n1\nName = n1\n{KEY}\nName = n1\n{KEY}\n"),
            "second host file",
        ),
        (
            "Name = n2\nConnectTo = n1\nName = n1\nAddress = x\n",
            "no Ed25519PublicKey",
        ),
        (
            &format!("Name = n2\nConnectTo = n3\nName = n1\n{KEY}\n"),
            "no host file for n3",
        ),
    ] {
        let e = parse_invitation(text).unwrap_err().to_string();
        assert!(e.contains(why), "{text:?}: {e}");
    }
}

#[test]
fn without_connect_to_the_first_host_is_connected_to() {
    // tinc's invite_tinc_up test: an invitation-created script writes Name, Ifconfig and
    // the inviter's exported host file, no ConnectTo.
    let plan = parse_invitation(&format!("Name = n2\nName = n1\n{KEY}\n")).unwrap();
    assert_eq!(plan.connect_to(), vec!["n1"]);
}

#[test]
fn presence_checks_and_vip_owner_are_accepted() {
    assert_eq!(
        acceptance("HealthCheck", "10.1.1.10 presence interval=100ms"),
        Ok("HealthCheck")
    );
    assert_eq!(
        acceptance("vipowner", "10.1.1.10 02:00:00:00:00:01"),
        Ok("VIPOwner")
    );
    assert!(acceptance("HealthCheck", "10.1.1.10 exec true").is_err());
}

#[test]
fn an_ipv6_vip_and_its_settings_are_handed_over_whole() {
    let lines = [
        ("VirtualIP", "fd00:1::10/64#5"),
        ("VirtualIP", "10.1.1.10/24"),
        ("VirtualMAC", "fd00:1::10 06:00:00:00:00:10"),
        ("VIPOwner", "fd00:1::10 02:00:00:00:00:01"),
        ("VIPPolicy", "fd00:1::10 nearest"),
        (
            "HealthCheck",
            "fd00:1::10 presence interval=100ms rise=2 fall=2",
        ),
        ("HealthCheck", "10.1.1.10 tcp 53"),
    ];
    let body: String = lines.iter().map(|(v, x)| format!("{v} = {x}\n")).collect();
    let plan = parse_invitation(&format!(
        "Name = n2\nConnectTo = n1\n{body}Name = n1\n{KEY}\n"
    ))
    .unwrap();
    assert!(plan.refused.is_empty(), "{:?}", plan.refused);
    let want: Vec<(String, String)> = lines
        .iter()
        .map(|(v, x)| (v.to_string(), x.to_string()))
        .collect();
    assert_eq!(plan.host_lines, want);
    assert!(plan.has_vips());
}
