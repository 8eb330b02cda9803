//! meshd: a tinc-compatible userspace L2 VPN mesh daemon with sub-second
//! failover of shared virtual IPs.
//!
//! The protocol brain is the `meshd-core` crate (re-exported here as
//! [`node`], [`switch`], [`vip`], [`wire`], [`crypto`], [`keys`] and [`name`]): a sans-IO
//! state machine. This crate is everything that does I/O around it:
//! [`driver`] is the tokio shell (UDP, TAP, timers, child processes, control
//! socket, metrics), [`config`] reads and writes network directories,
//! [`keyfile`] the key files, [`invite`] the invitation files and exchange,
//! [`cli`] is the command line.

pub use meshd_core::{crypto, keys, name, node, switch, vip, wire};

pub mod cli;
pub mod config;
pub mod control;
pub mod driver;
pub mod invite;
pub mod keyfile;
pub mod logs;
