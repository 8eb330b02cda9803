//! The inviter's side: the text of an invitation file.

use super::{is_variable_line, SEPARATOR};
use crate::config::{valid_netname, NodeName};
use std::fmt::Write as _;

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
