//! What an invitation file says and what a joiner makes of it: the inviter builds the file
//! (tinc's layout: the invitee's own chunk, a separator, the inviter's host file); the joiner
//! parses it into a [`JoinPlan`] — which variables it accepts, which it refuses, and the files
//! it will write.
//!
//! * [`accept`]: which variables a joiner takes from an invitation, and where they go.
//! * [`build`]: the inviter's side, the text of an invitation file.
//! * [`plan`]: the joiner's side, an invitation parsed into a [`JoinPlan`].
//! * [`scripts`]: the `vip-up`/`vip-down` scripts a join writes.

mod accept;
mod build;
mod plan;
mod scripts;

pub use accept::{
    acceptance, ACCEPTED_HOST_VARIABLES, ACCEPTED_SERVER_VARIABLES, HANDED_OVER_BY_DEFAULT,
    TINC_UP_VARIABLES,
};
pub use build::{build_invitation, InvitationSpec};
pub use plan::{parse_invitation, HostChunk, InvitationError, JoinPlan};
pub use scripts::{VIP_DOWN, VIP_UP};

/// The comment line between the invitee's chunk and the host files (tinc's).
pub const SEPARATOR: &str = "#---------------------------------------------------------------#";

/// Whether `line` sets `var` (case-insensitive; `=` or blanks as separator).
pub(super) fn is_variable_line(line: &str, var: &str) -> bool {
    let t = line.trim_start();
    let name_end = t
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(t.len());
    t[..name_end].eq_ignore_ascii_case(var)
}

#[cfg(test)]
mod tests;
