//! The options of scripts/lab and the benchmarks: parsed and checked here,
//! handed to the script as shell assignments (`meshd-lab args SCRIPT -- ARGS`,
//! scripts/lib/netns.sh: lab_start), with each script's --help text.

use clap::Parser;
use std::fmt::Write;

/// A shell word: single-quoted.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Shell assignments, in order.
#[derive(Debug, Default)]
pub struct Shell(String);

impl Shell {
    fn var(&mut self, name: &str, v: impl ToString) -> &mut Self {
        let _ = writeln!(self.0, "{name}={}", quote(&v.to_string()));
        self
    }
    fn flag(&mut self, name: &str, on: bool) -> &mut Self {
        self.var(name, u8::from(on))
    }
    fn array(&mut self, name: &str, v: &[String]) -> &mut Self {
        let words: Vec<String> = v.iter().map(|w| quote(w)).collect();
        let _ = writeln!(self.0, "{name}=({})", words.join(" "));
        self
    }
}

fn positive(v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("wants a positive whole number, not '{v}'"))
}

fn whole(v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| format!("wants a whole number, not '{v}'"))
}

fn seconds(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_digit() || c == '.')
        && v.matches('.').count() <= 1
        && v != ".";
    ok.then(|| v.to_string())
        .ok_or_else(|| format!("wants seconds, not '{v}'"))
}

/// `10ms`, `10` (ms) or `1s` in milliseconds.
pub fn duration_ms(v: &str) -> Result<u64, String> {
    let (num, scale) = match (v.strip_suffix("ms"), v.strip_suffix('s')) {
        (Some(n), _) => (n, 1),
        (None, Some(n)) => (n, 1000),
        _ => (v, 1),
    };
    positive(num).map(|n| n * scale)
}

fn debug_level(v: &str) -> Result<u8, String> {
    v.parse::<u8>()
        .ok()
        .filter(|&d| d <= 3)
        .ok_or_else(|| format!("wants 0..3, not '{v}'"))
}

/// A comma-separated list, each item one of `allowed`; empty items skipped.
fn list(what: &str, v: &str, allowed: &[&str]) -> Result<Vec<String>, String> {
    let items: Vec<String> = v
        .split(',')
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect();
    if let Some(bad) = items.iter().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown {what} '{bad}' ({})", allowed.join(", ")));
    }
    if items.is_empty() {
        return Err(format!("no {what} given"));
    }
    Ok(items)
}

const FAULT_KINDS: [&str; 7] = [
    "stop", "kill", "cut", "freeze", "health", "ctr-del", "ctr-addr",
];

#[derive(Parser, Debug)]
#[command(name = "scripts/lab", override_help = include_str!("help/lab.txt"), args_override_self = true, disable_version_flag = true)]
pub struct Lab {
    #[arg(long, default_value = "3", value_parser = positive)]
    runs: u64,
    #[arg(long, default_value = "stop,kill,cut,freeze,health,ctr-del,ctr-addr")]
    kinds: String,
    #[arg(long)]
    hello: Option<String>,
    #[arg(long)]
    dead: Option<String>,
    #[arg(long)]
    no_tinc: bool,
    #[arg(long)]
    vip6: bool,
    #[arg(long)]
    no_keepalived: bool,
    #[arg(long, default_value = "0.1,0.01")]
    keepalived_adverts: String,
    #[arg(long)]
    container: bool,
    #[arg(long)]
    no_udp: bool,
    #[arg(long)]
    no_throughput: bool,
    #[arg(long, default_value = "5", value_parser = positive)]
    throughput_time: u64,
    #[arg(long)]
    json: bool,
    #[arg(long, default_value = "")]
    svg: String,
    #[arg(long, default_value = "kill")]
    svg_kind: String,
    #[arg(long, value_parser = positive)]
    bound: Option<u64>,
    #[arg(long, default_value = "60", value_parser = positive)]
    tinc_timeout: u64,
    #[arg(long, default_value = "3", value_parser = positive)]
    after: u64,
    #[arg(long, default_value = "1", value_parser = seconds)]
    settle: String,
    #[arg(long, default_value = "0.01", value_parser = seconds)]
    interval: String,
    #[arg(long)]
    no_garp: bool,
    #[arg(long)]
    restore: bool,
    #[arg(long)]
    load: bool,
    #[arg(long, default_value = "60", value_parser = positive)]
    load_time: u64,
    #[arg(long)]
    saturate: bool,
    #[arg(long, default_value = "")]
    csv: String,
    #[arg(long, default_value = "1", value_parser = debug_level)]
    debug: u8,
    #[arg(long)]
    keep: bool,
    #[arg(long)]
    no_build: bool,
    #[arg(long)]
    no_install: bool,
}

