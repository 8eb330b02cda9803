//! `invite`, `join`, `dump invitations` and `revoke-invitation`: growing a network as
//! tinc 1.1 does, with one URL per new node.

use crate::config::{self, load_server_config, NetDir, NodeName};
use crate::control::client::request;
use crate::control::pidfile::PidFile;
use crate::control::{Request, Response};
use crate::driver::scripts::{ScriptEnv, ScriptOutcome, ScriptRequest, ScriptRunner};
use crate::invite::contents::{
    acceptance, build_invitation, InvitationSpec, HANDED_OVER_BY_DEFAULT,
};
use crate::invite::join::{join as redeem, JoinTarget};
use crate::invite::store::{invitation_expire, Outstanding, Store, DEFAULT_EXPIRE};
use crate::invite::InvitationUrl;
use crate::keys::invitation_key_hash;
use anyhow::{anyhow, bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// The running daemon's pidfile, if it runs.
fn running(netdir: &NetDir) -> Option<PidFile> {
    let pid = PidFile::read(&netdir.pidfile()).ok()?;
    request(
        &netdir.pidfile(),
        &netdir.control_socket(),
        &Request::Pid,
        Duration::from_secs(2),
    )
    .ok()?;
    Some(pid)
}

/// `meshd invite NODE [--set VAR=VALUE]...`: prints the URL on stdout.
pub fn invite(netdir: &NetDir, node: &str, set: &[String]) -> Result<i32> {
    let server = load_server_config(netdir)?;
    let node = &NodeName::new(node).map_err(|e| anyhow!("Invalid name for node: {e}"))?;
    // tinc's words, for this node's own name too (its host file exists).
    let host_file = netdir.host_file(node);
    if *node == server.name || host_file.exists() {
        bail!("A host config file for {node} already exists!");
    }
    let daemon = running(netdir);
    if daemon.is_some() {
        if let Ok(Response::Nodes { nodes }) = request(
            &netdir.pidfile(),
            &netdir.control_socket(),
            &Request::DumpNodes,
            Duration::from_secs(5),
        ) {
            if nodes.iter().any(|n| n.name == *node) {
                bail!("the running daemon already knows a node called {node}");
            }
        }
    }
    let expire = invitation_expire(&server)?;
    let store = Store::new(netdir);
    let now = SystemTime::now();
    if let Some(o) = store
        .outstanding(expire, now)?
        .into_iter()
        .find(|o| o.invitee == *node)
    {
        bail!(
            "an invitation for {node} is outstanding ({}); `meshd revoke-invitation {node}` first",
            o.file_name
        );
    }

    let address = server.addresses.first().ok_or_else(|| {
        anyhow!(
            "{} has no Address line: a joiner needs one to reach this node. Add \
             `Address = HOST` (this node's public name or IP) to it, or use `meshd init NAME --address HOST`",
            netdir.host_file(&server.name).display()
        )
    })?;
    let port = match (server.port, &daemon) {
        (_, Some(pid)) => pid.port,
        (0, None) => {
            // tinc's words: the pidfile's error, then "... Please start tincd or set the Port
            // option to a non-zero value."
            if let Err(err) = std::fs::read(netdir.pidfile()) {
                eprintln!(
                    "Could not open pid file {}: {}",
                    netdir.pidfile().display(),
                    nix::errno::Errno::from_raw(err.raw_os_error().unwrap_or(0)).desc()
                );
            }
            bail!(
                "the daemon is using a dynamic port (Port = 0) and is not running. Please start \
                 tincd (meshd start) or set the Port option to a non-zero value (the URL names \
                 the port)"
            )
        }
        (p, None) => p,
    };

    let mut variables = Vec::new();
    for var in HANDED_OVER_BY_DEFAULT {
        for line in server.raw.iter().filter(|l| l.is(var)) {
            variables.push((var.to_string(), line.value.clone()));
        }
    }
    for item in set {
        let (var, value) = item
            .split_once('=')
            .map(|(v, x)| (v.trim(), x.trim()))
            .filter(|(v, x)| !v.is_empty() && !x.is_empty())
            .ok_or_else(|| anyhow!("--set {item}: expected VAR=VALUE"))?;
        let canonical = acceptance(var, value)
            .map_err(|why| anyhow!("--set {item}: a joiner would refuse it: {why}"))?;
        variables.retain(|(v, _)| v != canonical || config::known::is_multi_valued(v));
        variables.push((canonical.to_string(), value.to_string()));
    }
    let own_host = std::fs::read_to_string(netdir.host_file(&server.name))
        .with_context(|| format!("cannot read {}", netdir.host_file(&server.name).display()))?;
    let contents = build_invitation(&InvitationSpec {
        invitee: node.clone(),
        netname: netdir.netname.clone(),
        inviter: server.name.clone(),
        variables,
        inviter_host_file: own_host,
        inviter_port: port,
    });
    let created = store.create(&contents, expire, now, &mut rand::rngs::OsRng)?;
    let url = InvitationUrl {
        host: address.host.to_string(),
        port: Some(address.port.unwrap_or(port)),
        key_hash: invitation_key_hash(&created.key),
        cookie: created.cookie,
    };
    let url_text = url.to_string();
    run_invitation_created(netdir, &server, node, &created.file, &url_text)?;
    if daemon.is_none() {
        eprintln!(
            "Note: the daemon is not running; start it (`meshd{} start`) so the invitation can be used.",
            cli_dir_args(netdir)
        );
    }
    println!("{url_text}");
    Ok(0)
}

/// ` -n NET` or ` -c DIR` for messages that show a command.
fn cli_dir_args(netdir: &NetDir) -> String {
    match &netdir.netname {
        Some(n)
            if netdir
                .root
                .file_name()
                .map(|f| f == n.as_str())
                .unwrap_or(false) =>
        {
            format!(" -n {n}")
        }
        _ => format!(" -c {}", netdir.root.display()),
    }
}

fn run_invitation_created(
    netdir: &NetDir,
    server: &config::ServerConfig,
    node: &str,
    file: &std::path::Path,
    url: &str,
) -> Result<()> {
    let script = netdir.script(&format!("invitation-created{}", server.scripts_extension));
    if !script.exists() {
        return Ok(());
    }
    eprintln!("Executing script invitation-created");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let outcome = runtime.block_on(async {
        let runner = ScriptRunner::spawn(
            netdir.root.clone(),
            ScriptEnv {
                netname: netdir.netname.clone(),
                name: server.name.to_string(),
                device: String::new(),
                interface: String::new(),
                debug: None,
                interpreter: server.scripts_interpreter.clone(),
                extension: server.scripts_extension.clone(),
            },
            server.script_timeout,
        );
        runner
            .run_now(
                ScriptRequest::new("invitation-created")
                    .var("NODE", node)
                    .var("INVITATION_FILE", file.display().to_string())
                    .var("INVITATION_URL", url),
            )
            .await
    });
    match outcome {
        ScriptOutcome::Ok | ScriptOutcome::Missing => Ok(()),
        other => {
            eprintln!("Warning: invitation-created did not succeed: {other:?}");
            Ok(())
        }
    }
}

/// `meshd join URL [--port N] [--start]`.
/// `join` without a URL: one line from stdin (prompted on a terminal), as tinc reads it.
/// `None` (after tinc's `Error while reading stdin` message) when there is none.
pub fn url_from_stdin() -> Option<String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Enter invitation URL: ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    match stdin.lock().read_line(&mut line) {
        Ok(0) => eprintln!("Error while reading stdin: end of input"),
        Err(e) => eprintln!("Error while reading stdin: {e}"),
        Ok(_) if line.trim().is_empty() => eprintln!("Error while reading stdin: empty line"),
        Ok(_) => return Some(line.trim().to_string()),
    }
    None
}

