//! `VIPOwner` and `VIPPolicy` lines: the station that owns a VIP behind
//! this node, and how senders pick among its holders (part of
//! [`super::parse_vip_settings`]).

use super::{fmt_mac, tokens, SteerPolicy, VipConfig};
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
    let mut owner_lines: HashMap<IpAddr, &ConfigLine> = HashMap::new();
    for line in lines.iter().filter(|l| l.is("VIPOwner")) {
        let err = |r: String| line.error(format!("VIPOwner: {r}"));
        let toks = tokens(&line.value);
        let [(_, addr_s), (_, mac_s)] = toks[..] else {
            return Err(err(format!(
                "'{}': expected 'ADDRESS MAC', e.g. '10.1.1.10 02:42:ac:11:00:02'",
                line.value
            )));
        };
        let ip: IpAddr = addr_s
            .parse()
            .map_err(|_| err(format!("'{addr_s}' is not an IP address")))?;
        let Some(&i) = index.get(&ip) else {
            return Err(err(format!("{ip} has no VirtualIP line")));
        };
        if let Some(prev) = owner_lines.get(&ip) {
            return Err(err(format!(
                "{ip} already has a VIPOwner at {}",
                prev.location()
            )));
        }
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
        owner_lines.insert(ip, line);
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
    let mut seen: HashMap<IpAddr, &ConfigLine> = HashMap::new();
    for line in lines.iter().filter(|l| l.is("VIPPolicy")) {
        let err = |r: String| line.error(format!("VIPPolicy: {r}"));
        let toks = tokens(&line.value);
        let [(_, addr_s), (_, policy)] = toks[..] else {
            return Err(err(format!(
                "'{}': expected 'ADDRESS hash|nearest', e.g. '10.1.1.10 nearest'",
                line.value
            )));
        };
        let ip: IpAddr = addr_s
            .parse()
            .map_err(|_| err(format!("'{addr_s}' is not an IP address")))?;
        let Some(&i) = index.get(&ip) else {
            return Err(err(format!("{ip} has no VirtualIP line")));
        };
        if let Some(prev) = seen.insert(ip, line) {
            return Err(err(format!(
                "{ip} already has a VIPPolicy at {}",
                prev.location()
            )));
        }
        vips[i].policy = match policy.to_ascii_lowercase().as_str() {
            "hash" => SteerPolicy::Hash,
            "nearest" => SteerPolicy::Nearest,
            _ => return Err(err(format!("'{policy}' is not a policy (hash or nearest)"))),
        };
    }
    Ok(())
}
