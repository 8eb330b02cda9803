//! What an invitation file says and what a joiner makes of it: the inviter builds the file
//! (tinc's layout: the invitee's own chunk, a separator, the inviter's host file); the joiner
//! parses it into a [`JoinPlan`] — which variables it accepts, which it refuses, and the files
//! it will write.

use super::tinc_up::{ifconfig_command, route_command};
use crate::config::{parse_config_text, valid_netname, ConfigLine, NodeName};
use std::fmt::Write as _;
use std::path::Path;

/// The comment line between the invitee's chunk and the host files (tinc's).
pub const SEPARATOR: &str = "#---------------------------------------------------------------#";

/// Server variables an inviter hands over by default when its own configuration sets them:
/// the ones every node of a network should agree on.
pub const HANDED_OVER_BY_DEFAULT: &[&str] = &[
    "Mode",
    "Broadcast",
    "HelloInterval",
    "DeadInterval",
    "InterfaceMTU",
    "KeyExpire",
    "RekeyPackets",
];

/// Variables a joiner writes to its `tinc.conf` when an invitation carries them.
pub const ACCEPTED_SERVER_VARIABLES: &[&str] = &[
    "AddressFamily",
    "AnswerARP",
    "ARPExpire",
    "AutoConnect",
    "Broadcast",
    "BroadcastSubnet",
    "ConnectTo",
    "DeadInterval",
    "DirectOnly",
    "FlowIdleTimeout",
    "HelloInterval",
    "InterfaceMTU",
    "KeyExpire",
    "LocalDiscovery",
    "MACExpire",
    "MACTableMax",
    "MACTableMaxPerNode",
    "Mode",
    "PingInterval",
    "PingTimeout",
    "RekeyPackets",
    "ReplayWindow",
    "ShutdownGrace",
    "VIPHoldDown",
];

/// Variables a joiner writes to its own `hosts/NAME` when an invitation carries them.
pub const ACCEPTED_HOST_VARIABLES: &[&str] = &[
    "ClampMSS",
    "Compression",
    "HealthCheck",
    "IndirectData",
    "Subnet",
    "TCPOnly",
    "VIPOwner",
    "VIPPolicy",
    "VirtualIP",
    "VirtualMAC",
    "Weight",
];

/// Variables that become commands in a generated `tinc-up` (values are validated first).
pub const TINC_UP_VARIABLES: &[&str] = &["Ifconfig", "Route"];

