//! meshd's protocol core: everything that decides, nothing that does I/O.
//!
//! This crate owns the wire formats ([`wire`]), the cryptography ([`crypto`],
//! [`keys`]), the per-node protocol state machine ([`node`]), the L2 switch
//! ([`switch`]) and VIP steering ([`vip`]), the invitation exchange's
//! messages and keys ([`join`]), and the configuration values they need
//! ([`name`], [`subnet`]). It has no tokio, no sockets, no processes, no file I/O
//! and no clock: the `meshd` crate's driver reads the clock, the UDP socket
//! and the TAP, feeds [`node::Node`] with an explicit `now`, and carries out
//! what it asks (see [`node::Node`] for the calling order). The simulated
//! network in the tests drives the same type on virtual time.

pub mod crypto;
pub mod join;
pub mod keys;
pub mod name;
pub mod node;
pub mod subnet;
pub mod switch;
pub mod vip;
pub mod wire;

/// What the core's unit tests use instead of a clock read.
#[cfg(test)]
pub(crate) mod test_clock {
    use std::time::Instant;

    /// An arbitrary start instant for virtual time: tests add durations to it.
    /// (`Instant` has no constructor but `now`; the value itself never matters.)
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn start() -> Instant {
        Instant::now()
    }
}
