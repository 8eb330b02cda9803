//! The command line: clap definitions and dispatch to one module per command family.

mod config_cmd;
mod daemon;
mod dump;
mod edit;
mod exchange;
mod fsck;
mod fsck_vars;
mod graph;
mod init;
mod invite;
mod network;
mod operator;
mod revoke;
mod shell;
mod sign;
mod subnets;
mod top;
mod usage;
mod vips;

pub use usage::main_with_args;
/// The text `info VIP` and `dump vips` print for a VIP (tests check it).
pub use vips::{format_vip_info, format_vip_lines};

use crate::config::edit::EditAction;
use crate::config::NetDir;
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// A tinc-compatible L2 VPN mesh daemon with sub-second failover of shared IPs.
///
/// meshd reads a tinc-style network directory (tinc.conf, or meshd.conf from older meshd versions, hosts/NAME,
/// ed25519_key.priv) and forms an encrypted, authenticated UDP mesh with every other
/// node of the network. Pick the directory with -c DIR, or -n NET for
/// /etc/meshd/NET, or a tinc user's /etc/tinc/NET when /etc/meshd/NET does not exist and
/// /etc/tinc/NET holds tinc.conf (`init -n NET` always makes /etc/meshd/NET). The bases can
/// be changed with MESHD_CONFDIR_BASE and MESHD_TINC_CONFDIR_BASE; setting only
/// MESHD_CONFDIR_BASE turns the /etc/tinc fallback off.
#[derive(Debug, Parser)]
#[command(name = "meshd", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Network directory (holds tinc.conf or meshd.conf, hosts/, keys).
    #[arg(short = 'c', long = "config", global = true, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Network name: the directory is /etc/meshd/NET if it exists, else /etc/tinc/NET if it
    /// holds tinc.conf, else /etc/meshd/NET (bases: $MESHD_CONFDIR_BASE, $MESHD_TINC_CONFDIR_BASE).
    #[arg(short = 'n', long = "net", global = true, value_name = "NET")]
    pub net: Option<String>,
    /// Pidfile to use instead of DIR/meshd.pid (the control socket sits beside it).
    #[arg(long, global = true, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Never prompt (tinc's -b; meshd prompts only in command mode).
    #[arg(short = 'b', long = "batch", global = true)]
    pub batch: bool,
    /// Do it anyway: set unknown variables, server variables in host files, values that do
    /// not load; import over existing host files; enable the tinc-up a joined invitation
    /// generated (tinc-up.invitation).
    #[arg(long, global = true)]
    pub force: bool,
    /// What to do. Without a command, meshd reads commands from stdin, one a line (tinc's
    /// command mode): `printf 'init foo\nset Port 0\n' | meshd -c DIR`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

const EXAMPLES: &str = "\
Examples:
  meshd -c /tmp/a init alpha --port 6551   create a network directory and keys for node alpha
  meshd -c /tmp/a start -D                 run in the foreground, logging to stderr
  meshd -c /tmp/a start                    run in the background (log: DIR/meshd.log)
  meshd -c /tmp/a dump nodes               every node known, one line each (--json for JSON)
  meshd -c /tmp/a info beta                one node in detail
  meshd -c /tmp/a dump subnets             static subnets, learned MACs and IP bindings
  meshd -c /tmp/a info 10.1.1.2            which node has that address (also a MAC)
  meshd -c /tmp/a dump vips                shared VIPs: holders, health, flows
  meshd -c /tmp/a info 10.1.1.10           one VIP: who gets its traffic now
  meshd -c /tmp/a reload | stop | restart
  meshd -c /tmp/a get Port                 a variable (set, add, del change one; NODE.VAR for hosts/NODE)
  meshd -c /tmp/a add Subnet 10.1.1.2      written atomically, then a running daemon reloads
  meshd -c /tmp/a export | ssh peer meshd -n lab import      hand over host files (export-all, exchange)
  printf 'init foo\nset Port 0\n' | meshd -c /tmp/f          command mode: one command a line from stdin

