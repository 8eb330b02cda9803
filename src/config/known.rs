//! The table of recognised variable names (tinc's server and host variables plus meshd's own).
//!
//! Known variables that meshd does not use (e.g. `Cipher`, `Compression`) are accepted
//! silently; anything else produces an "unknown variable" warning.

/// tinc server (`tinc.conf`) variables.
pub const TINC_SERVER_VARIABLES: &[&str] = &[
    "AddressFamily",
    "AutoConnect",
    "BindToAddress",
    "BindToInterface",
    "Broadcast",
    "BroadcastSubnet",
    "ConnectTo",
    "DecrementTTL",
    "Device",
    "DeviceStandby",
    "DeviceType",
    "DirectOnly",
    "Ed25519PrivateKeyFile",
    "ExperimentalProtocol",
    "Forwarding",
    "FWMark",
    "GraphDumpFile",
    "Hostnames",
    "IffOneQueue",
    "Interface",
    "InvitationExpire",
    "KeyExpire",
    "ListenAddress",
    "LocalDiscovery",
    "LocalDiscoveryAddress",
    "LogLevel",
    "MACExpire",
    "MaxConnectionBurst",
    "MaxOutputBufferSize",
    "MaxTimeout",
    "Mode",
    "MTUInfoInterval",
    "Name",
    "PingInterval",
    "PingTimeout",
    "PriorityInheritance",
    "PrivateKey",
    "PrivateKeyFile",
    "ProcessPriority",
    "Proxy",
    "ReplayWindow",
    "Sandbox",
    "ScriptsExtension",
    "ScriptsInterpreter",
    "StrictSubnets",
    "TunnelServer",
    "UDPDiscovery",
    "UDPDiscoveryInterval",
    "UDPDiscoveryKeepaliveInterval",
    "UDPDiscoveryTimeout",
    "UDPInfoInterval",
    "UDPRcvBuf",
    "UDPSndBuf",
    "UPnP",
    "UPnPDiscoverWait",
    "UPnPRefreshPeriod",
    "VDEGroup",
    "VDEPort",
];

/// tinc host (`hosts/NAME`) variables.
pub const TINC_HOST_VARIABLES: &[&str] = &[
    "Address",
    "Cipher",
    "ClampMSS",
    "Compression",
    "Digest",
    "Ed25519PublicKey",
    "Ed25519PublicKeyFile",
    "IndirectData",
    "MACLength",
    "PMTU",
    "PMTUDiscovery",
    "Port",
    "PublicKey",
    "PublicKeyFile",
    "Subnet",
    "TCPOnly",
    "Weight",
];

/// Variables that only meshd understands.
pub const MESHD_VARIABLES: &[&str] = &[
    "AnswerARP",
    "ARPExpire",
    "DeadInterval",
    "FlowIdleTimeout",
    "HealthCheck",
    "HealthCheckFall",
    "HealthCheckInterval",
    "HealthCheckRise",
    "HealthCheckTimeout",
    "HelloInterval",
    "InterfaceMTU",
    "MACTableMax",
    "MACTableMaxPerNode",
    "MetricsAddress",
    "RekeyPackets",
    "ScriptTimeout",
    "ShutdownGrace",
    "StoreLearnedHosts",
    "VIPHoldDown",
    "VIPOwner",
    "VIPPolicy",
    "VirtualIP",
    "VirtualMAC",
];

/// Variables that may occur more than once (all occurrences are used, in order).
pub const MULTI_VALUED: &[&str] = &[
    "Address",
    "BindToAddress",
    "BroadcastSubnet",
    "ConnectTo",
    "HealthCheck",
    "ListenAddress",
    "Subnet",
    "VIPOwner",
    "VIPPolicy",
    "VirtualIP",
    "VirtualMAC",
];