fn find(list: &[&'static str], var: &str) -> Option<&'static str> {
    list.iter().copied().find(|v| v.eq_ignore_ascii_case(var))
}

/// Whether a joiner accepts `var = value` from an invitation; `Err` says why not.
pub fn acceptance(var: &str, value: &str) -> Result<&'static str, String> {
    if let Some(v) = find(ACCEPTED_HOST_VARIABLES, var) {
        if v == "HealthCheck" {
            // presence runs no command either: meshd only sends ARP/ND into its own TAP.
            let kind = value.split_whitespace().nth(1).unwrap_or("");
            if !["tcp", "udp", "presence"]
                .iter()
                .any(|k| kind.eq_ignore_ascii_case(k))
            {
                return Err(
                    "HealthCheck is accepted only with tcp, udp or presence checks (exec would run commands)"
                        .into(),
                );
            }
        }
        return Ok(v);
    }
    if let Some(v) = find(ACCEPTED_SERVER_VARIABLES, var) {
        return Ok(v);
    }
    if let Some(v) = find(TINC_UP_VARIABLES, var) {
        return match v {
            "Ifconfig" => ifconfig_command(value).map(|_| v),
            _ => route_command(value).map(|_| v),
        };
    }
    if crate::config::known::is_known(var) {
        Err(format!("{var} is not accepted from an invitation"))
    } else {
        Err(format!("unknown variable {var}"))
    }
}

/// What the inviter puts in an invitation file.
#[derive(Debug, Clone)]
pub struct InvitationSpec {
    /// The new node's name.
    pub invitee: NodeName,
    /// The network's name, if the inviter has one (`-n NET`).
    pub netname: Option<String>,
    /// The inviter's name (the joiner's `ConnectTo`).
    pub inviter: NodeName,
    /// Extra `Variable = Value` lines for the invitee's chunk, in order.
    pub variables: Vec<(String, String)>,
    /// The inviter's host file text (its key, addresses).
    pub inviter_host_file: String,
    /// The port the inviter's daemon really uses (replaces any `Port` line of the host file).
    pub inviter_port: u16,
}

/// The text of an invitation file.
pub fn build_invitation(spec: &InvitationSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Name = {}", spec.invitee);
    if let Some(net) = &spec.netname {
        if valid_netname(net) && !net.contains(char::is_whitespace) {
            let _ = writeln!(out, "NetName = {net}");
        }
    }
    let _ = writeln!(out, "ConnectTo = {}", spec.inviter);
    for (var, value) in &spec.variables {
        let _ = writeln!(out, "{var} = {value}");
    }
    let _ = writeln!(out, "{SEPARATOR}");
    let _ = writeln!(out, "Name = {}", spec.inviter);
    // The inviter's host file verbatim, with the port it listens on in place of the first
    // Port line (appended if there is none): the joiner's copy then reads like the inviter's
    // own (tinc's invite test compares them).
    let mut port_written = false;
    for line in spec.inviter_host_file.lines() {
        if is_variable_line(line, "Name") {
            continue;
        }
        if is_variable_line(line, "Port") {
            if !port_written {
                let _ = writeln!(out, "Port = {}", spec.inviter_port);
                port_written = true;
            }
            continue;
        }
        let _ = writeln!(out, "{line}");
    }
    if !port_written {
        let _ = writeln!(out, "Port = {}", spec.inviter_port);
    }
    out
}

/// Whether `line` sets `var` (case-insensitive; `=` or blanks as separator).
fn is_variable_line(line: &str, var: &str) -> bool {
    let t = line.trim_start();
    let name_end = t
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(t.len());
    t[..name_end].eq_ignore_ascii_case(var)
}

/// One host chunk of an invitation: a node's name and its host file, verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostChunk {
    /// The node.
    pub name: NodeName,
    /// The host file's text (without the `Name = ` line).
    pub text: String,
}

/// What the joiner will write, decided from an invitation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinPlan {
    /// The new node's name.
    pub name: NodeName,
    /// The network's name the inviter suggested.
    pub netname: Option<String>,
    /// Lines for `tinc.conf` after `Name`.
    pub server_lines: Vec<(String, String)>,
    /// Lines for the own `hosts/NAME` (before the public key).
    pub host_lines: Vec<(String, String)>,
    /// Commands for the generated `tinc-up` (from Ifconfig/Route); empty → the placeholder.
    pub tinc_up_commands: Vec<String>,
    /// Other nodes' host files.
    pub hosts: Vec<HostChunk>,
    /// Lines refused, each `line N: VAR: why`.
    pub refused: Vec<String>,
}

impl JoinPlan {
    /// The nodes this node will connect to.
    pub fn connect_to(&self) -> Vec<&str> {
        self.server_lines
            .iter()
            .filter(|(v, _)| v == "ConnectTo")
            .map(|(_, n)| n.as_str())
            .collect()
    }

    /// Whether the invitation gives this node a VIP (then vip-up/vip-down are generated).
    pub fn has_vips(&self) -> bool {
        self.host_lines.iter().any(|(v, _)| v == "VirtualIP")
    }

    /// `tinc.conf` (tinc's name, so tincd and `tinc fsck` read the directory too).
    pub fn tinc_conf(&self) -> String {
        let mut out = String::from(
            "# Written by `meshd join` from an invitation (tinc 1.1 syntax).\n\
             # This node's own host variables (Port, Address, Subnet) live in hosts/",
        );
        let _ = writeln!(out, "{}.", self.name);
        let _ = writeln!(out, "Name = {}", self.name);
        for (v, value) in &self.server_lines {
            let _ = writeln!(out, "{v} = {value}");
        }
        // As `init`: tincd reading this directory then runs meshd's mode, not its router.
        if !self
            .server_lines
            .iter()
            .any(|(v, _)| v.eq_ignore_ascii_case("Mode"))
        {
            out.push_str("Mode = switch\n");
        }
        out
    }

