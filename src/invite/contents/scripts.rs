//! The scripts a join writes for a node that serves a VIP.

/// `vip-up`: adds the VIP to the interface when this node starts serving it
/// (an IPv6 VIP `nodad`: every holder has it at once, so duplicate address
/// detection must not run).
pub const VIP_UP: &str = "#!/bin/sh\n\
# Written by `meshd join`: run when this node starts serving a VIP. meshd does not add\n\
# the address itself; this script does. Variables: VIP, VIP_PREFIXLEN, VIRTUAL_MAC, INTERFACE.\n\
# An IPv6 VIP is added nodad, as keepalived does: all holders have it at once.\n\
case \"$VIP\" in\n\
*:*) ip -6 addr add \"$VIP/$VIP_PREFIXLEN\" dev \"$INTERFACE\" nodad 2>/dev/null || true ;;\n\
*) ip addr add \"$VIP/$VIP_PREFIXLEN\" dev \"$INTERFACE\" 2>/dev/null || true ;;\n\
esac\n";

/// `vip-down`: removes it when this node stops serving it.
pub const VIP_DOWN: &str = "#!/bin/sh\n\
# Written by `meshd join`: run when this node stops serving a VIP.\n\
ip addr del \"$VIP/$VIP_PREFIXLEN\" dev \"$INTERFACE\" 2>/dev/null || true\n";
