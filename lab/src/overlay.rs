//! The overlay as the netns tests and benchmarks use it: a node's `tinc-up`
//! giving its TAP an address, one line of a node's `dump nodes`, and a TCP
//! transfer over the overlay checked byte for byte.

use crate::netns::Lab;
use std::time::{Duration, Instant};

impl Lab {
    /// Writes `node`'s `tinc-up`: the TAP up with `cidr` (say `10.1.1.1/24`).
    pub fn overlay_up(&self, node: &str, cidr: &str) {
        self.script(
            node,
            "tinc-up",
            &format!(
                "#!/bin/sh\nip link set \"$INTERFACE\" up\nip addr add {cidr} dev \"$INTERFACE\"\n"
            ),
        );
    }

    /// `peer`'s line in `node`'s `dump nodes --json`.
    pub fn node_line(&self, node: &str, peer: &str) -> Option<serde_json::Value> {
        let out = self.ctl(node, &["dump", "nodes", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.iter().find(|n| n["name"] == peer).cloned()
    }

    /// Sends `data` over TCP (`nc.openbsd`) from namespace `from_ns` to
    /// `to_ip:port` in `to_ns`; panics unless every byte arrives, in order,
    /// within `limit`. Returns how long the transfer took.
    pub fn tcp_transfer(
        &mut self,
        from_ns: &str,
        to_ns: &str,
        to_ip: &str,
        port: u16,
        data: &[u8],
        limit: Duration,
    ) -> Duration {
        let sent = self.dir.path().join(format!("sent-{port}.bin"));
        let received = self.dir.path().join(format!("received-{port}.bin"));
        std::fs::write(&sent, data).expect("write the data to send");
        let port_s = port.to_string();
        let listener = self.spawn_in(to_ns, &["nc.openbsd", "-l", &port_s], None, Some(&received));
        let sport = format!("sport = :{port}");
        self.wait(Duration::from_secs(5), |lab| {
            let out = lab.exec_in(to_ns, &["ss", "-Hltn", &sport]);
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        })
        .expect("nc not listening");
        let t = Instant::now();
        let sender = self.spawn_in(
            from_ns,
            &["nc.openbsd", "-N", "-w", "10", to_ip, &port_s],
            Some(&sent),
            None,
        );
        let st = self
            .wait_child(sender, limit)
            .unwrap_or_else(|| panic!("the sender did not finish within {limit:?}"));
        assert!(st.success(), "nc sender: {st}");
        let st = self
            .wait_child(listener, Duration::from_secs(5))
            .expect("the listener did not finish within 5 s of the sender");
        assert!(st.success(), "nc listener: {st}");
        let took = t.elapsed();
        let got = std::fs::read(&received).expect("the received file");
        assert_eq!(
            got.len(),
            data.len(),
            "received {} of {} bytes",
            got.len(),
            data.len()
        );
        assert!(got == data, "the data differs");
        took
    }
}
