//! The lab's keepalived rows (scripts/lab, on unless --no-keepalived):
//! Debian's keepalived, VRRPv3 over multicast on the holders' underlay
//! interfaces, manages the VIP; the configuration each holder's keepalived
//! is started with (`keepalived -n -l -P -f CONF -p PIDFILE -r VRRP_PIDFILE`
//! in the holder's namespace, never the distribution's service).

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
        "# scripts/lab: keepalived of node_{node} (meshd-lab keepalived-conf)\n\
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