    /// The own host file, ending with the public key line.
    pub fn own_host_file(&self, port: Option<u16>, public_key: &str) -> String {
        let mut out = String::new();
        if let Some(p) = port {
            let _ = writeln!(out, "Port = {p}");
        }
        for (v, value) in &self.host_lines {
            let _ = writeln!(out, "{v} = {value}");
        }
        let _ = writeln!(out, "Ed25519PublicKey = {public_key}");
        out
    }

    /// The `tinc-up` script: the generated commands, or a placeholder that only sets the link up.
    pub fn tinc_up(&self) -> String {
        let mut out = String::from("#!/bin/sh\n");
        if self.tinc_up_commands.is_empty() {
            out.push_str(
                "# Run by meshd when the virtual interface has been created.\n\
                 # Environment: INTERFACE, NAME, NETNAME, DEVICE.\n\
                 ip link set \"$INTERFACE\" up\n\
                 # ip addr add 10.1.1.x/24 dev \"$INTERFACE\"\n\
                 echo \"meshd: edit $0 to give $INTERFACE an address\" >&2\n",
            );
        } else {
            out.push_str(
                "# Written by `meshd join` from the invitation's Ifconfig/Route lines.\n\
                 # Run by meshd when the virtual interface has been created.\n",
            );
            for c in &self.tinc_up_commands {
                out.push_str(c);
                out.push('\n');
            }
        }
        out
    }
}

/// `vip-up`: adds the VIP to the interface when this node starts serving it
/// (an IPv6 VIP `nodad`: every holder has it at once, so duplicate address
/// detection must not run).
pub const VIP_UP: &str = "#!/bin/sh\n\
# Written by `meshd join`: run when this node starts serving a VIP. meshd does not add\n\
# the address itself; this script does. Variables: VIP, VIP_PREFIXLEN, VIRTUAL_MAC, INTERFACE.\n\
# An IPv6 VIP is added nodad, as keepalived does: all holders have it at once.\n\
case \"$VIP\" in\n\
*:*) ip -6 addr add \"$VIP/$VIP_PREFIXLEN\" dev \"$INTERFACE\" nodad 2>/dev/null || true ;;\n\
*) ip addr add \"$VIP/$VIP_PREFIXLEN\" dev \"$INTERFACE\" 2>/dev/null || true ;;\n\
esac\n";

/// `vip-down`: removes it when this node stops serving it.
pub const VIP_DOWN: &str = "#!/bin/sh\n\
# Written by `meshd join`: run when this node stops serving a VIP.\n\
ip addr del \"$VIP/$VIP_PREFIXLEN\" dev \"$INTERFACE\" 2>/dev/null || true\n";

/// Why an invitation file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the invitation is not usable: {0}")]
pub struct InvitationError(String);

/// One chunk while splitting: the line of its `Name`, the name, its numbered lines.
type Chunk<'a> = (usize, String, Vec<(usize, &'a str)>);