/// tinc variables meshd accepts but does not implement: the values that ask
/// for what meshd does anyway (no warning), and what to know instead. Any
/// other value is warned about at start, naming the line.
pub const UNIMPLEMENTED: &[(&str, &[&str], &str)] = &[
    ("Cipher", &[], LEGACY),
    ("DecrementTTL", &["no"], "meshd never decrements the TTL"),
    (
        "DeviceStandby",
        &["no"],
        "the device is up while meshd runs",
    ),
    ("Digest", &[], LEGACY),
    (
        "ExperimentalProtocol",
        &["yes"],
        "meshd always uses Ed25519 keys",
    ),
    (
        "Forwarding",
        &["off"],
        "meshd never relays other nodes' packets: every pair talks directly",
    ),
    ("FWMark", &["0"], "packets are not marked"),
    ("GraphDumpFile", &[], "use `meshd dump graph`"),
    (
        "Hostnames",
        &["no"],
        "addresses are resolved once, at start and reload",
    ),
    ("IffOneQueue", &["no"], "meshd opens the TAP with one queue"),
    ("LocalDiscoveryAddress", &[], "not implemented"),
    (
        "LogLevel",
        &[],
        "use -d LEVEL, `meshd debug LEVEL` or RUST_LOG",
    ),
    ("MACLength", &[], LEGACY),
    (
        "MaxConnectionBurst",
        &[],
        "the join port has its own limits (`meshd dump limits`)",
    ),
    (
        "MaxOutputBufferSize",
        &[],
        "queues have their own bounds (`meshd dump limits`)",
    ),
    (
        "MaxTimeout",
        &[],
        "handshake retries back off to at most 5 s",
    ),
    ("MTUInfoInterval", &[], "not implemented"),
    ("PriorityInheritance", &["no"], "not implemented"),
    ("PrivateKey", &[], LEGACY),
    ("PrivateKeyFile", &[], LEGACY),
    (
        "ProcessPriority",
        &["normal"],
        "use the systemd unit's Nice= or CPUSchedulingPolicy=",
    ),
    ("Proxy", &[], "meshd speaks UDP only and cannot use a proxy"),
    ("PublicKey", &[], LEGACY),
    ("PublicKeyFile", &[], LEGACY),
    ("Sandbox", &["off"], "use the systemd unit's sandboxing"),
    (
        "UDPDiscovery",
        &["yes"],
        "every pair talks over UDP directly",
    ),
    (
        "UDPDiscoveryInterval",
        &[],
        "heartbeats follow HelloInterval",
    ),
    (
        "UDPDiscoveryKeepaliveInterval",
        &[],
        "heartbeats follow HelloInterval",
    ),
    ("UDPDiscoveryTimeout", &[], "liveness follows DeadInterval"),
    ("UDPInfoInterval", &[], "not implemented"),
    ("UDPRcvBuf", &[], "meshd sizes its socket buffers itself"),
    ("UDPSndBuf", &[], "meshd sizes its socket buffers itself"),
    ("UPnP", &["no"], "no port mapping is done"),
    ("UPnPDiscoverWait", &[], "no port mapping is done"),
    ("UPnPRefreshPeriod", &[], "no port mapping is done"),
    ("VDEGroup", &[], "no VDE device"),
    ("VDEPort", &[], "no VDE device"),
];

const LEGACY: &str = "tinc's legacy (RSA) protocol is not spoken: meshd uses Ed25519 keys only";

/// tinc variables tinc 1.1 itself calls obsolete (its `fsck` says so; `set`/`add` need
/// `--force` for them).
pub const OBSOLETE: &[&str] = &["GraphDumpFile", "PrivateKey", "PublicKey", "PublicKeyFile"];

/// Whether tinc 1.1 calls `variable` obsolete.
pub fn is_obsolete(variable: &str) -> bool {
    OBSOLETE.iter().any(|v| v.eq_ignore_ascii_case(variable))
}

/// If `variable = value` asks for something meshd does not do: what to know instead.
pub fn unimplemented(variable: &str, value: &str) -> Option<&'static str> {
    UNIMPLEMENTED
        .iter()
        .find(|(v, _, _)| v.eq_ignore_ascii_case(variable))
        .filter(|(_, fine, _)| !fine.iter().any(|f| f.eq_ignore_ascii_case(value.trim())))
        .map(|(_, _, instead)| *instead)
}

/// The canonical spelling of a known variable (case-insensitive lookup), or `None`.
pub fn canonical(variable: &str) -> Option<&'static str> {
    TINC_SERVER_VARIABLES
        .iter()
        .chain(TINC_HOST_VARIABLES)
        .chain(MESHD_VARIABLES)
        .copied()
        .find(|v| v.eq_ignore_ascii_case(variable))
}

/// Whether `variable` is a known tinc or meshd variable (case-insensitive).
pub fn is_known(variable: &str) -> bool {
    canonical(variable).is_some()
}

/// Whether `variable` may be given more than once.
pub fn is_multi_valued(variable: &str) -> bool {
    MULTI_VALUED
        .iter()
        .any(|v| v.eq_ignore_ascii_case(variable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup() {
        assert_eq!(canonical("cipher"), Some("Cipher"));
        assert_eq!(canonical("HELLOINTERVAL"), Some("HelloInterval"));
        assert!(is_known("compression"));
        assert!(!is_known("Foo"));
        assert!(is_multi_valued("subnet"));
        assert!(!is_multi_valued("Port"));
    }

    #[test]
    fn unimplemented_values_warn_and_matching_ones_do_not() {
        assert!(unimplemented("proxy", "socks5 127.0.0.1 1080").is_some());
        assert!(unimplemented("Forwarding", "internal").is_some());
        assert_eq!(unimplemented("Forwarding", "off"), None);
        assert_eq!(unimplemented("UPnP", "No"), None);
        assert_eq!(unimplemented("StrictSubnets", "yes"), None, "implemented");
        for (v, _, _) in UNIMPLEMENTED {
            assert!(is_known(v), "{v} is not in the tables above");
        }
    }

    #[test]
    fn no_duplicates() {
        let mut all: Vec<String> = TINC_SERVER_VARIABLES
            .iter()
            .chain(TINC_HOST_VARIABLES)
            .chain(MESHD_VARIABLES)
            .map(|v| v.to_ascii_lowercase())
            .collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
