//! The lab's keepalived rows (scripts/lab, on unless --no-keepalived):
//! Debian's keepalived, VRRPv3 over multicast on the holders' underlay
//! interfaces, manages the VIP; the configuration each holder's keepalived
//! is started with (`keepalived -n -l -P -f CONF -p PIDFILE -r VRRP_PIDFILE`
//! in the holder's namespace, never the distribution's service).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The VRRP priority of holder `node` (node_2 200, node_3 150, node_4 100):
/// node_2 is the master, node_3 takes over from it, node_4 backs up node_3.
pub fn priority(node: u32) -> u32 {
    250u32.saturating_sub(50 * node.saturating_sub(1)).max(1)
}

/// The daemon name of the keepalived rows at `advert` seconds (`keepalived-0.1`).
pub fn daemon(advert: &str) -> String {
    format!("keepalived-{advert}")
}

/// The advert interval of a keepalived row's daemon name.
pub fn advert_of(daemon: &str) -> Option<&str> {
    daemon.strip_prefix("keepalived-")
}

/// keepalived.conf of holder `node`: one VRRPv3 instance on `dev`, every
/// holder starting as BACKUP (the highest priority wins the election and
/// preempts), `vip` as /32 (IPv4) on `dev`, adverts every `advert` seconds.
pub fn conf(node: u32, advert: &str, dev: &str, vip: &str) -> String {
    let len = if vip.contains(':') { 128 } else { 32 };
    format!(
        "# scripts/lab: keepalived of node_{node} (meshd-lab keepalived-up / keepalived-conf)\n\
         global_defs {{\n\
         \x20   router_id node_{node}\n\
         \x20   vrrp_version 3\n\
         }}\n\
         vrrp_instance VIP {{\n\
         \x20   state BACKUP\n\
         \x20   interface {dev}\n\
         \x20   virtual_router_id 10\n\
         \x20   priority {}\n\
         \x20   advert_int {advert}\n\
         \x20   virtual_ipaddress {{\n\
         \x20       {vip}/{len} dev {dev}\n\
         \x20   }}\n\
         }}\n",
        priority(node)
    )
}

/// `meshd-lab keepalived-up`: for each holder N, writes DIR/node_N/keepalived.conf
/// and starts `keepalived -n -l -P` in namespace NS_PREFIX + N (its log in
/// DIR/node_N/keepalived.log), then waits for its VRRP process; returns
/// (N, keepalived's PID, its VRRP process's PID) for each. On failure, ends
/// what it started.
pub fn up(
    dir: &Path,
    nodes: &[u32],
    ns_prefix: &str,
    advert: &str,
    vip: &str,
) -> Result<Vec<(u32, u32, u32)>> {
    let mut started: Vec<(u32, u32, PathBuf)> = Vec::new();
    let res = (|| {
        for &n in nodes {
            let d = dir.join(format!("node_{n}"));
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            let conf = d.join("keepalived.conf");
            std::fs::write(&conf, self::conf(n, advert, "eth0", vip))
                .with_context(|| format!("writing {}", conf.display()))?;
            let log = std::fs::File::create(d.join("keepalived.log"))?;
            let child = Command::new("ip")
                .args(["netns", "exec", &format!("{ns_prefix}{n}"), "keepalived"])
                .args(["-n", "-l", "-P", "-f"])
                .arg(&conf)
                .arg("-p")
                .arg(d.join("keepalived.pid"))
                .arg("-r")
                .arg(d.join("vrrp.pid"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting keepalived (ip netns exec)")?;
            // ip netns exec execs keepalived: the same PID.
            started.push((n, child.id(), d.join("vrrp.pid")));
        }
        let end = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        for (n, pid, vrrp) in &started {
            let child = loop {
                let p = std::fs::read_to_string(vrrp)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok());
                match p {
                    Some(p) => break p,
                    None if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                    None => bail!("keepalived of node_{n}: no VRRP process within 5 s"),
                }
            };
            out.push((*n, *pid, child));
        }
        Ok(out)
    })();
    if res.is_err() {
        for (_, pid, _) in &started {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration() {
        let c = conf(3, "0.01", "eth0", "10.1.1.10");
        assert!(
            c.contains("    router_id node_3\n    vrrp_version 3\n"),
            "{c}"
        );
        assert!(c.contains("    priority 150\n    advert_int 0.01\n"), "{c}");
        assert!(
            c.contains("        10.1.1.10/32 dev eth0\n    }\n}\n"),
            "{c}"
        );
        assert!(c.contains("    interface eth0\n"));
        assert_eq!((priority(2), priority(4)), (200, 100));
        assert_eq!(advert_of(&daemon("0.1")), Some("0.1"));
        assert_eq!(advert_of("meshd"), None);
    }
}
