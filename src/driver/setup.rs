//! Turns a network directory into what the core and the driver need: the
//! node's settings, the known hosts with their keys and resolved addresses,
//! and the addresses to listen on.

use crate::config::{self, AddressFamily, AddressHost, HostAddress, NetDir, NodeName};
use crate::keys::PublicKey;
use crate::node::{KnownHost, NodeConfig};
use crate::switch::{MacAddr, MacTableLimits, SwitchConfig};
use crate::vip::LocalVip;
use anyhow::{Context, Result};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Everything loaded from the network directory.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Settings for the core.
    pub node: NodeConfig,
    /// Every host file but our own.
    pub hosts: Vec<KnownHost>,
    /// Where to listen, BindToAddress lines first, then ListenAddress (the wildcard without
    /// either): a UDP socket (the mesh) and a join listener (TCP) each, as tincd's listen
    /// sockets. Never empty; port 0 after the first means the first one's port.
    pub listen_addresses: Vec<SocketAddr>,
    /// `BindToInterface`: every listening socket is bound to this device (SO_BINDTODEVICE).
    pub bind_interface: Option<String>,
    /// `AddressFamily`.
    pub address_family: AddressFamily,
    /// Our private key file.
    pub private_key_file: PathBuf,
    /// Write host files learned from gossip into hosts/.
    pub store_learned_hosts: bool,
    /// The TAP device's name: `Interface`, else the network name, else the directory's name.
    pub interface: String,
    /// MTU to set on the TAP.
    pub interface_mtu: u32,
    /// `DeviceType = dummy`: no TAP at all.
    pub dummy_device: bool,
    /// `ScriptTimeout`.
    pub script_timeout: std::time::Duration,
    /// `ScriptsInterpreter`.
    pub scripts_interpreter: Option<String>,
    /// `ScriptsExtension`.
    pub scripts_extension: String,
    /// Health checks of our VIPs.
    pub health_checks: Vec<crate::config::vip::HealthCheckSpec>,
    /// `MetricsAddress`: where to serve Prometheus metrics.
    pub metrics_address: Option<SocketAddr>,
    /// Non-fatal problems, to log.
    pub warnings: Vec<String>,
    /// The configuration file, when it has no `Mode` line (meshd says it runs switch mode).
    pub no_mode_line: Option<PathBuf>,
}

