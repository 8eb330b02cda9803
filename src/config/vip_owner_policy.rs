//! `VIPOwner` and `VIPPolicy` lines: the station that owns a VIP behind
//! this node, and how senders pick among its holders (part of
//! [`super::parse_vip_settings`]).

use super::{fmt_mac, per_vip_lines, SteerPolicy, VipConfig, VipLine};
use crate::config::parse::ConfigLine;
use crate::config::ConfigError;
use meshd_core::switch::{MacAddr, MacParseError};
use std::collections::HashMap;
use std::net::IpAddr;

/// `VIPOwner = ADDRESS MAC` lines: the owner of a VIP on the local side. Errors name the
/// line: no `VirtualIP` for the address, a second `VIPOwner` for it, a MAC that is multicast,
/// zero, or some VIP's virtual MAC (the owner is a real station; frames to a virtual MAC are
/// steered, so that owner would never get them).
pub(super) fn parse_owners(
    lines: &[ConfigLine],
    index: &HashMap<IpAddr, usize>,
    vips: &mut [VipConfig],
) -> Result<(), ConfigError> {
    let usage = "'ADDRESS MAC', e.g. '10.1.1.10 02:42:ac:11:00:02'";
    for VipLine {
        line,
        ip,
        index: i,
        value: mac_s,
    } in per_vip_lines(lines, "VIPOwner", usage, index)?
    {
        let err = |r: String| line.error(format!("VIPOwner: {r}"));
        let MacAddr(mac) = mac_s
            .parse()
            .map_err(|e: MacParseError| err(e.to_string()))?;
        if mac[0] & 0x01 != 0 || mac == [0; 6] {
            return Err(err(format!(
                "{} is not a station's MAC (multicast or zero)",
                fmt_mac(&mac)
            )));
        }
        if let Some(other) = vips.iter().find(|v| v.virtual_mac == mac) {
            return Err(err(format!(
                "{} is the virtual MAC of {}; the owner is the real station that holds {ip}",
                fmt_mac(&mac),
                other.address
            )));
        }
        vips[i].owner = Some(mac);
    }
    Ok(())
}

/// `VIPPolicy = ADDRESS hash|nearest` lines. Errors name the line: no `VirtualIP` for the
/// address, a second `VIPPolicy` for it, another policy.
pub(super) fn parse_policies(
    lines: &[ConfigLine],
    index: &HashMap<IpAddr, usize>,
    vips: &mut [VipConfig],
) -> Result<(), ConfigError> {
    let usage = "'ADDRESS hash|nearest', e.g. '10.1.1.10 nearest'";
    for VipLine {
        line,
        index: i,
        value: policy,
        ..
    } in per_vip_lines(lines, "VIPPolicy", usage, index)?
    {
        let err = |r: String| line.error(format!("VIPPolicy: {r}"));
        vips[i].policy = match policy.to_ascii_lowercase().as_str() {
            "hash" => SteerPolicy::Hash,
            "nearest" => SteerPolicy::Nearest,
            _ => return Err(err(format!("'{policy}' is not a policy (hash or nearest)"))),
        };
    }
    Ok(())
}
