//! Which variables a joiner accepts from an invitation, and where each goes.

use crate::invite::tinc_up::{ifconfig_command, route_command};

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

pub(super) fn find(list: &[&'static str], var: &str) -> Option<&'static str> {
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
