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
