//! meshd-lab: the measuring and judging steps of `scripts/lab`, called by the
//! script between its namespace and daemon steps.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use meshd_lab::args;
use meshd_lab::container;
use meshd_lab::faults;
use meshd_lab::flood;
use meshd_lab::host::{self, Utc};
use meshd_lab::keepalived;
use meshd_lab::probe::ProbeLog;
use meshd_lab::report_args::ReportArgs;
use meshd_lab::scale;
use meshd_lab::table;
use meshd_lab::throughput;
use meshd_lab::timeline;
use meshd_lab::trial::{Event, Trial};
use meshd_lab::udp;
use meshd_lab::watch::Watch;

#[derive(Parser)]
#[command(about = "scripts/lab's measurement and verdict (probe logs of ping -D -O)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Records one trial's outcome (a JSON line appended to --record) and
    /// prints the line the lab shows for it.
    Trial {
        #[arg(long)]
        ping: PathBuf,
        /// The fault's time, seconds since the epoch ($EPOCHREALTIME).
        #[arg(long)]
        fault: f64,
        #[arg(long, value_enum, default_value = "fault")]
        event: Event,
        #[arg(long)]
        daemon: String,
        #[arg(long)]
        kind: String,
        #[arg(long)]
        trial: u32,
        /// The holder faulted, node_N.
        #[arg(long)]
        faulted: String,
        /// The holder answering at the end, node_N or nobody.
        #[arg(long)]
        after: String,
        /// The trial's iperf3 average in Gbit/s under --saturate ("-": none).
        #[arg(long)]
        iperf3: Option<String>,
        #[arg(long)]
        record: PathBuf,
        /// The probe whose log --ping is: ping, or udp (udp-probe's log).
        #[arg(long, default_value = "ping", value_parser = ["ping", "udp"])]
        probe: String,
    },
    /// The rows of the fault trials, "DAEMON KIND" a line, in order (the fault
    /// kinds that apply to each daemon).
    Rows {
        #[arg(long, value_delimiter = ',')]
        daemons: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
    },
    /// The UDP flow's responder: answers requests to VIP:PORT (bound with
    /// IP_FREEBIND) with their seq and TAG.
    UdpEcho {
        #[arg(long)]
        vip: std::net::IpAddr,
        #[arg(long, default_value_t = 7007)]
        port: u16,
        #[arg(long)]
        tag: u32,
    },
    /// The UDP flow's client: a request to VIP:PORT every --interval seconds
    /// from one source port (one whose flow --want answers), a ping -D-like
    /// log on stdout until SIGINT; exits 1 if no source port found --want.
    UdpProbe {
        #[arg(long)]
        vip: std::net::IpAddr,
        #[arg(long, default_value_t = 7007)]
        port: u16,
        #[arg(long)]
        interval: f64,
        #[arg(long)]
        want: Option<u32>,
        #[arg(long, default_value_t = 40)]
        tries: u32,
    },
    /// keepalived.conf of holder node_N (VRRPv3, advert_int ADVERT, VIP/32 on DEV).
    KeepalivedConf {
        #[arg(long)]
        node: u32,
        #[arg(long)]
        advert: String,
        #[arg(long, default_value = "eth0")]
        dev: String,
        #[arg(long)]
        vip: String,
    },
    /// Starts keepalived (VRRPv3, advert_int ADVERT) in namespace NS_PREFIX+N
    /// for each holder N, configuration and logs in DIR/node_N; prints
    /// "N KEEPALIVED_PID VRRP_PID" a line.
    KeepalivedUp {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<u32>,
        #[arg(long)]
        ns_prefix: String,
        #[arg(long)]
        advert: String,
        #[arg(long)]
        vip: String,
    },
    /// Turns a copy of the lab's meshd template into the container variant
    /// (presence checks, vip-up / vip-down that add nothing).
    CtrTemplate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, value_delimiter = ',')]
        holders: Vec<u32>,
        #[arg(long)]
        vip: String,
    },
    /// Puts the VIP in a new container namespace CTR on a bridge br-c with
    /// the TAP of the holder's namespace NS (whose overlay ADDR moves to br-c).
    Container {
        #[arg(long)]
        ns: String,
        #[arg(long, default_value = "mesh0")]
        tap: String,
        #[arg(long)]
        ctr: String,
        #[arg(long)]
        addr: String,
        #[arg(long)]
        vip: String,
        #[arg(long)]
        ttl: u32,
    },
    /// Prints "OUTAGE_MS LOST RECOVERED(0/1) DUPLICATES SPACING_MS" of a probe log.
    Probe {
        #[arg(long)]
        ping: PathBuf,
        #[arg(long)]
        fault: f64,
    },
    /// Prints N of the holder (TTL = --ttl-base + N) most answers came from in
    /// the last --window seconds; fails if fewer than --min answers did.
    Serving {
        #[arg(long)]
        ping: PathBuf,
        #[arg(long, default_value_t = 40)]
        ttl_base: u32,
        #[arg(long, default_value_t = 0.5)]
        window: f64,
        #[arg(long, default_value_t = 10)]
        min: usize,
    },
    /// Waits --limit seconds (or until 1 s of answers after --fault with
    /// --until-recovered), drawing the live status line on a terminal.
    Watch {
        #[arg(long)]
        ping: PathBuf,
        #[arg(long)]
        fault: Option<f64>,
        #[arg(long)]
        limit: f64,
        #[arg(long)]
        prefix: String,
        #[arg(long)]
        until_recovered: bool,
        #[arg(long, default_value_t = 100)]
        cols: usize,
        #[arg(long, default_value_t = 40)]
        ttl_base: u32,
    },
    /// Prints the report of the recorded trials; exits 1 if meshd's failover failed.
    Report(Box<ReportArgs>),
    /// Parses a script's options (after --): shell assignments on stdout; with
    /// --help its text (exit 3); a bad option: a message (exit 2).
    Args {
        script: String,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Draws one trial as an SVG timeline (scripts/lab --svg).
    Timeline {
        #[arg(long)]
        ping: PathBuf,
        #[arg(long)]
        fault: f64,
        #[arg(long, default_value = "VIP failover")]
        title: String,
        #[arg(long, default_value = "")]
        subtitle: String,
        #[arg(long, default_value = "fault")]
        fault_label: String,
        /// TIME:LABEL, another event line (repeatable).
        #[arg(long)]
        mark: Vec<String>,
        #[arg(long, default_value_t = 40)]
        ttl_base: u32,
        #[arg(long, value_delimiter = ',', default_value = "2,3,4")]
        holders: Vec<u32>,
        #[arg(long, default_value_t = 0.5)]
        before: f64,
        #[arg(long, default_value_t = 2.0)]
        after: f64,
        #[arg(long)]
        out: PathBuf,
    },
    /// scripts/bench-paths: direct, firewalled (relayed), behind port-keeping
    /// and port-changing NATs; reachability time, RTT and TCP per path.
    Paths {
        /// iperf3 -t, seconds.
        #[arg(long, default_value_t = 3)]
        seconds: u32,
    },
    /// scripts/bench-throughput: the table from each path's directory of measurements.
    ThroughputTable {
        /// iperf3 -t, seconds.
        #[arg(long)]
        time: f64,
        /// Clock ticks per second (getconf CLK_TCK).
        #[arg(long)]
        hz: f64,
        dirs: Vec<PathBuf>,
    },
    /// scripts/bench-flood: one kind's row (a JSON line) from the snapshots before and after.
    FloodRow {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        before: PathBuf,
        #[arg(long)]
        after: PathBuf,
        /// The flooder's --json report.
        #[arg(long)]
        flood: PathBuf,
        #[arg(long)]
        ping: PathBuf,
        /// Clock ticks per second (getconf CLK_TCK).
        #[arg(long)]
        hz: f64,
    },
    /// scripts/bench-flood: the table of the rows (JSON lines); with --json
    /// the table on stderr and a JSON document on stdout.
    FloodTable {
        #[arg(long)]
        header: String,
        #[arg(long)]
        answers: String,
        #[arg(long)]
        json: bool,
        rows: PathBuf,
    },
    /// scripts/lab's keepalived-like VIP manager for tinc: adds VIP/32 to DEV
    /// after LIMIT_MS without answers from the PEERs, then arping -U (ARPING "-": none).
    VipWatcher {
        vip: String,
        dev: String,
        limit_ms: u64,
        arping: String,
        #[arg(required = true)]
        peers: Vec<String>,
    },
    /// scripts/bench-scale: the report from KEY=VALUE facts and the daemons'
    /// "VmRSS VmHWM" lines (--rss, the hub first).
    ScaleReport {
        #[arg(long)]
        rss: PathBuf,
        #[arg(long)]
        load0: String,
        /// Also write the JSON document here.
        #[arg(long)]
        json: Option<PathBuf>,
        facts: Vec<String>,
    },
    /// The median RTT of ping's output on stdin (ms); fails without one.
    PingMedian,
    /// scripts/bench-faults: one profile's result as JSON (from its run directory).
    FaultsProfile {
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        profile: String,
        #[arg(long, default_value = "")]
        netem: String,
        #[arg(long)]
        key_expire: u64,
        #[arg(long, default_value_t = 40)]
        ttl_base: u32,
        #[arg(long)]
        one_end: bool,
    },
    /// scripts/bench-faults: the line printed when a profile ends.
    FaultsLine { result: PathBuf },
    /// scripts/bench-faults: the table of the results; exits 3 if a profile failed
    /// (a session lost, or a false failover under none/loss1/jitter/rtt200/reorder/dup).
    FaultsTable {
        /// Also write the JSON document here.
        #[arg(long)]
        json: Option<PathBuf>,
        #[arg(long, default_value = "")]
        rev: String,
        #[arg(long, default_value = "")]
        uptime: String,
        results: Vec<PathBuf>,
    },
}