Growing a network (as tinc 1.1 does):
  meshd -n lab init node_1 --address 192.0.2.1      the first node; the address joiners reach it at
  meshd -n lab start
  meshd -n lab invite node_2 --set Ifconfig=10.1.1.2/24   prints a URL (one use, one week)
  meshd join 192.0.2.1:655/Kx...Q2 --start           on the new machine: writes /etc/meshd/lab, starts
  meshd -n lab dump invitations                      outstanding invitations (revoke-invitation NODE)";

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a network directory: tinc.conf, hosts/NAME, an Ed25519 key pair, a tinc-up template.
    Init {
        /// This node's name ([A-Za-z0-9_]+).
        name: String,
        /// UDP port to listen on (written to hosts/NAME; default 655).
        #[arg(long)]
        port: Option<u16>,
        /// Public address of this node (`Address` in hosts/NAME): where peers and joiners
        /// reach it. A host name or IP, optionally followed by a port (`host 1655`).
        #[arg(long, value_name = "HOST")]
        address: Option<String>,
    },
    /// Invite a new node: writes invitations/<hash> and prints a URL for `meshd join`.
    ///
    /// The invitation holds the new node's name, the network name, ConnectTo this node,
    /// this node's host file (its address and key) and the network-wide settings
    /// (Mode, Broadcast, HelloInterval, DeadInterval, InterfaceMTU, KeyExpire, RekeyPackets)
    /// this node sets. It works once and expires after InvitationExpire (one week). The
    /// daemon must run to serve the join (on its own port, TCP). The script
    /// invitation-created runs with NODE, INVITATION_FILE, INVITATION_URL.
    Invite {
        /// The new node's name ([A-Za-z0-9_]+).
        node: String,
        /// Hand over one more variable (repeatable), e.g. `--set Ifconfig=10.1.1.2/24`
        /// (becomes the joiner's tinc-up), `--set Subnet=10.1.1.2`, `--set VirtualIP=10.1.1.10/24`.
        /// Only variables a joiner accepts are allowed (see README, "Invitations").
        #[arg(long = "set", value_name = "VAR=VALUE")]
        set: Vec<String>,
    },
    /// Join a network with a URL from `meshd invite`: writes the network directory and keys.
    ///
    /// Without -c/-n the directory is $MESHD_CONFDIR_BASE/NETNAME (default /etc/meshd/NETNAME)
    /// with the network name the invitation carries. The inviter is verified against the key
    /// hash in the URL; nothing is written unless the whole exchange succeeds.
    Join {
        /// The URL `meshd invite` printed: HOST[:PORT]/48 characters (read from stdin, as
        /// tinc does, when not given).
        url: Option<String>,
        /// This node's UDP port (written to its host file; default 655).
        #[arg(long)]
        port: Option<u16>,
        /// Start the daemon right after joining.
        #[arg(long)]
        start: bool,
    },
    /// Stop trusting a node: moves hosts/NODE to revoked/NODE and reloads a running daemon.
    ///
    /// At once, this node drops NODE's sessions, pending handshakes, record, subnets and VIP
    /// claims, and refuses its handshakes and every gossiped record of it (so other members
    /// that still trust NODE cannot bring it back here). Each node decides for itself, as in
    /// tinc: run it on every node that must cut NODE. Undo: move revoked/NODE back to
    /// hosts/NODE and `meshd reload`. With no host file, writes an empty revoked/NODE.
    Revoke {
        /// The node's name.
        node: String,
    },
    /// Delete an outstanding invitation (by the invited node's name or the file name).
    #[command(name = "revoke-invitation")]
    RevokeInvitation {
        /// Node name or invitation file name (from `meshd dump invitations`).
        #[arg(value_name = "NODE|FILE")]
        target: String,
    },
    /// Start the daemon (in the background unless -D).
    Start(daemon::StartArgs),
    /// Stop the daemon gracefully (peers are told it leaves).
    Stop,
    /// Stop, then start again.
    Restart(daemon::StartArgs),
    /// Make the daemon reread its configuration and host files.
    Reload,
    /// Print the daemon's process ID.
    Pid,
    /// Change the running daemon's log level: 0 warnings, 1 info, 2 debug, 3 trace.
    Debug {
        /// The new level.
        level: u8,
    },
    /// Stream the running daemon's log (from now on) until interrupted; with LEVEL (0
    /// warnings, 1 info, 2 debug, 3 trace) at that level for this stream only, as tinc's
    /// `log LEVEL` (the daemon's own log keeps its level).
    Log {
        /// The level for this stream.
        level: Option<u8>,
    },
    /// Write every frame the daemon reads from or writes to its TAP to stdout as a pcap file,
    /// until interrupted (tinc's pcap): `meshd -n lab pcap | tcpdump -n -r -`.
    Pcap {
        /// Bytes kept of each frame (default 65535: whole frames).
        snaplen: Option<u32>,
    },
    /// tinc's connect, which tinc 1.1's daemon does not implement: "Could not connect to
    /// NODE.", exit 1. meshd handshakes with every node by itself; `retry` tries now.
    Connect {
        /// The node.
        node: String,
    },
    /// Drop the sessions with NODE now (tinc's disconnect); either side handshakes again
    /// later (this node after 5 s, NODE once it finds this node silent).
    Disconnect {
        /// The node.
        node: String,
    },
    /// Handshake now with every node that has no session, back-off reset (tinc's retry;
    /// also SIGALRM).
    Retry,
    /// Forget what unreachable nodes left (records, subnets, VIP claims, learned MACs);
    /// nodes known only by gossip are forgotten entirely (tinc's purge).
    Purge,
    /// List the networks under $MESHD_CONFDIR_BASE (default /etc/meshd): `.` if it holds a
    /// configuration itself, then each directory that does, and the tinc networks of
    /// /etc/tinc that -n reaches. In command mode, `network NET`
    /// switches to NET for the lines that follow.
    Network {
        /// The network to switch to (command mode only).
        net: Option<String>,
    },
    /// Open FILE in $VISUAL, $EDITOR or vi: tinc.conf (or meshd.conf: the server file,
    /// whichever name it has), tinc-up, tinc-down, subnet-up, subnet-down, host-up, host-down,
    /// NODE or hosts/NODE, NODE-up, NODE-down. Afterwards a configuration file is checked as
    /// `start` loads it (an error names file and line; exit 1, no reload), a new script is
    /// made executable, and a running daemon reloads.
    Edit {
        /// The file to edit.
        file: String,
    },
    /// Check the network directory as tinc's fsck: the configuration loads, the private key
    /// exists, is mode 0600 and matches the own host file's Ed25519PublicKey, scripts are
    /// executable. Silent when all is well; with --force, fixes the key file's mode, the own
    /// public key and script modes.
    Fsck,
    /// Every node's traffic, redrawn every second on the terminal (tinc's top). Keys: n i I
    /// o O t T sort (name, in/out/total packets/bytes), c cumulative, b k M G units, q quit.
    Top,
    /// Sign FILE (or stdin) with this node's key, as tinc: prints `Signature = NAME UNIXTIME
    /// SIG` and then the data.
    Sign {
        /// The file to sign (default: stdin).
        file: Option<PathBuf>,
    },
    /// Check a signed document (FILE or stdin) against hosts/NODE (`.`: this node, `*`: the
    /// node it names); prints the data without the Signature line, exit 1 if it does not verify.
    Verify {
        /// `NODE`, `.` or `*`.
        #[arg(value_name = "NODE|.|*")]
        signer: String,
        /// The signed file (default: stdin).
        file: Option<PathBuf>,
    },
    /// Show the daemon's view: `dump nodes`, `dump reachable nodes`, `dump edges`,
    /// `dump connections`, `dump subnets` (static subnets, learned MACs, learned IP bindings),
    /// `dump vips` (each shared VIP, its virtual MAC, its holders and their state),
    /// `dump drops` (counters of refused packets and dropped frames),
    /// `dump limits` (every bounded table: in use, cap, refusals, evictions),
    /// `dump invitations` (outstanding invitations; needs no daemon),
    /// `dump graph` / `dump digraph` (Graphviz, as tinc: `meshd dump graph | dot -Tpng > mesh.png`;
    /// VIP holders are boxes labelled with their VIPs).
    #[command(alias = "list")]
    Dump {
        /// What to dump.
        #[arg(required = true, num_args = 1..=2, value_name = "WHAT")]
        what: Vec<String>,
        /// Print JSON instead of tinc-style lines.
        #[arg(long)]
        json: bool,
    },
    /// Show one node in detail, who owns a MAC or an IP address (`info 10.1.1.2`),
    /// or a VIP with its holders (`info 10.1.1.10`, or its virtual MAC).
    Info {
        /// Node name, MAC address, IP address, or subnet (`10.1.1.0/24`, `10.1.1.2#5`).
        #[arg(value_name = "NODE|ADDRESS")]
        node: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `meshd completions bash > /etc/bash_completion.d/meshd`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print meshd's version (as --version).
    Version,
    /// Print the manual page (roff): `meshd man | man -l -`, or save it as meshd.8.
    Man,
    /// Generate a new Ed25519 key pair for this node (the old key is kept in the file, commented out).
    #[command(name = "generate-ed25519-keys")]
    GenerateEd25519Keys,
    /// Print every value of a variable: `get [NODE.]VAR` (host variables such as Port, Address,
    /// Subnet are read from this node's host file; `get Port` prints a running daemon's port).
    Get {
        /// `[NODE.]VAR`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "[NODE.]VAR"
        )]
        args: Vec<String>,
    },
    /// Replace every value of a variable: `set [NODE.]VAR VALUE`; checked as `meshd start`
    /// would load it, written atomically, then a running daemon reloads.
    Set {
        /// `[NODE.]VAR VALUE`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "[NODE.]VAR VALUE"
        )]
        args: Vec<String>,
    },
    /// Add a value to a variable unless it is there already: `add [NODE.]VAR VALUE`
    /// (a single-valued variable is replaced).
    Add {
        /// `[NODE.]VAR VALUE`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "[NODE.]VAR VALUE"
        )]
        args: Vec<String>,
    },
    /// Remove a variable (every value, or only VALUE): `del [NODE.]VAR [VALUE]`; exit 1 if
    /// nothing was removed.
    Del {
        /// `[NODE.]VAR [VALUE]`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "[NODE.]VAR [VALUE]"
        )]
        args: Vec<String>,
    },
    /// tinc's `config [get|set|add|del|replace|change] [NODE.]VAR [VALUE]`.
    Config {
        /// An action word, then `[NODE.]VAR [VALUE]`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Print this node's host file, preceded by `Name = NODE` (for `meshd import` elsewhere).
    Export,
    /// Print every host file, each preceded by `Name = NODE`, separated by `#----...#` lines.
    #[command(name = "export-all")]
    ExportAll,
    /// Read exported host files from stdin and write those not in hosts/ yet (--force: also
    /// those that are).
    Import,
    /// `export`, then `import`:
    /// `meshd -n lab export | ssh peer meshd -n lab exchange | meshd -n lab import`.
    Exchange,
    /// `export-all`, then `import`.
    #[command(name = "exchange-all")]
    ExchangeAll,
}

