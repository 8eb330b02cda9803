//! Invitations, as tinc 1.1 grows a network: `meshd invite NODE` writes an invitation and
//! prints a URL; `meshd join URL` redeems it against the inviter's daemon, which serves joins
//! on its own port (TCP). The URL, file names and file layout are tinc's; the exchange on the
//! wire is meshd's own (`meshd-join/1`, proto/PROTOCOL.md §8).
//!
//! * [`url`]: the URL (`HOST[:PORT]/KEYHASH COOKIE`).
//! * [`store`]: the inviter's `invitations/` directory (key, files, expiry, single use).
//! * [`contents`]: the invitation file and what a joiner accepts from it.
//! * [`exchange`]: the sans-IO key exchange and sealed messages (`meshd_core::join`).
//! * [`tinc_up`]: `Ifconfig`/`Route` lines turned into the joiner's tinc-up.
//! * [`serve`]: the inviter's side of one join connection (async).
//! * [`join`]: the joiner's side: connect, redeem, write the network directory atomically.

pub mod contents;
pub use meshd_core::join as exchange;
pub mod join;
pub mod serve;
pub mod store;
pub mod tinc_up;
pub mod url;

pub use url::InvitationUrl;