fn faults_result(path: &Path) -> Result<faults::ProfileResult> {
    serde_json::from_str(&read(path)?)
        .with_context(|| format!("{}: not a profile result", path.display()))
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Args { script, args } = &cli.cmd {
        return match meshd_lab::args::args(script, args) {
            args::Outcome::Vars(v) => {
                print!("{v}");
                ExitCode::SUCCESS
            }
            args::Outcome::Help(h) => {
                print!("{h}");
                ExitCode::from(3)
            }
            args::Outcome::Error(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("meshd-lab: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    match cli.cmd {
        Cmd::Paths { seconds } => {
            let rows = meshd_lab::paths::run(seconds)?;
            print!("{}", meshd_lab::paths::table(&rows));
            if !rows.iter().all(|r| r.reach.is_some()) {
                return Ok(false);
            }
        }
        Cmd::Trial {
            ping,
            fault,
            event,
            daemon,
            kind,
            trial,
            faulted,
            after,
            iperf3,
            record,
            probe,
        } => {
            let o = ProbeLog::parse(&read(&ping)?).outcome(fault);
            let gbit = match iperf3.as_deref() {
                None | Some("-") | Some("") => None,
                Some(g) => Some(
                    g.parse()
                        .with_context(|| format!("--iperf3 {g}: not a number"))?,
                ),
            };
            let t = Trial::new(event, &daemon, &kind, trial, gbit, &faulted, &after, &o)
                .with_probe(&probe);
            t.append_to(&record)?;
            println!("{}", t.line(iperf3.is_some()));
        }
        Cmd::Probe { ping, fault } => {
            let o = ProbeLog::parse(&read(&ping)?).outcome(fault);
            println!(
                "{} {} {} {} {:.1}",
                o.outage_ms, o.lost, o.recovered as u8, o.duplicates, o.spacing_ms
            );
        }
        Cmd::Serving {
            ping,
            ttl_base,
            window,
            min,
        } => {
            let log = ProbeLog::parse(&read(&ping)?);
            match log.serving(host::epoch_now() - window, ttl_base, min) {
                Some(n) => println!("{n}"),
                None => return Ok(false),
            }
        }
        Cmd::Watch {
            ping,
            fault,
            limit,
            prefix,
            until_recovered,
            cols,
            ttl_base,
        } => {
            Watch {
                ping,
                fault,
                limit: Duration::from_secs_f64(limit.max(0.0)),
                prefix,
                until_recovered,
                cols,
                ttl_base,
            }
            .run();
        }
        Cmd::Report(a) => return a.run(),
        Cmd::Rows { daemons, kinds } => {
            for d in &daemons {
                for k in kinds.iter().filter(|k| table::applies(d, k)) {
                    println!("{d} {k}");
                }
            }
        }
        Cmd::UdpEcho { vip, port, tag } => {
            udp::echo(std::net::SocketAddr::new(vip, port), tag).context("udp-echo")?
        }
        Cmd::UdpProbe {
            vip,
            port,
            interval,
            want,
            tries,
        } => {
            let spec = udp::ProbeSpec {
                to: std::net::SocketAddr::new(vip, port),
                interval: Duration::from_secs_f64(interval.max(0.001)),
                want,
                tries,
            };
            let mut out = std::io::stdout().lock();
            return udp::probe(&spec, &mut out).context("udp-probe");
        }
        Cmd::KeepalivedConf {
            node,
            advert,
            dev,
            vip,
        } => print!("{}", keepalived::conf(node, &advert, &dev, &vip)),
        Cmd::KeepalivedUp {
            dir,
            nodes,
            ns_prefix,
            advert,
            vip,
        } => {
            for (n, pid, vrrp) in keepalived::up(&dir, &nodes, &ns_prefix, &advert, &vip)? {
                println!("{n} {pid} {vrrp}");
            }
        }
        Cmd::CtrTemplate { dir, holders, vip } => container::template(&dir, &holders, &vip)?,
        Cmd::Container {
            ns,
            tap,
            ctr,
            addr,
            vip,
            ttl,
        } => container::Container {
            ns: &ns,
            tap: &tap,
            ctr: &ctr,
            addr: &addr,
            vip: &vip,
            ttl,
        }
        .up()?,
        Cmd::Args { .. } => unreachable!("handled in main"),
        Cmd::ThroughputTable { time, hz, dirs } => {
            let paths = dirs
                .iter()
                .map(|d| throughput::Path1::read(d))
                .collect::<Result<Vec<_>>>()?;
            print!("{}", throughput::table(&paths, time, hz));
        }
        Cmd::FloodRow {
            kind,
            before,
            after,
            flood,
            ping,
            hz,
        } => {
            let report: serde_json::Value = serde_json::from_str(&read(&flood)?)
                .with_context(|| format!("{}: not the flooder's JSON", flood.display()))?;
            let (b, a) = (
                flood::Snapshot::read(&before)?,
                flood::Snapshot::read(&after)?,
            );
            let r = flood::row(&kind, &b, &a, &report, &ProbeLog::parse(&read(&ping)?), hz);
            println!("{}", serde_json::to_string(&r)?);
        }
        Cmd::FloodTable {
            header,
            answers,
            json,
            rows,
        } => {
            let rows = read(&rows)?
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).context("a flood row"))
                .collect::<Result<Vec<flood::Row>>>()?;
            let text = flood::table(&header, &rows, &answers);
            if json {
                eprint!("{text}");
                let doc =
                    serde_json::json!({"header": header, "daemon_answers": answers, "rows": rows});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                print!("{text}");
            }
        }
        Cmd::VipWatcher {
            vip,
            dev,
            limit_ms,
            arping,
            peers,
        } => meshd_lab::watcher::run(&vip, &dev, limit_ms, &arping, &peers)
            .context("the VIP watcher")?,
        Cmd::ScaleReport {
            rss,
            load0,
            json,
            facts,
        } => {
            let f = scale::Facts::parse(&facts)?;
            let rss: Vec<(u64, u64)> = read(&rss)?
                .lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace().map(|v| v.parse().ok());
                    Some((w.next()??, w.next()??))
                })
                .collect();
            let now = Utc::now();
            let r = scale::report(&f, &rss, now.rfc3339(), host::cpus())?;
            print!(
                "{}",
                scale::table(&r, f.invite(), &load0, &host::kernel(), &now.minutes())
            );
            if let Some(p) = json {
                std::fs::write(&p, serde_json::to_string(&r)? + "\n")
                    .with_context(|| format!("writing {}", p.display()))?;
            }
        }
        Cmd::PingMedian => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading ping's output")?;
            match throughput::ping_median(&text) {
                Some(m) => println!("{m}"),
                None => return Ok(false),
            }
        }
        Cmd::Timeline {
            ping,
            fault,
            title,
            subtitle,
            fault_label,
            mark,
            ttl_base,
            holders,
            before,
            after,
            out,
        } => {
            let marks = mark
                .iter()
                .map(|m| {
                    let (t, label) = m.split_once(':').unwrap_or((m, ""));
                    let t = t
                        .parse()
                        .with_context(|| format!("--mark {m}: TIME:LABEL"))?;
                    Ok((t, label.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            let d = timeline::Drawing {
                fault,
                title,
                subtitle,
                fault_label,
                marks,
                ttl_base,
                holders,
                before,
                after,
            };
            let svg = timeline::draw(&ProbeLog::parse(&read(&ping)?), &d)
                .with_context(|| format!("fewer than two answers in {}", ping.display()))?;
            std::fs::write(&out, svg).with_context(|| format!("writing {}", out.display()))?;
        }
        Cmd::FaultsProfile {
            run,
            profile,
            netem,
            key_expire,
            ttl_base,
            one_end,
        } => {
            let spec = faults::ProfileSpec {
                name: profile,
                netem,
                key_expire_s: key_expire,
                ttl_base,
                both_ends: !one_end,
            };
            println!("{}", serde_json::to_string(&faults::profile(&run, &spec)?)?);
        }
        Cmd::FaultsLine { result } => println!("{}", faults::line(&faults_result(&result)?)),
        Cmd::FaultsTable {
            json,
            rev,
            uptime,
            results,
        } => {
            let rows = results
                .iter()
                .map(|p| faults_result(p))
                .collect::<Result<Vec<_>>>()?;
            print!("{}", faults::table(&rows));
            if let Some(p) = json {
                let doc = faults::Doc {
                    date: Utc::now().rfc3339(),
                    meshd: &rev,
                    uptime: &uptime,
                    cpus: host::cpus(),
                    rows: &rows,
                };
                std::fs::write(&p, serde_json::to_string_pretty(&doc)? + "\n")
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            if !rows.iter().all(faults::passed) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
