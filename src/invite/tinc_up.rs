//! The joiner's generated `tinc-up`: `Ifconfig` and `Route` lines of an invitation become
//! `ip` commands, with every value parsed and re-printed (nothing from the inviter reaches
//! the shell verbatim).

use crate::switch::{MacAddr, MacParseError, MacParseReason};
use std::net::IpAddr;

/// `Ifconfig = ADDR/LEN | ADDR | MAC` → a shell command with validated, quoted values.
pub fn ifconfig_command(value: &str) -> Result<String, String> {
    let v = value.trim();
    match v.parse::<MacAddr>() {
        Ok(mac) => return Ok(format!("ip link set \"$INTERFACE\" address {mac}")),
        Err(
            e @ MacParseError {
                reason: MacParseReason::DashSeparator,
                ..
            },
        ) => return Err(format!("Ifconfig = {v}: {e}")),
        Err(_) => {}
    }
    if ["dhcp", "dhcp6", "slaac"]
        .iter()
        .any(|d| v.eq_ignore_ascii_case(d))
    {
        return Err(format!(
            "Ifconfig = {v} is not supported by meshd's generated tinc-up (give ADDR/LEN)"
        ));
    }
    let (addr, len) = parse_prefix(v).map_err(|e| format!("Ifconfig = {v}: {e}"))?;
    Ok(format!("ip addr replace {addr}/{len} dev \"$INTERFACE\""))
}

/// `Route = SUBNET [GATEWAY]` → `ip route replace ...`.
pub fn route_command(value: &str) -> Result<String, String> {
    let mut parts = value.split_whitespace();
    let (Some(subnet), gw, None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("Route = {value}: expected SUBNET [GATEWAY]"));
    };
    let (addr, len) = parse_prefix(subnet).map_err(|e| format!("Route = {value}: {e}"))?;
    match gw {
        None => Ok(format!("ip route replace {addr}/{len} dev \"$INTERFACE\"")),
        Some(g) => {
            let gw: IpAddr = g
                .parse()
                .map_err(|_| format!("Route = {value}: '{g}' is not an IP address"))?;
            if gw.is_ipv4() != addr.is_ipv4() {
                return Err(format!(
                    "Route = {value}: gateway and subnet families differ"
                ));
            }
            Ok(format!(
                "ip route replace {addr}/{len} via {gw} dev \"$INTERFACE\""
            ))
        }
    }
}

/// `ADDR/LEN` or `ADDR` (a host route) with a validated address and length.
fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("'{a}' is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|&l| l <= max)
            .ok_or_else(|| format!("'{l}' is not a prefix length (0-{max})"))?,
    };
    Ok((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifconfig_and_route_values_are_validated() {
        assert_eq!(
            ifconfig_command("02:aa:00:00:00:02").unwrap(),
            "ip link set \"$INTERFACE\" address 02:aa:00:00:00:02"
        );
        // The one MAC grammar (tinc's): one-digit groups yes, '-' no.
        assert_eq!(
            ifconfig_command("2:0:0:0:0:a").unwrap(),
            "ip link set \"$INTERFACE\" address 02:00:00:00:00:0a"
        );
        let e = ifconfig_command("02-00-00-00-00-0a").unwrap_err();
        assert!(e.contains("'-' is not a MAC separator (use ':')"), "{e}");
        assert_eq!(
            ifconfig_command("fd00::2/64").unwrap(),
            "ip addr replace fd00::2/64 dev \"$INTERFACE\""
        );
        assert_eq!(
            ifconfig_command("10.1.1.2").unwrap(),
            "ip addr replace 10.1.1.2/32 dev \"$INTERFACE\""
        );
        assert!(ifconfig_command("10.1.1.2/33").is_err());
        assert!(ifconfig_command("$(reboot)").is_err());
        assert!(route_command("10.0.0.0/8 fd00::1").is_err());
        assert!(route_command("10.0.0.0/8 a b").is_err());
    }
}
