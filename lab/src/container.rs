//! The lab's container rows (scripts/lab --container): the VIP is held by a
//! container namespace on a Linux bridge (br-c) with the holder's TAP, not
//! by the holder itself, and meshd's presence check follows it
//! (`HealthCheck = VIP presence`), as in tests/netns_vip_owner.rs.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The presence check the container rows' holders get.
pub fn presence_check(vip: &str) -> String {
    format!("HealthCheck = {vip} presence interval=100ms rise=2 fall=2")
}

/// A holder's host file with its HealthCheck lines replaced by the presence check.
pub fn host_file(text: &str, vip: &str) -> String {
    let mut out: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("HealthCheck"))
        .map(|l| format!("{l}\n"))
        .collect();
    out += &presence_check(vip);
    out += "\n";
    out
}

/// vip-up / vip-down of a container holder: nothing to add on the TAP.
pub const NO_VIP_SCRIPT: &str =
    "#!/bin/sh\n# scripts/lab --container: the VIP lives in the container behind br-c, not here\n";

/// Turns a copy of the lab's meshd template into the container variant:
/// each holder's exec check becomes a presence check, its vip-up / vip-down
/// add nothing.
pub fn template(dir: &Path, holders: &[u32], vip: &str) -> Result<()> {
    for n in holders {
        let d = dir.join(format!("node_{n}"));
        let host = d.join("hosts").join(format!("node_{n}"));
        let text = std::fs::read_to_string(&host)
            .with_context(|| format!("reading {}", host.display()))?;
        std::fs::write(&host, host_file(&text, vip))
            .with_context(|| format!("writing {}", host.display()))?;
        for s in ["vip-up", "vip-down"] {
            let p = d.join(s);
            if p.exists() {
                std::fs::write(&p, NO_VIP_SCRIPT)
                    .with_context(|| format!("writing {}", p.display()))?;
            }
        }
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ok()
}

/// The container of a holder.
#[derive(Debug, Clone)]
pub struct Container<'a> {
    /// The holder's namespace, where meshd runs with TAP `tap`.
    pub ns: &'a str,
    pub tap: &'a str,
    /// The container's namespace (made here).
    pub ctr: &'a str,
    /// The holder's own overlay address (`ADDR/LEN`), moved from the TAP to br-c.
    pub addr: &'a str,
    /// The VIP (`ADDR/LEN`), the container's address.
    pub vip: &'a str,
    /// The container's default TTL / hop limit (the lab's 40 + N).
    pub ttl: u32,
}

impl Container<'_> {
    /// Bridges the TAP with a veth into a new namespace that holds the VIP.
    pub fn up(&self) -> Result<()> {
        let (ns, tap) = (self.ns, self.tap);
        let has_addr = || {
            ip(&["-n", ns, "-o", "addr", "show", "dev", tap])
                .is_ok_and(|o| o.contains(&format!(" {} ", self.addr)))
        };
        if !wait(Duration::from_secs(5), has_addr) {
            bail!("{tap} in {ns} has no {} within 5 s", self.addr);
        }
        let mtu = ip(&["-n", ns, "-o", "link", "show", "dev", tap])?
            .split_whitespace()
            .skip_while(|w| *w != "mtu")
            .nth(1)
            .unwrap_or("1400")
            .to_string();
        ip(&["netns", "add", self.ctr])?;
        ip(&["-n", ns, "link", "add", "br-c", "type", "bridge"])?;
        ip(&["-n", ns, "link", "set", tap, "master", "br-c"])?;
        ip(&["-n", ns, "addr", "del", self.addr, "dev", tap])?;
        ip(&["-n", ns, "addr", "add", self.addr, "dev", "br-c"])?;
        ip(&["-n", ns, "link", "set", "br-c", "up"])?;
        // The overlay's MTU: a bridge drops larger frames at the TAP silently.
        ip(&[
            "-n", ns, "link", "add", "vc0", "mtu", &mtu, "type", "veth", "peer", "name", "eth0",
            "mtu", &mtu, "netns", self.ctr,
        ])?;
        ip(&["-n", ns, "link", "set", "vc0", "master", "br-c", "up"])?;
        let c = self.ctr;
        let ttl = self.ttl.to_string();
        for (k, v) in [
            ("net.ipv4.ip_default_ttl", ttl.as_str()),
            ("net.ipv6.conf.default.hop_limit", ttl.as_str()),
            ("net.ipv6.conf.all.hop_limit", ttl.as_str()),
        ] {
            ip(&["netns", "exec", c, "sysctl", "-qw", &format!("{k}={v}")])?;
        }
        ip(&["-n", c, "link", "set", "lo", "up"])?;
        let mut add = vec!["-n", c, "addr", "add", self.vip, "dev", "eth0"];
        if self.vip.contains(':') {
            add.push("nodad");
        }
        ip(&add)?;
        ip(&["-n", c, "link", "set", "eth0", "up"])?;
        let forwarding = || {
            Command::new("bridge")
                .args(["-n", ns, "link", "show", "dev", "vc0"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("forwarding"))
        };
        if !wait(Duration::from_secs(5), forwarding) {
            bail!("vc0 is not forwarding on br-c in {ns} within 5 s");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holders_files() {
        let h = "Address = 192.0.2.2\nVirtualIP = 10.1.1.10/24\nHealthCheck = 10.1.1.10 exec interval=100ms test -f x\n";
        assert_eq!(
            host_file(h, "10.1.1.10"),
            "Address = 192.0.2.2\nVirtualIP = 10.1.1.10/24\n\
             HealthCheck = 10.1.1.10 presence interval=100ms rise=2 fall=2\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("node_2");
        std::fs::create_dir_all(d.join("hosts")).unwrap();
        std::fs::write(d.join("hosts/node_2"), h).unwrap();
        std::fs::write(d.join("vip-up"), "#!/bin/sh\nip addr add\n").unwrap();
        template(dir.path(), &[2], "10.1.1.10").unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("vip-up")).unwrap(),
            NO_VIP_SCRIPT
        );
        assert!(!d.join("vip-down").exists());
        assert!(std::fs::read_to_string(d.join("hosts/node_2"))
            .unwrap()
            .contains(" presence "));
        assert!(template(dir.path(), &[3], "10.1.1.10").is_err());
    }
}
