//! The local node's configuration as the daemon loads it: any text as
//! `meshd.conf` and (after the first NUL byte) as the own host file, through
//! `config::load_server_config` (in a scratch network directory), then
//! `config::parse_vip_settings` on the merged lines (VirtualIP, VirtualMAC,
//! HealthCheck and their timers) and `invite::store::invitation_expire`.
//!
//! Checks beyond "no panic": every error names one of the two files (and the
//! line number is within it); a loaded config holds the documented invariants
//! (valid name, MTU range, DeadInterval > HelloInterval, replay window a whole
//! number of bytes); loaded VIPs are unique, with unicast, distinct, non-zero
//! virtual MACs, prefix lengths within the address family, and health checks
//! (rise, fall >= 1, non-zero interval and timeout) for their own address.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshd::config::{
    load_server_config, parse_config_text, parse_vip_settings, ConfigError, NetDir, NodeName,
};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A scratch network directory per process, on tmpfs when there is one.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        // libFuzzer leaves by exit(), so no destructor removes our directory:
        // remove those of earlier processes that are gone instead.
        const PREFIX: &str = "meshd-fuzz-server-config-";
        if let Ok(entries) = std::fs::read_dir(&base) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                    continue;
                };
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(format!("{PREFIX}{}", std::process::id()));
        std::fs::create_dir_all(dir.join("hosts")).expect("scratch network directory");
        dir
    })
}

fn check_error(e: &ConfigError, files: &[(&Path, &str)]) {
    let Some((_, text)) = files.iter().find(|(p, _)| *p == e.file) else {
        panic!("error about an unexpected file: {e}");
    };
    if let Some(line) = e.line {
        assert!(line >= 1 && line <= text.lines().count().max(1), "{e}");
    }
    assert!(e.to_string().starts_with(&e.file.display().to_string()));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (conf_text, host_text) = text.split_once('\0').unwrap_or((&text, ""));
    let root = scratch();
    let netdir = NetDir::new(root);
    let conf = netdir.config_file();
    if std::fs::write(&conf, conf_text).is_err() {
        return;
    }
    // The own host file, named by the first `Name` line when that is a valid name.
    let _ = std::fs::remove_dir_all(netdir.hosts_dir());
    let _ = std::fs::create_dir_all(netdir.hosts_dir());
    let mut host_path = None;
    let name = parse_config_text(conf_text, &conf)
        .ok()
        .and_then(|lines| lines.into_iter().find(|l| l.is("Name")))
        .map(|l| l.value);
    if let Some(name) = name.and_then(|n| NodeName::new(n).ok()) {
        let p = netdir.host_file(&name);
        if std::fs::write(&p, host_text).is_ok() {
            host_path = Some(p);
        }
    }
    let mut files: Vec<(&Path, &str)> = vec![(conf.as_path(), conf_text)];
    if let Some(p) = &host_path {
        files.push((p.as_path(), host_text));
    }

    let server = match load_server_config(&netdir) {
        Ok(s) => s,
        Err(e) => {
            check_error(&e, &files);
            return;
        }
    };
    assert!(
        NodeName::new(server.name.as_str()).is_ok(),
        "{:?}",
        server.name
    );
    assert!((576..=65535).contains(&server.interface_mtu));
    assert!(server.dead_interval > server.hello_interval);
    assert_eq!(server.replay_window % 8, 0);
    assert!(server.rekey_packets > 0);
    assert!(server.mac_table_max > 0 && server.mac_table_max_per_node > 0);
    let _ = meshd::invite::store::invitation_expire(&server);

    let mut warnings = Vec::new();
    match parse_vip_settings(&server.raw, &mut warnings) {
        Ok(vips) => {
            let mut addresses = HashSet::new();
            let mut macs = HashSet::new();
            for v in &vips.vips {
                assert!(addresses.insert(v.address), "{} twice", v.address);
                assert!(macs.insert(v.virtual_mac), "{:?} twice", v.virtual_mac);
                assert_eq!(v.virtual_mac[0] & 1, 0, "multicast virtual MAC");
                assert_ne!(v.virtual_mac, [0; 6]);
                let max = if v.address.is_ipv4() { 32 } else { 128 };
                assert!(v.prefix_len <= max);
                for c in &v.checks {
                    assert_eq!(c.vip, v.address);
                    assert!(c.rise >= 1 && c.fall >= 1);
                    assert!(!c.interval.is_zero() && !c.timeout.is_zero());
                }
            }
            assert!(!vips.flow_idle_timeout.is_zero());
        }
        Err(e) => check_error(&e, &files),
    }
});