impl Cli {
    /// The network directory the options name.
    pub fn netdir(&self) -> Result<NetDir> {
        let nd = NetDir::resolve(self.config.clone(), self.net.clone())?;
        Ok(nd.with_pidfile(self.pidfile.clone()))
    }

    /// The directory `init` makes: `-n NET` is always `$MESHD_CONFDIR_BASE/NET`, never tinc's.
    pub fn netdir_new(&self) -> Result<NetDir> {
        let nd = NetDir::resolve_new(self.config.clone(), self.net.clone())?;
        Ok(nd.with_pidfile(self.pidfile.clone()))
    }
}

/// Writes generated text to stdout; a closed pipe (`| head`) is not an error.
fn print_bytes(text: &[u8]) -> Result<i32> {
    use std::io::Write;
    match std::io::stdout().write_all(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

/// Runs a parsed command line; returns the exit code. Without a command: command mode.
pub fn run(mut cli: Cli) -> Result<i32> {
    let Some(command) = cli.command.take() else {
        // As tinc: a bad -n is refused before any command is read.
        cli.netdir()?;
        return shell::command_mode(&cli);
    };
    match &command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "meshd", &mut text);
            return print_bytes(&text);
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_mangen::Man::new(cmd).section("8").render(&mut text)?;
            return print_bytes(&text);
        }
        Command::Version => {
            let cmd = <Cli as clap::CommandFactory>::command();
            return print_bytes(cmd.render_version().as_bytes());
        }
        Command::Network { net } => return network::network(net.as_deref()),
        Command::Join { url, port, start } => {
            let url = match url {
                Some(u) => u.clone(),
                None => match invite::url_from_stdin() {
                    Some(u) => u,
                    None => return Ok(1),
                },
            };
            return invite::join(
                cli.config.clone(),
                cli.net.clone(),
                &url,
                *port,
                *start,
                invite::Confirm {
                    force: cli.force,
                    batch: cli.batch,
                },
            );
        }
        _ => {}
    }
    let netdir = cli.netdir()?;
    let force = cli.force;
    match command {
        Command::Init {
            name,
            port,
            address,
        } => init::init(&cli.netdir_new()?, &name, port, address.as_deref()),
        Command::Invite { node, set } => invite::invite(&netdir, &node, &set),
        Command::Join { .. } | Command::Completions { .. } | Command::Man | Command::Version => {
            unreachable!("handled above")
        }
        Command::RevokeInvitation { target } => invite::revoke(&netdir, &target),
        Command::Revoke { node } => revoke::revoke(&netdir, &node),
        Command::GenerateEd25519Keys => init::generate_keys(&netdir),
        Command::Start(args) => daemon::start(&netdir, &args),
        Command::Stop => daemon::stop(&netdir),
        Command::Restart(args) => {
            let code = daemon::stop(&netdir)?;
            if code != 0 {
                eprintln!("(not running; starting it)");
            }
            daemon::start(&netdir, &args)
        }
        Command::Reload => daemon::reload(&netdir),
        Command::Pid => daemon::pid(&netdir),
        Command::Debug { level } => daemon::debug(&netdir, level),
        Command::Log { level } => daemon::log(&netdir, level),
        Command::Connect { node } => operator::connect(&netdir, &node),
        Command::Disconnect { node } => operator::disconnect(&netdir, &node),
        Command::Retry => operator::retry(&netdir),
        Command::Pcap { snaplen } => daemon::pcap(&netdir, snaplen),
        Command::Purge => operator::purge(&netdir),
        Command::Fsck => fsck::fsck(&netdir, force),
        Command::Edit { file } => edit::edit(&netdir, &file),
        Command::Top => top::top(&netdir),
        Command::Sign { file } => sign::sign(&netdir, file.as_deref()),
        Command::Verify { signer, file } => sign::verify(&netdir, &signer, file.as_deref()),
        Command::Network { .. } => unreachable!("handled above"),
        Command::Dump { what, json } => {
            if what.len() == 2 && !what[0].eq_ignore_ascii_case("reachable") {
                eprintln!("Invalid number of arguments.\n{}", usage::TRY_HELP);
                return Ok(1);
            }
            if what.len() == 1 && what[0].eq_ignore_ascii_case("invitations") {
                return invite::dump_invitations(&netdir, json);
            }
            dump::dump(&netdir, &what, json)
        }
        Command::Info { node, json } => dump::info(&netdir, &node, json),
        Command::Get { args } => config_cmd::config(&netdir, None, &args, force),
        Command::Set { args } => config_cmd::config(&netdir, Some(EditAction::Set), &args, force),
        Command::Add { args } => config_cmd::config(&netdir, Some(EditAction::Add), &args, force),
        Command::Del { args } => config_cmd::config(&netdir, Some(EditAction::Del), &args, force),
        Command::Config { args } => {
            let (verb, rest) = config_cmd::split_config_action(&args);
            config_cmd::config(&netdir, verb, rest, force)
        }
        Command::Export => exchange::export(&netdir, false),
        Command::ExportAll => exchange::export(&netdir, true),
        Command::Import => exchange::import(&netdir, force),
        Command::Exchange => exchange::exchange(&netdir, false, force),
        Command::ExchangeAll => exchange::exchange(&netdir, true, force),
    }
}