pub fn join(
    cli_config: Option<PathBuf>,
    cli_net: Option<String>,
    url: &str,
    port: Option<u16>,
    start: bool,
    confirm: Confirm,
) -> Result<i32> {
    let url = InvitationUrl::parse(url)?;
    let env_net = std::env::var("NETNAME").ok().filter(|v| !v.is_empty());
    let target = if cli_config.is_some() || cli_net.is_some() || env_net.is_some() {
        JoinTarget::Given(NetDir::resolve_new(cli_config, cli_net)?)
    } else {
        let base = NetDir::resolve_new(None, None)?.root;
        JoinTarget::FromInvitation { base }
    };
    let mut log = |line: &str| eprintln!("{line}");
    let joined = redeem(&url, &target, port, &mut log).map_err(|e| {
        let (before, after) = tinc_words(&e);
        anyhow!(
            "{before}{e:#}\n{after}Invitation cancelled: nothing was written. Please try again, \
             or ask the inviter for a new URL."
        )
    })?;
    eprintln!("Invitation successfully accepted.");
    let plan = &joined.plan;
    let dir_args = cli_dir_args(&joined.netdir);
    eprintln!(
        "This node is {} and connects to {}.",
        plan.name,
        plan.connect_to().join(", ")
    );
    if plan.tinc_up_commands.is_empty() {
        eprintln!(
            "Edit {} to give the interface an address, then start it: meshd{dir_args} start",
            joined.netdir.script("tinc-up").display()
        );
    } else {
        review_tinc_up(&joined.netdir, confirm)?;
        if !start {
            eprintln!("Start it with: meshd{dir_args} start");
        }
    }
    if start {
        return super::daemon::start(&joined.netdir, &super::daemon::StartArgs::default());
    }
    Ok(0)
}