/// Parses an invitation file. `inviter` is the name the joiner should find a host chunk for.
pub fn parse_invitation(text: &str) -> Result<JoinPlan, InvitationError> {
    let err = |m: String| InvitationError(m);
    // Split into chunks at every `Name` line.
    let mut chunks: Vec<Chunk> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if is_variable_line(line, "Name") {
            let value = line
                .trim_start()
                .get(4..)
                .unwrap_or("")
                .trim_start_matches(|c: char| c == '=' || c.is_whitespace())
                .trim_end()
                .to_string();
            chunks.push((n, value, Vec::new()));
            continue;
        }
        match chunks.last_mut() {
            Some((_, _, lines)) => lines.push((n, line)),
            None => {
                let t = line.trim();
                if !(t.is_empty() || t.starts_with('#')) {
                    return Err(err(format!(
                        "line {n}: expected `Name = NEWNODE` first, found '{}'",
                        t.escape_debug()
                    )));
                }
            }
        }
    }
    let mut chunks = chunks.into_iter();
    let (_, name, own_lines) = chunks
        .next()
        .ok_or_else(|| err("no `Name = ` line".into()))?;
    let name = NodeName::new(name).map_err(|e| err(format!("line 1: {e}")))?;
    let own_text: String = own_lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let parsed =
        parse_config_text(&own_text, Path::new("invitation")).map_err(|e| err(e.message))?;
    let line_of = |cl: &ConfigLine| own_lines.get(cl.line - 1).map(|(n, _)| *n).unwrap_or(0);
    let mut plan = JoinPlan {
        name: name.clone(),
        netname: None,
        server_lines: Vec::new(),
        host_lines: Vec::new(),
        tinc_up_commands: Vec::new(),
        hosts: Vec::new(),
        refused: Vec::new(),
    };
    let mut ifconfig = Vec::new();
    let mut routes = Vec::new();
    for cl in &parsed {
        let n = line_of(cl);
        if cl.is("NetName") {
            if valid_netname(&cl.value) && !cl.value.contains(char::is_whitespace) {
                plan.netname = Some(cl.value.clone());
            } else {
                plan.refused.push(format!(
                    "line {n}: NetName '{}' is not a safe name",
                    cl.value
                ));
            }
            continue;
        }
        match acceptance(&cl.variable, &cl.value) {
            Ok(v) if find(ACCEPTED_SERVER_VARIABLES, v).is_some() => {
                if v == "ConnectTo" {
                    if let Err(e) = NodeName::new(cl.value.as_str()) {
                        plan.refused.push(format!("line {n}: ConnectTo: {e}"));
                        continue;
                    }
                }
                plan.server_lines.push((v.to_string(), cl.value.clone()))
            }
            Ok("Ifconfig") => ifconfig.push(ifconfig_command(&cl.value).unwrap_or_default()),
            Ok("Route") => routes.push(route_command(&cl.value).unwrap_or_default()),
            Ok(v) => plan.host_lines.push((v.to_string(), cl.value.clone())),
            Err(why) => plan.refused.push(format!("line {n}: {why}")),
        }
    }
    if !ifconfig.is_empty() || !routes.is_empty() {
        // A MAC must be set before the link goes up; addresses and routes after.
        let (macs, addrs): (Vec<String>, Vec<String>) =
            ifconfig.into_iter().partition(|c| c.contains(" address "));
        plan.tinc_up_commands.extend(macs);
        plan.tinc_up_commands
            .push("ip link set \"$INTERFACE\" up".to_string());
        plan.tinc_up_commands.extend(addrs);
        plan.tinc_up_commands.extend(routes);
    }
    for (n, host, lines) in chunks {
        let host = NodeName::new(host).map_err(|e| err(format!("line {n}: {e}")))?;
        if host == name {
            return Err(err(format!(
                "line {n}: a host file for {name}, the new node itself"
            )));
        }
        if plan.hosts.iter().any(|h| h.name == host) {
            return Err(err(format!("line {n}: a second host file for {host}")));
        }
        let text: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
        let text = text.trim_end_matches('\n').to_string() + "\n";
        let has_key = text
            .lines()
            .any(|l| is_variable_line(l, "Ed25519PublicKey"));
        if !has_key {
            return Err(err(format!(
                "line {n}: the host file of {host} has no Ed25519PublicKey"
            )));
        }
        plan.hosts.push(HostChunk { name: host, text });
    }
    if plan.hosts.is_empty() {
        return Err(err(
            "it carries no host file (not even the inviter's)".into()
        ));
    }
    for target in plan.connect_to() {
        if !plan.hosts.iter().any(|h| h.name == target) {
            return Err(err(format!(
                "ConnectTo = {target}, but no host file for {target}"
            )));
        }
    }
    // An invitation rewritten by an invitation-created script may name no ConnectTo (tinc's
    // joiner then finds the network by AutoConnect): connect to the first host file's node,
    // the inviter's in every invitation `invite` writes.
    if plan.connect_to().is_empty() {
        if let Some(first) = plan.hosts.first().map(|h| h.name.to_string()) {
            plan.server_lines.push(("ConnectTo".to_string(), first));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(conf
            .contains("Name = node_2\nConnectTo = node_1\nMode = switch\nDeadInterval = 300ms\n"));
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
}