impl Lab {
    pub fn shell(&self) -> Result<Shell, String> {
        let hello = self
            .hello
            .as_deref()
            .map(duration_ms)
            .transpose()
            .map_err(|e| format!("--hello {e}"))?;
        let mut dead = self
            .dead
            .as_deref()
            .map(duration_ms)
            .transpose()
            .map_err(|e| format!("--dead {e}"))?;
        if let (Some(h), None) = (hello, dead) {
            dead = Some(h * 3);
        }
        let (eff_hello, eff_dead) = (hello.unwrap_or(100), dead.unwrap_or(300));
        if eff_dead <= eff_hello {
            return Err(format!(
                "--dead ({eff_dead} ms) must exceed --hello ({eff_hello} ms)"
            ));
        }
        let kinds =
            list("fault kind", &self.kinds, &FAULT_KINDS).map_err(|e| format!("--kinds: {e}"))?;
        if !FAULT_KINDS.contains(&self.svg_kind.as_str()) {
            return Err(format!(
                "--svg-kind: unknown fault kind '{}'",
                self.svg_kind
            ));
        }
        if self.load && self.saturate {
            return Err("--load and --saturate exclude each other: --load measures false failovers under load, \
                        --saturate runs the fault trials under load (see --help)"
                .into());
        }
        let adverts: Vec<String> = self
            .keepalived_adverts
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| {
                seconds(a)
                    .ok()
                    .filter(|a| a.parse::<f64>().is_ok_and(|v| (0.01..=255.0).contains(&v)))
                    .ok_or_else(|| {
                        format!(
                            "--keepalived-adverts: '{a}' is no advert_int (0.01 to 255 seconds)"
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        if adverts.is_empty() {
            return Err("--keepalived-adverts: no advert interval given".into());
        }
        if self.container && self.vip6 {
            return Err("--container and --vip6: the container rows are IPv4 only for now".into());
        }
        let mut sh = Shell::default();
        sh.var("RUNS", self.runs)
            .array("KIND_LIST", &kinds)
            .flag("TINC", !self.no_tinc && !self.vip6)
            .flag(
                "KEEPALIVED",
                !self.no_keepalived && !self.vip6 && !self.load,
            )
            .array("ADVERTS", &adverts)
            .flag("CONTAINER", self.container && !self.load)
            .flag("UDP", !self.no_udp && !self.load)
            .flag("VIP6", self.vip6)
            .flag("THROUGHPUT", !self.no_throughput && !self.load)
            .var("THROUGHPUT_TIME", self.throughput_time)
            .flag("JSON", self.json)
            .var("SVG_DIR", &self.svg)
            .var("SVG_KIND", &self.svg_kind)
            .var("BOUND", self.bound.unwrap_or(1000.max(eff_dead * 3)))
            .var("TINC_TIMEOUT", self.tinc_timeout)
            .var("AFTER", self.after)
            .var("SETTLE", &self.settle)
            .var("INTERVAL", &self.interval)
            .var("HELLO_MS", hello.map_or(String::new(), |v| v.to_string()))
            .var("DEAD_MS", dead.map_or(String::new(), |v| v.to_string()))
            .var("EFF_HELLO", eff_hello)
            .var("EFF_DEAD", eff_dead)
            .flag("LOAD", self.load)
            .var("LOAD_TIME", self.load_time)
            .flag("SATURATE", self.saturate)
            .var("CSV", &self.csv)
            .var("DEBUG", self.debug)
            .flag("KEEP", self.keep)
            .flag("RESTORE", self.restore)
            .flag("GARP", !self.no_garp)
            .flag("BUILD", !self.no_build)
            .flag("INSTALL", !self.no_install);
        Ok(sh)
    }
}

#[derive(Parser, Debug)]
#[command(name = "scripts/bench-faults", override_help = include_str!("help/bench-faults.txt"), args_override_self = true, disable_version_flag = true)]
pub struct Faults {
    #[arg(long, default_value = "loss1,loss5,jitter,rtt200,reorder,dup,all")]
    profiles: String,
    #[arg(long, default_value = "3", value_parser = seconds)]
    minutes: String,
    #[arg(long, default_value = "10", value_parser = positive)]
    key_expire: u64,
    #[arg(long)]
    one_end: bool,
    #[arg(long)]
    json: bool,
    #[arg(long)]
    keep: bool,
    #[arg(long)]
    no_build: bool,
    #[arg(long, default_value = "1", value_parser = debug_level)]
    debug: u8,
}

impl Faults {
    pub fn shell(&self) -> Result<Shell, String> {
        let profiles = [
            "none", "loss1", "loss5", "jitter", "rtt200", "reorder", "dup", "all",
        ];
        let list =
            list("profile", &self.profiles, &profiles).map_err(|e| format!("--profiles: {e}"))?;
        let minutes: f64 = self
            .minutes
            .parse()
            .map_err(|_| format!("--minutes wants a number, not '{}'", self.minutes))?;
        let run_s = (minutes * 60.0 + 0.5) as u64;
        if run_s < 5 {
            return Err("--minutes: at least 5 seconds (0.09)".into());
        }
        let mut sh = Shell::default();
        sh.array("PROFILE_LIST", &list)
            .var("RUN_S", run_s)
            .var("KEY_EXPIRE", self.key_expire)
            .flag("BOTH_ENDS", !self.one_end)
            .flag("JSON", self.json)
            .flag("KEEP", self.keep)
            .flag("BUILD", !self.no_build)
            .var("DEBUG", self.debug);
        Ok(sh)
    }
}

#[derive(Parser, Debug)]
#[command(name = "scripts/bench-flood", override_help = include_str!("help/bench-flood.txt"), args_override_self = true, disable_version_flag = true)]
pub struct Flood {
    #[arg(long, default_value = "20", value_parser = positive)]
    seconds: u64,
    #[arg(long, default_value = "0", value_parser = whole)]
    rate: u64,
    #[arg(long, default_value = "garbage,init,init-known,data,mixed")]
    kinds: String,
    #[arg(long, default_value = "64", value_parser = positive)]
    sources: u64,
    #[arg(long)]
    json: bool,
    #[arg(long)]
    no_build: bool,
    #[arg(long)]
    keep: bool,
}

impl Flood {
    pub fn shell(&self) -> Result<Shell, String> {
        if self.seconds > 300 {
            return Err("--seconds must be 1..300".into());
        }
        if self.sources > 100 {
            return Err("--sources must be 1..100".into());
        }
        let kinds = ["garbage", "init", "init-known", "data", "mixed"];
        let kinds = list("kind", &self.kinds, &kinds).map_err(|e| format!("--kinds: {e}"))?;
        let mut sh = Shell::default();
        sh.var("SECONDS_PER", self.seconds)
            .var("RATE", self.rate)
            .array("KIND_LIST", &kinds)
            .var("SOURCES", self.sources)
            .flag("JSON", self.json)
            .flag("BUILD", !self.no_build)
            .flag("KEEP", self.keep);
        Ok(sh)
    }
}

#[derive(Parser, Debug)]
#[command(name = "scripts/bench-scale", override_help = include_str!("help/bench-scale.txt"), args_override_self = true, disable_version_flag = true)]
pub struct Scale {
    #[arg(long, default_value = "30", value_parser = positive)]
    nodes: u64,
    #[arg(long, default_value = "20", value_parser = positive)]
    idle: u64,
    #[arg(long)]
    hello: Option<String>,
    #[arg(long)]
    no_invite: bool,
    #[arg(long)]
    cold_start: bool,
    #[arg(long, default_value = "60", value_parser = positive)]
    limit: u64,
    #[arg(long, default_value = "3")]
    vip_holders: u64,
    #[arg(long)]
    json: bool,
    #[arg(long)]
    no_build: bool,
    #[arg(long)]
    keep: bool,
}

impl Scale {
    pub fn shell(&self) -> Result<Shell, String> {
        if !(2..=250).contains(&self.nodes) {
            return Err(format!("--nodes wants 2..250, not {}", self.nodes));
        }
        if self.vip_holders >= self.nodes {
            return Err(format!(
                "--vip-holders wants fewer than --nodes ({}), not {}",
                self.nodes, self.vip_holders
            ));
        }
        let hello = self
            .hello
            .as_deref()
            .map(duration_ms)
            .transpose()
            .map_err(|e| format!("--hello {e}"))?;
        let mut sh = Shell::default();
        sh.var("NODES", self.nodes)
            .var("VIP_HOLDERS", self.vip_holders)
            .var("IDLE", self.idle)
            .var("MESH_LIMIT", self.limit)
            .flag("COLD", self.cold_start)
            .var("HELLO", self.hello.as_deref().unwrap_or(""))
            .var("HELLO_MS", hello.map_or(String::new(), |v| v.to_string()))
            .flag("INVITE", !self.no_invite)
            .flag("JSON", self.json)
            .flag("BUILD", !self.no_build)
            .flag("KEEP", self.keep);
        Ok(sh)
    }
}

#[derive(Parser, Debug)]
#[command(name = "scripts/bench-throughput", override_help = include_str!("help/bench-throughput.txt"), args_override_self = true, disable_version_flag = true)]
pub struct Throughput {
    #[arg(long, default_value = "10", value_parser = positive)]
    time: u64,
    #[arg(long, default_value = "underlay,meshd,tinc")]
    paths: String,
    #[arg(long, default_value = "")]
    perf: String,
    #[arg(long)]
    latency: bool,
}

impl Throughput {
    pub fn shell(&self) -> Result<Shell, String> {
        list("path", &self.paths, &["underlay", "meshd", "tinc"])
            .map_err(|e| format!("--paths: {e}"))?;
        let perf = match self.perf.as_str() {
            "" => String::new(),
            p => std::path::absolute(p)
                .map_err(|e| format!("--perf {p}: {e}"))?
                .display()
                .to_string(),
        };
        let mut sh = Shell::default();
        sh.var("TIME", self.time)
            .var("PATHS", &self.paths)
            .var("PERF_OUT", perf)
            .flag("LATENCY", self.latency)
            .flag("BUILD", true);
        Ok(sh)
    }
}

/// What `meshd-lab args` prints and how it ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Shell assignments to eval.
    Vars(String),
    /// --help: the text (exit 3, the script prints it and exits 0).
    Help(String),
    /// A bad option: the message (exit 2).
    Error(String),
}

fn parse<T: Parser>(args: &[String], shell: impl Fn(&T) -> Result<Shell, String>) -> Outcome {
    let name = T::command().get_name().to_string();
    let m = match T::command()
        .try_get_matches_from(std::iter::once(name.clone()).chain(args.iter().cloned()))
    {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            return Outcome::Help(e.to_string())
        }
        Err(e) => {
            let first = e
                .render()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            return Outcome::Error(format!(
                "{name}: {} (see --help)",
                first.trim_start_matches("error: ")
            ));
        }
    };
    match T::from_arg_matches(&m)
        .map_err(|e| e.to_string())
        .and_then(|t| shell(&t))
    {
        Ok(sh) => Outcome::Vars(sh.0),
        Err(e) => Outcome::Error(format!("{e} (see --help)")),
    }
}

/// The options of `script` (lab, bench-faults, bench-flood, bench-scale, bench-throughput).
pub fn args(script: &str, args: &[String]) -> Outcome {
    match script {
        "lab" => parse::<Lab>(args, Lab::shell),
        "bench-faults" => parse::<Faults>(args, Faults::shell),
        "bench-flood" => parse::<Flood>(args, Flood::shell),
        "bench-scale" => parse::<Scale>(args, Scale::shell),
        "bench-throughput" => parse::<Throughput>(args, Throughput::shell),
        other => Outcome::Error(format!("meshd-lab args: no script named {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str, a: &[&str]) -> Outcome {
        args(script, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn vars(script: &str, a: &[&str]) -> String {
        match run(script, a) {
            Outcome::Vars(v) => v,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    #[test]
    fn lab_defaults_and_the_ci_form() {
        let v = vars("lab", &["--runs", "1", "--no-tinc", "--no-throughput"]);
        for want in [
            "RUNS='1'\n",
            "KIND_LIST=('stop' 'kill' 'cut' 'freeze' 'health' 'ctr-del' 'ctr-addr')\n",
            "TINC='0'\n",
            "KEEPALIVED='1'\n",
            "ADVERTS=('0.1' '0.01')\n",
            "CONTAINER='0'\n",
            "UDP='1'\n",
            "THROUGHPUT='0'\n",
            "BOUND='1000'\n",
            "EFF_HELLO='100'\n",
            "EFF_DEAD='300'\n",
            "HELLO_MS=''\n",
            "INTERVAL='0.01'\n",
            "BUILD='1'\n",
        ] {
            assert!(v.contains(want), "{want} in {v}");
        }
    }

    #[test]
    fn lab_timers_and_the_bound() {
        let v = vars("lab", &["--hello", "10ms", "--kinds=kill,,cut"]);
        assert!(
            v.contains("HELLO_MS='10'\n")
                && v.contains("DEAD_MS='30'\n")
                && v.contains("KIND_LIST=('kill' 'cut')\n")
        );
        let v = vars("lab", &["--hello", "1s"]);
        assert!(
            v.contains("EFF_DEAD='3000'\n") && v.contains("BOUND='9000'\n"),
            "{v}"
        );
        // Later options win (scripts/demo and bench-failover pass defaults first).
        let v = vars("lab", &["--runs", "5", "--runs", "2"]);
        assert!(v.contains("RUNS='2'\n"));
        assert!(vars("lab", &["--load"]).contains("THROUGHPUT='0'\n"));
        let v = vars("lab", &["--vip6"]);
        assert!(
            v.contains("VIP6='1'\n") && v.contains("TINC='0'\n") && v.contains("KEEPALIVED='0'\n"),
            "{v}"
        );
        let v = vars(
            "lab",
            &[
                "--no-keepalived",
                "--container",
                "--no-udp",
                "--keepalived-adverts",
                "1,0.05",
            ],
        );
        for want in [
            "KEEPALIVED='0'\n",
            "CONTAINER='1'\n",
            "UDP='0'\n",
            "ADVERTS=('1' '0.05')\n",
        ] {
            assert!(v.contains(want), "{want} in {v}");
        }
        let v = vars("lab", &["--load", "--container"]);
        assert!(
            v.contains("CONTAINER='0'\n")
                && v.contains("UDP='0'\n")
                && v.contains("KEEPALIVED='0'\n")
        );
    }

    #[test]
    fn lab_refuses_bad_options() {
        for (a, why) in [
            (&["--runs", "0"][..], "positive whole number"),
            (&["--kinds", "kill,boom"], "unknown fault kind 'boom'"),
            (&["--kinds", ","], "no fault kind"),
            (
                &["--hello", "100", "--dead", "50"],
                "--dead (50 ms) must exceed --hello (100 ms)",
            ),
            (&["--load", "--saturate"], "exclude each other"),
            (&["--debug", "4"], "0..3"),
            (&["--interval", "1.2.3"], "wants seconds"),
            (&["--svg-kind", "x"], "--svg-kind"),
            (&["--keepalived-adverts", "0.001"], "no advert_int"),
            (&["--keepalived-adverts", "x"], "no advert_int"),
            (&["--keepalived-adverts", ","], "no advert interval"),
            (&["--container", "--vip6"], "IPv4 only"),
            (&["--bogus"], "--bogus"),
        ] {
            match run("lab", a) {
                Outcome::Error(e) => assert!(e.contains(why), "{a:?}: {e}"),
                other => panic!("{a:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn help_is_the_scripts_text() {
        match run("lab", &["--help"]) {
            Outcome::Help(h) => {
                assert!(h.starts_with("Usage: sudo scripts/lab [options]\n"), "{h}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(run("bench-flood", &["-h"]), Outcome::Help(_)));
    }

    #[test]
    fn the_benchmarks() {
        let v = vars(
            "bench-faults",
            &["--profiles", "loss1", "--minutes", "0.09", "--one-end"],
        );
        assert!(
            v.contains("PROFILE_LIST=('loss1')\n")
                && v.contains("RUN_S='5'\n")
                && v.contains("BOTH_ENDS='0'\n"),
            "{v}"
        );
        assert!(matches!(
            run("bench-faults", &["--minutes", "0.05"]),
            Outcome::Error(_)
        ));
        assert!(vars("bench-flood", &["--seconds", "2"]).contains("SECONDS_PER='2'\n"));
        assert!(matches!(
            run("bench-flood", &["--sources", "101"]),
            Outcome::Error(_)
        ));
        let v = vars("bench-scale", &["--nodes", "4", "--hello", "1s"]);
        assert!(v.contains("NODES='4'\n") && v.contains("HELLO_MS='1000'\n"));
        assert!(
            v.contains("VIP_HOLDERS='3'\n"),
            "the issue's benchmark: one VIP on 3 holders"
        );
        assert!(matches!(
            run("bench-scale", &["--nodes", "3", "--vip-holders", "3"]),
            Outcome::Error(_)
        ));
        assert!(matches!(
            run("bench-scale", &["--nodes", "1"]),
            Outcome::Error(_)
        ));
        assert!(vars(
            "bench-throughput",
            &["--time", "1", "--paths", "underlay,meshd"]
        )
        .contains("TIME='1'\n"));
        assert!(matches!(
            run("bench-throughput", &["--paths", "x"]),
            Outcome::Error(_)
        ));
        assert!(matches!(run("nope", &[]), Outcome::Error(_)));
    }

    #[test]
    fn quoting_survives_the_shell() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        let v = vars("lab", &["--csv", "/tmp/a b'c.csv"]);
        assert!(v.contains(r"CSV='/tmp/a b'\''c.csv'"), "{v}");
    }
}