/// What tinc's joiner prints where meshd's has its own reason: the lines before and after
/// meshd's error, so a user (or a script) that knows tinc's words finds them. A tinc inviter
/// closes the connection without a word when it has no invitation key or no such invitation
/// (tinc's joiner times out); meshd's inviter says why, and that reason is kept.
fn tinc_words(e: &anyhow::Error) -> (&'static str, &'static str) {
    use crate::invite::exchange::ExchangeError;
    const SILENT: &str =
        "(a tinc inviter would stay silent: \"Timed out waiting for the server to reply.\")\n";
    const SILENT_NO_KEY: &str =
        "(a tinc inviter would stay silent: \"Timed out waiting for the server to reply.\")\n\
         Could not connect to inviter. Please make sure the URL you entered is valid.\n";
    for cause in e.chain() {
        if let Some(x) = cause.downcast_ref::<ExchangeError>() {
            match x {
                ExchangeError::KeyMismatch { .. } => {
                    return (
                        "Peer has an invalid key. Please make sure you're using the correct URL.\n",
                        "",
                    )
                }
                // Refused before the handshake: the inviter has no invitation key.
                ExchangeError::Refused(_) => return ("", SILENT_NO_KEY),
                _ => {}
            }
        }
        if cause.is::<crate::invite::join::InviterRefused>() {
            return ("", SILENT);
        }
    }
    ("", "")
}

/// How a generated `tinc-up` is enabled after a join, as tinc: `--force` enables it, a
/// terminal (without `--batch`) is shown it and asked, anything else leaves it for review.
#[derive(Debug, Clone, Copy)]
pub struct Confirm {
    /// `--force`.
    pub force: bool,
    /// `--batch`.
    pub batch: bool,
}

fn review_tinc_up(netdir: &NetDir, confirm: Confirm) -> Result<()> {
    use std::io::{IsTerminal, Write};
    let pending = netdir.root.join(crate::invite::join::TINC_UP_INVITATION);
    let ask = !confirm.force && !confirm.batch && std::io::stdin().is_terminal();
    let enable = confirm.force
        || (ask && {
            let script = std::fs::read_to_string(&pending).unwrap_or_default();
            eprint!(
                "The invitation gives this node a tinc-up script:\n\n{script}\n\
                 Do you want to use it? [y/N] "
            );
            let _ = std::io::stderr().flush();
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer).is_ok()
                && matches!(answer.trim(), "y" | "Y" | "yes")
        });
    if enable {
        crate::invite::join::enable_tinc_up(&netdir.root)?;
        eprintln!("{} is enabled.", netdir.script("tinc-up").display());
    } else {
        eprintln!(
            "The tinc-up script the invitation generated is in {}: review it, then rename it to \
             tinc-up and make it executable (or join with --force to enable it at once).",
            pending.display()
        );
    }
    Ok(())
}

/// `meshd dump invitations [--json]`: reads the directory; needs no daemon.
pub fn dump_invitations(netdir: &NetDir, json: bool) -> Result<i32> {
    let expire = match load_server_config(netdir) {
        Ok(server) => invitation_expire(&server)?,
        Err(_) => DEFAULT_EXPIRE,
    };
    let list: Vec<Outstanding> = Store::new(netdir).outstanding(expire, SystemTime::now())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if list.is_empty() {
        eprintln!("No outstanding invitations.");
    }
    for o in &list {
        println!("{} {}", o.file_name, o.invitee);
    }
    Ok(0)
}

/// `meshd revoke-invitation NODE|FILE`.
pub fn revoke(netdir: &NetDir, what: &str) -> Result<i32> {
    let gone = Store::new(netdir).revoke(what)?;
    if gone.is_empty() {
        eprintln!("No outstanding invitation for {what} (see `meshd dump invitations`).");
        return Ok(1);
    }
    for o in &gone {
        eprintln!("Revoked invitation {} for {}", o.file_name, o.invitee);
    }
    Ok(0)
}