/// Resolves `Address` lines (names through the system resolver) with `default_port`.
pub fn resolve_addresses(
    addresses: &[HostAddress],
    default_port: u16,
    family: AddressFamily,
    warnings: &mut Vec<String>,
) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for a in addresses {
        let port = a.port_or(default_port);
        let resolved: Vec<SocketAddr> = match &a.host {
            AddressHost::Ip(ip) => vec![SocketAddr::new(*ip, port)],
            AddressHost::Name(name) => match (name.as_str(), port).to_socket_addrs() {
                Ok(it) => it.collect(),
                Err(err) => {
                    warnings.push(format!("cannot resolve Address {name}: {err}"));
                    Vec::new()
                }
            },
        };
        for addr in resolved {
            let keep = match family {
                AddressFamily::Any => true,
                AddressFamily::Ipv4 => addr.is_ipv4(),
                AddressFamily::Ipv6 => addr.is_ipv6(),
            };
            if keep && !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

/// Loads the network directory.
pub fn load(netdir: &NetDir) -> Result<Setup> {
    let server = config::load_server_config(netdir)?;
    let mut warnings = server.warnings.clone();
    let family = server.address_family;
    let mut node = NodeConfig::new(server.name.clone());
    node.advertised_addresses =
        resolve_addresses(&server.addresses, server.port, family, &mut warnings);
    node.connect_to = server.connect_to.clone();
    node.hello_interval = server.hello_interval;
    node.dead_interval = server.dead_interval;
    node.rekey_after_time = server.key_expire;
    node.rekey_after_packets = server.rekey_packets;
    node.replay_window = server.replay_window;
    node.subnets = server.subnets.clone();
    node.switch = SwitchConfig {
        macs: MacTableLimits {
            expire: server.mac_expire,
            max_total: server.mac_table_max,
            max_per_port: server.mac_table_max_per_node,
            sticky: server.strict_subnets,
        },
        neighbour_expire: server.arp_expire,
        answer_arp: server.answer_arp,
        // Ethernet header, one VLAN tag and the payload the MTU allows.
        max_frame_len: server.interface_mtu as usize + 18,
        ..SwitchConfig::default()
    };
    let vip_conf = config::vip::parse_vip_settings(&server.raw, &mut warnings)?;
    let mut health_checks = Vec::new();
    for v in &vip_conf.vips {
        // Presence is probed by the core; the driver runs the other checks.
        let driver_checks: Vec<_> = v
            .checks
            .iter()
            .filter(|c| c.kind != config::vip::CheckKind::Presence)
            .cloned()
            .collect();
        node.vips.push(LocalVip {
            address: v.address,
            prefix_len: v.prefix_len,
            weight: v.weight,
            virtual_mac: MacAddr(v.virtual_mac),
            checked: !driver_checks.is_empty(),
            owner: v.owner.map(MacAddr),
            presence: v.presence().map(|c| crate::vip::PresenceSpec {
                interval: c.interval,
                rise: c.rise,
                fall: c.fall,
            }),
            policy: v.policy,
        });
        health_checks.extend(driver_checks);
    }
    node.vip_settings = crate::vip::VipEngineSettings {
        hold_down: vip_conf.hold_down,
        flow_idle_timeout: vip_conf.flow_idle_timeout,
        ..crate::vip::VipEngineSettings::default()
    };
    node.shutdown_grace = vip_conf.shutdown_grace;
    node.strict_subnets = server.strict_subnets;

    let (host_files, errors) = config::load_all_hosts(netdir);
    for e in errors {
        warnings.push(e.to_string());
    }
    let mut hosts = Vec::new();
    for h in host_files {
        // Our own host file was read (and warned about) with the server config too.
        for w in &h.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
        if h.name == server.name {
            continue;
        }
        let public_key = match &h.ed25519_public_key {
            Some(text) => match PublicKey::from_tinc_base64(text) {
                Ok(k) => Some(k),
                Err(err) => {
                    warnings.push(format!(
                        "{}: bad Ed25519PublicKey: {err}",
                        netdir.host_file(&h.name).display()
                    ));
                    None
                }
            },
            None => None,
        };
        // The host file's addresses, then where the node was last reached (tinc's cache/).
        let mut wanted = h.addresses.clone();
        for a in config::addr_cache::load(netdir, h.name.as_str()) {
            if !wanted.contains(&a) {
                wanted.push(a);
            }
        }
        let addresses = resolve_addresses(&wanted, h.port, family, &mut warnings);
        hosts.push(KnownHost {
            name: h.name.clone(),
            public_key,
            addresses,
            subnets: h.subnets.clone(),
            vips: host_file_vips(&h, &mut warnings),
            path: h.path,
        });
    }
    for name in netdir.revoked_names() {
        if hosts.iter().any(|h| h.name == name) {
            warnings.push(format!(
                "{} and {} both exist: the host file wins, {name} is trusted \
                 (remove one of them)",
                netdir.host_file(&name).display(),
                netdir.revoked_dir().join(name.as_str()).display()
            ));
        } else {
            node.revoked.push(name);
        }
    }
    for c in &server.connect_to {
        if !hosts.iter().any(|h| &h.name == c) {
            warnings.push(format!(
                "ConnectTo = {c}: there is no {}",
                netdir.host_file(c).display()
            ));
        }
    }

    // tincd's listen sockets: one per BindToAddress, then per ListenAddress; the wildcard
    // without either.
    let mut listen_addresses: Vec<SocketAddr> = Vec::new();
    for b in server.bind_to_address.iter().chain(&server.listen_address) {
        let port = b.port.unwrap_or(server.port);
        let addr = match b.addr {
            Some(ip) => SocketAddr::new(ip, port),
            None => super::udp::wildcard(family != AddressFamily::Ipv4, port),
        };
        if !listen_addresses.contains(&addr) {
            listen_addresses.push(addr);
        }
    }
    if listen_addresses.is_empty() {
        listen_addresses.push(super::udp::wildcard(
            family != AddressFamily::Ipv4,
            server.port,
        ));
    }
    let bind_interface = match server.get("BindToInterface") {
        None => None,
        Some(line) => {
            let name = line.value.trim();
            // IFNAMSIZ: 15 bytes and the NUL.
            if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', '\t']) {
                anyhow::bail!(
                    "{}: bad value for BindToInterface: '{}' (a network interface name, at \
                     most 15 characters, e.g. eth0)",
                    line.location(),
                    line.value
                );
            }
            Some(name.to_string())
        }
    };
    let metrics_address = match server.get("MetricsAddress") {
        None => None,
        Some(line) => Some(line.value.parse::<SocketAddr>().map_err(|_| {
            anyhow::anyhow!(
                "{}: bad value for MetricsAddress: '{}' (ADDRESS:PORT, e.g. 127.0.0.1:9655)",
                line.location(),
                line.value
            )
        })?),
    };
    let no_mode_line = server.get("Mode").is_none().then(|| netdir.config_file());
    Ok(Setup {
        no_mode_line,
        node,
        hosts,
        listen_addresses,
        bind_interface,
        address_family: family,
        private_key_file: server.private_key_file.clone(),
        store_learned_hosts: server.store_learned_hosts,
        interface: server
            .interface
            .clone()
            .unwrap_or_else(|| default_interface(netdir)),
        interface_mtu: server.interface_mtu,
        dummy_device: server.device_type == config::DeviceType::Dummy,
        script_timeout: server.script_timeout,
        scripts_interpreter: server.scripts_interpreter.clone(),
        scripts_extension: server.scripts_extension.clone(),
        health_checks,
        metrics_address,
        warnings,
    })
}

/// The TAP name when `Interface` is not set: the network name, else the
/// network directory's name, cut to the kernel's 15 bytes.
pub fn default_interface(netdir: &NetDir) -> String {
    let base = netdir.netname.clone().unwrap_or_else(|| {
        netdir
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let clean: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(15)
        .collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        "meshd".to_string()
    } else {
        clean
    }
}

/// Writes `hosts/NAME` for a node learned from gossip (only if it does not exist).
pub fn store_learned_host(netdir: &NetDir, name: &NodeName, key: &PublicKey) -> Result<()> {
    let path = netdir.host_file(name);
    if path.exists() {
        return Ok(());
    }
    let text = format!(
        "# The following line was automatically added by meshd\nEd25519PublicKey = {key}\n"
    );
    config::write_atomic(&path, text.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", path.display()))?;
    tracing::info!(node = %name, file = %path.display(), "stored learned host file");
    Ok(())
}

/// The VIPs another node's host file gives it (its `VirtualIP` and
/// `VirtualMAC` lines): what `StrictSubnets` lets it claim. A host file whose
/// VIP lines do not parse gives none, with a warning naming the line.
fn host_file_vips(host: &config::HostConfig, warnings: &mut Vec<String>) -> Vec<LocalVip> {
    let mut ignored = Vec::new();
    match config::vip::parse_vip_settings(&host.raw, &mut ignored) {
        Ok(settings) => settings
            .vips
            .iter()
            .map(|v| LocalVip {
                address: v.address,
                prefix_len: v.prefix_len,
                weight: v.weight,
                virtual_mac: MacAddr(v.virtual_mac),
                checked: false,
                owner: None,
                presence: None,
                policy: v.policy,
            })
            .collect(),
        Err(err) => {
            warnings.push(format!("{err} (the node is given no VIP here)"));
            Vec::new()
        }
    }
}
