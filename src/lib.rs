//! meshd: a tinc-compatible userspace L2 VPN mesh daemon with sub-second
//! failover of shared virtual IPs.
//!
//! The protocol brain ([`node`]) is a sans-IO state machine; [`driver`] is the
//! tokio shell around it; [`cli`] is the command line.

pub mod cli;
pub mod config;
pub mod control;
pub mod crypto;
pub mod driver;
pub mod invite;
pub mod keys;
pub mod logs;
pub mod node;
pub mod switch;
pub mod vip;
pub mod wire;
