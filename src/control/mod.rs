//! The control protocol between the `meshd` CLI and a running daemon: JSON
//! lines over a unix socket in the network directory, authenticated by the
//! cookie in the pidfile (and the socket's 0600 mode).

pub mod client;
pub mod pidfile;

use crate::node::status::{ConnectionStatus, EdgeStatus, NodeStatus, SubnetStatus};
use serde::{Deserialize, Serialize};

/// Version of this control protocol; bumped on incompatible changes.
pub const CONTROL_VERSION: u32 = 1;

/// What the CLI asks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// `dump nodes`.
    DumpNodes,
    /// `dump edges`.
    DumpEdges,
    /// `dump connections`.
    DumpConnections,
    /// `dump subnets` (and `info ADDRESS`).
    DumpSubnets,
    /// `dump vips` (and `info VIP`).
    DumpVips,
    /// `stop`: graceful shutdown.
    Stop,
    /// `reload`: reread the network directory.
    Reload,
    /// `pid`.
    Pid,
    /// Counters of refused packets.
    Drops,
    /// `dump limits`: every bounded table, its use, cap, refusals and evictions.
    Limits,
    /// `debug N`: change the log level.
    Debug {
        /// The new level (0 warn, 1 info, 2 debug, 3 trace).
        level: u8,
    },
    /// `log [LEVEL]`: stream log lines (the answer is `Ok`, then raw lines until the client
    /// leaves), at LEVEL or at the daemon's level.
    Log {
        /// The level for this stream only (0 warnings .. 3 trace).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<u8>,
    },
    /// `disconnect NODE`: drop the sessions with NODE (`Ok`, or `Error` if there were none).
    Disconnect {
        /// The node.
        node: String,
    },
    /// `pcap [SNAPLEN]`: after `Ok`, a pcap file of every frame to and from the TAP.
    Pcap {
        /// Bytes kept of each frame (default 65535).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        snaplen: Option<u32>,
    },
    /// `retry`: handshake now with every node that has no session.
    Retry,
    /// `purge`: forget what unreachable nodes left behind.
    Purge,
}

/// The first line a client sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Greeting {
    /// Must equal the daemon's cookie from the pidfile.
    pub cookie: String,
    /// The client's [`CONTROL_VERSION`].
    pub version: u32,
}

/// What the daemon answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    /// Done.
    Ok,
    /// Failed, with a message for the user.
    Error {
        /// What went wrong.
        message: String,
    },
    /// `dump nodes`.
    Nodes {
        /// One entry per node, sorted by name.
        nodes: Vec<NodeStatus>,
    },
    /// `dump edges`.
    Edges {
        /// One entry per directed edge.
        edges: Vec<EdgeStatus>,
    },
    /// `dump connections`.
    Connections {
        /// One entry per peer session.
        connections: Vec<ConnectionStatus>,
    },
    /// `dump subnets`.
    Subnets {
        /// Sorted as tinc sorts them.
        subnets: Vec<SubnetStatus>,
    },
    /// `dump vips`.
    Vips {
        /// Sorted by address.
        vips: Vec<crate::node::vip_status::VipStatus>,
    },
    /// `pid`.
    Pid {
        /// The daemon's process ID.
        pid: u32,
    },
    /// Reload done; warnings found in the files.
    Reloaded {
        /// Non-fatal problems.
        warnings: Vec<String>,
    },
    /// `debug N` done.
    Debug {
        /// The level before.
        previous: u8,
    },
    /// Refused packet counters.
    Drops {
        /// By reason.
        drops: serde_json::Value,
    },
    /// `dump limits`.
    Limits {
        /// One entry per bounded table: the core's, then the daemon's.
        limits: Vec<crate::node::Limit>,
    },
}

/// Every leaf of a JSON value (counters, as `dump drops` and the metrics show them), with its
/// path of object keys joined by `sep`, in key order.
pub fn json_leaves<'a>(
    prefix: &str,
    sep: &str,
    v: &'a serde_json::Value,
    out: &mut Vec<(String, &'a serde_json::Value)>,
) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, inner) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}{sep}{k}")
                };
                json_leaves(&key, sep, inner, out);
            }
        }
        other => out.push((prefix.to_string(), other)),
    }
}
