//! Which tinc script each core event runs, and with which variables
//! (`host-up`, `hosts/NAME-up`, `subnet-up`, ... as TINC-COMPAT §4 describes).

use super::scripts::ScriptRequest;
use crate::config::{Subnet, DEFAULT_SUBNET_WEIGHT};
use crate::node::Event;
use std::net::SocketAddr;

fn remote_vars(vars: &mut Vec<(String, String)>, endpoint: Option<SocketAddr>) {
    if let Some(ep) = endpoint {
        vars.push(("REMOTEADDRESS".into(), ep.ip().to_string()));
        vars.push(("REMOTEPORT".into(), ep.port().to_string()));
    }
}

/// `SUBNET` without the weight, `WEIGHT` empty for the default weight (as tinc).
fn subnet_vars(vars: &mut Vec<(String, String)>, subnet: &Subnet) {
    let bare = Subnet {
        weight: DEFAULT_SUBNET_WEIGHT,
        ..*subnet
    };
    vars.push(("SUBNET".into(), bare.to_string()));
    let weight = if subnet.weight == DEFAULT_SUBNET_WEIGHT {
        String::new()
    } else {
        subnet.weight.to_string()
    };
    vars.push(("WEIGHT".into(), weight));
}

/// The scripts an event runs, in order. `own_name` is NODE for our own subnets.
pub fn scripts_for(event: &Event, own_name: &str) -> Vec<ScriptRequest> {
    match event {
        Event::PeerUp { name, endpoint } => host_scripts("up", name, Some(*endpoint)),
        Event::PeerDown { name, endpoint, .. } => host_scripts("down", name, *endpoint),
        Event::SubnetUp {
            owner,
            subnet,
            endpoint,
        } => vec![subnet_script(
            "subnet-up",
            owner,
            own_name,
            subnet,
            *endpoint,
        )],
        Event::SubnetDown {
            owner,
            subnet,
            endpoint,
        } => vec![subnet_script(
            "subnet-down",
            owner,
            own_name,
            subnet,
            *endpoint,
        )],
        Event::VipUp { vip } => vec![vip_script("vip-up", vip)],
        Event::VipDown { vip } => vec![vip_script("vip-down", vip)],
        Event::HostLearned { .. } | Event::ReadyToLeave { .. } => Vec::new(),
    }
}

/// `vip-up`/`vip-down`: VIP, VIP_PREFIXLEN, VIP_SUBNET (`10.1.1.10/24`), VIRTUAL_MAC, WEIGHT.
fn vip_script(script: &str, vip: &crate::vip::LocalVip) -> ScriptRequest {
    ScriptRequest::new(script)
        .var("VIP", vip.address.to_string())
        .var("VIP_PREFIXLEN", vip.prefix_len.to_string())
        .var("VIP_SUBNET", format!("{}/{}", vip.address, vip.prefix_len))
        .var("VIRTUAL_MAC", vip.virtual_mac.to_string())
        .var("WEIGHT", vip.weight.to_string())
}

fn host_scripts(dir: &str, name: &str, endpoint: Option<SocketAddr>) -> Vec<ScriptRequest> {
    let mut vars = vec![("NODE".to_string(), name.to_string())];
    remote_vars(&mut vars, endpoint);
    vec![
        ScriptRequest {
            script: format!("host-{dir}"),
            vars: vars.clone(),
        },
        ScriptRequest {
            script: format!("hosts/{name}-{dir}"),
            vars,
        },
    ]
}

fn subnet_script(
    script: &str,
    owner: &Option<String>,
    own_name: &str,
    subnet: &Subnet,
    endpoint: Option<SocketAddr>,
) -> ScriptRequest {
    let mut vars = vec![(
        "NODE".to_string(),
        owner.clone().unwrap_or_else(|| own_name.to_string()),
    )];
    if owner.is_some() {
        remote_vars(&mut vars, endpoint);
    }
    subnet_vars(&mut vars, subnet);
    ScriptRequest {
        script: script.to_string(),
        vars,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::DownReason;

    fn get<'a>(r: &'a ScriptRequest, k: &str) -> Option<&'a str> {
        r.vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    #[test]
    fn host_events_run_host_scripts_then_the_node_script() {
        let ev = Event::PeerDown {
            name: "alpha".into(),
            endpoint: Some("192.0.2.1:655".parse().unwrap()),
            reason: DownReason::Timeout,
        };
        let rs = scripts_for(&ev, "gamma");
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].script, "host-down");
        assert_eq!(rs[1].script, "hosts/alpha-down");
        assert_eq!(get(&rs[0], "NODE"), Some("alpha"));
        assert_eq!(get(&rs[0], "REMOTEADDRESS"), Some("192.0.2.1"));
        assert_eq!(get(&rs[0], "REMOTEPORT"), Some("655"));
    }

    #[test]
    fn subnet_events_carry_subnet_and_weight_as_tinc() {
        let ev = Event::SubnetUp {
            owner: Some("alpha".into()),
            subnet: "10.99.0.100#5".parse().unwrap(),
            endpoint: Some("192.0.2.1:655".parse().unwrap()),
        };
        let rs = scripts_for(&ev, "gamma");
        assert_eq!(rs[0].script, "subnet-up");
        assert_eq!(get(&rs[0], "SUBNET"), Some("10.99.0.100"));
        assert_eq!(get(&rs[0], "WEIGHT"), Some("5"));
        assert_eq!(get(&rs[0], "NODE"), Some("alpha"));
        let own = Event::SubnetDown {
            owner: None,
            subnet: "02:00:00:00:00:0a".parse().unwrap(),
            endpoint: None,
        };
        let rs = scripts_for(&own, "gamma");
        assert_eq!(rs[0].script, "subnet-down");
        assert_eq!(get(&rs[0], "NODE"), Some("gamma"));
        assert_eq!(get(&rs[0], "WEIGHT"), Some(""));
        assert_eq!(get(&rs[0], "REMOTEADDRESS"), None);
    }
}
