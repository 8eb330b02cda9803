//! The `meshd-lab report` command line: what scripts/lab knows after its
//! trials (settings, timings, notes, the throughput output), turned into the
//! report's [`Run`], printed, and written as CSV and JSON.

use anyhow::{Context, Result};
use std::path::PathBuf;

use crate::host::{self, Utc};
use crate::report::{report, Run};
use crate::table::TableSpec;
use crate::trial::Trial;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    #[arg(long)]
    pub record: PathBuf,
    /// Comma-separated daemons, in table order.
    #[arg(long, value_delimiter = ',')]
    pub daemons: Vec<String>,
    #[arg(long, value_delimiter = ',')]
    pub kinds: Vec<String>,
    #[arg(long)]
    pub runs: u32,
    #[arg(long)]
    pub hello_ms: u64,
    #[arg(long)]
    pub dead_ms: u64,
    #[arg(long)]
    pub bound_ms: u64,
    #[arg(long)]
    pub after: u64,
    #[arg(long)]
    pub tinc_timeout: u64,
    #[arg(long)]
    pub interval: String,
    #[arg(long)]
    pub vip: String,
    #[arg(long)]
    pub rev: String,
    #[arg(long)]
    pub load_average: f64,
    #[arg(long)]
    pub seconds: u64,
    #[arg(long)]
    pub full_mesh_ms: Option<u64>,
    #[arg(long)]
    pub vip_ready_ms: Option<u64>,
    #[arg(long)]
    pub saturate: bool,
    #[arg(long)]
    pub restore: bool,
    #[arg(long, default_value_t = 0)]
    pub setup_failures: u32,
    #[arg(long, default_value_t = 0)]
    pub meshd_setup_failures: u32,
    #[arg(long, default_value = "")]
    pub tinc_version: String,
    #[arg(long, default_value = "")]
    pub garp_note: String,
    #[arg(long, default_value = "")]
    pub keepalived_version: String,
    #[arg(long)]
    pub tinc_note: Option<String>,
    /// Write the tables as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the JSON document here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// scripts/bench-throughput's output, passed through.
    #[arg(long)]
    pub throughput_out: Option<PathBuf>,
    #[arg(long)]
    pub throughput_rc: Option<i32>,
    /// A line printed after the throughput table (repeatable).
    #[arg(long)]
    pub note: Vec<String>,
}

impl ReportArgs {
    /// Prints the report; writes the CSV and JSON; false when meshd's failover failed.
    pub fn run(self) -> Result<bool> {
        let a = self;
        let trials = Trial::read_all(&a.record)?;
        let throughput = match (&a.throughput_out, a.throughput_rc) {
            (Some(p), rc) => Some((
                std::fs::read_to_string(p).unwrap_or_default(),
                rc.unwrap_or(0),
            )),
            (None, Some(rc)) => Some((String::new(), rc)),
            (None, None) => None,
        };
        let run = Run {
            spec: TableSpec {
                daemons: a.daemons,
                kinds: a.kinds,
                hello_ms: a.hello_ms,
                dead_ms: a.dead_ms,
                bound_ms: a.bound_ms,
                after_s: a.after,
                tinc_timeout_s: a.tinc_timeout,
            },
            runs: a.runs,
            date: Utc::now(),
            cpus: host::cpus(),
            kernel: host::kernel(),
            rev: a.rev,
            load_average: a.load_average,
            seconds: a.seconds,
            full_mesh_ms: a.full_mesh_ms,
            vip_ready_ms: a.vip_ready_ms,
            interval: a.interval,
            vip: a.vip,
            saturate: a.saturate,
            restore: a.restore,
            setup_failures: a.setup_failures,
            meshd_setup_failures: a.meshd_setup_failures,
            tinc_version: a.tinc_version,
            garp_note: a.garp_note,
            keepalived_version: a.keepalived_version,
            tinc_note: a.tinc_note.filter(|n| !n.is_empty()),
            csv: a.csv.as_ref().map(|p| p.display().to_string()),
            throughput,
            notes: a.note.into_iter().filter(|n| !n.is_empty()).collect(),
        };
        let r = report(&run, &trials);
        if let Some(p) = &a.csv {
            std::fs::write(p, r.csv.join("\n") + "\n")
                .with_context(|| format!("writing the CSV {}", p.display()))?;
        }
        print!("{}", r.text);
        if let Some(p) = &a.json {
            std::fs::write(p, &r.json)
                .with_context(|| format!("writing the JSON {}", p.display()))?;
        }
        Ok(r.ok)
    }
}
