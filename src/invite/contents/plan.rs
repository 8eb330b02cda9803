//! The joiner's side: an invitation file parsed into a [`JoinPlan`], what it accepts and
//! refuses, and the files it will write.

use super::accept::{acceptance, find, ACCEPTED_SERVER_VARIABLES};
use super::is_variable_line;
use crate::config::{parse_config_text, valid_netname, ConfigLine, NodeName};
use crate::invite::tinc_up::{ifconfig_command, route_command};
use std::fmt::Write as _;
use std::path::Path;

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
