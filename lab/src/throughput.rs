//! scripts/bench-throughput's table: per path (underlay, meshd, tinc) the
//! median ping RTT, iperf3's TCP (1 and 4 streams) and UDP results, the
//! daemons' CPU per Gbit and memory, then meshd's ratios to tinc and the
//! underlay. The script measures; this reads its files and computes.

use anyhow::{Context, Result};
use std::path::Path;

/// The median of `ping` output's RTTs (ms), as ping wrote it when the count
/// is odd, the mean of the middle two to 3 decimals when even.
pub fn ping_median(ping: &str) -> Option<String> {
    let mut rtts: Vec<(f64, &str)> = ping
        .lines()
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("time=")))
        .filter_map(|v| Some((v.parse::<f64>().ok()?, v)))
        .collect();
    rtts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = rtts.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(rtts[n / 2].1.to_string()),
        _ => Some(format!("{:.3}", (rtts[n / 2 - 1].0 + rtts[n / 2].0) / 2.0)),
    }
}

fn json(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text).ok()
}

/// iperf3 -J's TCP result: the receiver's Gbit/s.
pub fn tcp_gbit(iperf3_json: &str) -> Option<f64> {
    Some(json(iperf3_json)?["end"]["sum_received"]["bits_per_second"].as_f64()? / 1e9)
}

/// iperf3 -J's UDP result: what arrived in Gbit/s, and the loss in percent.
pub fn udp_gbit(iperf3_json: &str) -> Option<(f64, f64)> {
    let v = json(iperf3_json)?;
    let s = &v["end"]["sum"];
    let lost = s["lost_percent"].as_f64()?;
    Some((
        s["bits_per_second"].as_f64()? * (1.0 - lost / 100.0) / 1e9,
        lost,
    ))
}

/// One path's measurements, as the script left them in its directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Path1 {
    pub label: String,
    pub ping_ms: Option<String>,
    pub tcp1: Option<f64>,
    pub tcp4: Option<f64>,
    pub udp: Option<(f64, f64)>,
    /// The daemons' utime + stime (ticks) and wall clock (s) around the TCP runs.
    pub cpu: Option<(u64, f64)>,
    /// VmRSS before, after one stream, at the end, and VmHWM (kB).
    pub rss_kb: Option<[u64; 4]>,
}

fn numbers(text: &str) -> Vec<f64> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

impl Path1 {
    /// Reads DIR/{label,ping.txt,tcp1.json,tcp4.json,udp.json[,cpu,rss]};
    /// cpu: "TICKS0 TICKS1 SECS0 SECS1", rss: "RSS0 RSS1 RSS2 HWM" in kB.
    pub fn read(dir: &Path) -> Result<Path1> {
        let get = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let label = std::fs::read_to_string(dir.join("label"))
            .with_context(|| format!("{}: no label", dir.display()))?;
        let cpu = numbers(&get("cpu"));
        let rss = numbers(&get("rss"));
        Ok(Path1 {
            label: label.trim().to_string(),
            ping_ms: ping_median(&get("ping.txt")),
            tcp1: tcp_gbit(&get("tcp1.json")),
            tcp4: tcp_gbit(&get("tcp4.json")),
            udp: udp_gbit(&get("udp.json")),
            cpu: (cpu.len() == 4).then(|| ((cpu[1] - cpu[0]) as u64, cpu[3] - cpu[2])),
            rss_kb: (rss.len() == 4)
                .then(|| [rss[0] as u64, rss[1] as u64, rss[2] as u64, rss[3] as u64]),
        })
    }
}

fn row(c: [&str; 8]) -> String {
    format!(
        "{:<17} {:<15} {:<7} {:<7} {:<14} {:<11} {:<6} {}\n",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    )
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "-".into(),
    }
}

/// The table (header, one row per path, the ratios). `secs`: iperf3 -t; `hz`: clock ticks per second.
pub fn table(paths: &[Path1], secs: f64, hz: f64) -> String {
    let mut out = row([
        "path",
        "ping med (ms)",
        "TCP 1",
        "TCP 4",
        "UDP (loss)",
        "CPU s/Gbit",
        "CPU %",
        "RSS MB (peak)",
    ]);
    out += &row(["", "", "Gbit/s", "Gbit/s", "Gbit/s", "", "", ""]);
    let find = |l: &str| paths.iter().find(|p| p.label == l);
    let under = find("underlay veth").and_then(|p| p.ping_ms.as_deref()?.parse::<f64>().ok());
    let fail = |v: Option<String>| v.unwrap_or_else(|| "failed".into());
    for p in paths {
        let mut ping = fail(p.ping_ms.clone());
        if let (Some(u), Some(v), false) = (
            under,
            p.ping_ms.as_deref().and_then(|v| v.parse::<f64>().ok()),
            p.label == "underlay veth",
        ) {
            ping += &format!(" (+{:.3})", v - u);
        }
        let (mut cpu, mut pct) = ("-".to_string(), "-".to_string());
        if let (Some((ticks, wall)), Some(a), Some(b)) = (p.cpu, p.tcp1, p.tcp4) {
            let g = (a + b) * secs;
            if g > 0.0 {
                cpu = format!("{:.2}", ticks as f64 / hz / g);
            }
            pct = format!("{:.0}", 100.0 * ticks as f64 / hz / wall);
        }
        let mb = |kb: u64| format!("{:.1}", kb as f64 / 1024.0);
        let rss = p.rss_kb.map_or("-".into(), |r| {
            format!(
                "{} -> {} -> {} ({})",
                mb(r[0]),
                mb(r[1]),
                mb(r[2]),
                mb(r[3])
            )
        });
        out += &row([
            &p.label,
            &ping,
            &fail(p.tcp1.map(|v| format!("{v:.2}"))),
            &fail(p.tcp4.map(|v| format!("{v:.2}"))),
            &fail(p.udp.map(|(g, l)| format!("{g:.2} ({l:.1}%)"))),
            &cpu,
            &pct,
            &rss,
        ]);
    }
    if let Some(m) = find("meshd overlay") {
        let or0 = |v: Option<f64>| Some(v.unwrap_or(0.0));
        if let Some(t) = find("tinc 1.0 overlay") {
            out += &format!(
                "meshd / tinc:     TCP 1 {}x, TCP 4 {}x\n",
                ratio(or0(m.tcp1), or0(t.tcp1)),
                ratio(or0(m.tcp4), or0(t.tcp4))
            );
        }
        if let Some(u) = find("underlay veth") {
            out += &format!(
                "meshd / underlay: TCP 1 {}, TCP 4 {}\n",
                ratio(or0(m.tcp1), or0(u.tcp1)),
                ratio(or0(m.tcp4), or0(u.tcp4))
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = r#"{"end":{"sum_received":{"bits_per_second":1.26e9}}}"#;
    const UDP: &str = r#"{"end":{"sum":{"bits_per_second":1.0e9,"lost_percent":19.0}}}"#;

    #[test]
    fn medians_of_ping_output() {
        let ping = "64 bytes from x: icmp_seq=1 ttl=64 time=0.310 ms\n64 bytes from x: icmp_seq=2 ttl=64 time=0.057 ms\n\
                    64 bytes from x: icmp_seq=3 ttl=64 time=0.100 ms\n--- stats ---\nrtt min/avg/max = 1/2/3 ms\n";
        assert_eq!(ping_median(ping).as_deref(), Some("0.100"));
        let even = "time=0.1 ms\ntime=0.2 ms\n";
        assert_eq!(ping_median(even).as_deref(), Some("0.150"));
        assert_eq!(ping_median("100% packet loss"), None);
    }

    #[test]
    fn iperf3_results() {
        assert_eq!(tcp_gbit(TCP), Some(1.26));
        assert_eq!(udp_gbit(UDP), Some((0.81, 19.0)));
        assert_eq!(tcp_gbit(""), None);
        assert_eq!(udp_gbit(r#"{"error":"x"}"#), None);
    }

    #[test]
    fn the_table_and_the_ratios() {
        let under = Path1 {
            label: "underlay veth".into(),
            ping_ms: Some("0.057".into()),
            tcp1: Some(13.65),
            tcp4: Some(15.65),
            udp: Some((0.66, 60.5)),
            ..Default::default()
        };
        let meshd = Path1 {
            label: "meshd overlay".into(),
            ping_ms: Some("0.309".into()),
            tcp1: Some(1.26),
            tcp4: Some(1.2),
            udp: None,
            cpu: Some((935, 10.3)),
            rss_kb: Some([6963, 10240, 10240, 15872]),
        };
        let t = table(&[under, meshd], 5.0, 100.0);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "path              ping med (ms)   TCP 1   TCP 4   UDP (loss)     CPU s/Gbit  CPU %  RSS MB (peak)");
        assert_eq!(
            lines[2],
            "underlay veth     0.057           13.65   15.65   0.66 (60.5%)   -           -      -"
        );
        assert_eq!(lines[3], "meshd overlay     0.309 (+0.252)  1.26    1.20    failed         0.76        91     6.8 -> 10.0 -> 10.0 (15.5)");
        assert_eq!(lines[4], "meshd / underlay: TCP 1 0.09, TCP 4 0.08");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn a_path_from_its_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("label"), "meshd overlay\n").unwrap();
        std::fs::write(d.path().join("tcp1.json"), TCP).unwrap();
        std::fs::write(d.path().join("cpu"), "100 200 5.0 15.0\n").unwrap();
        let p = Path1::read(d.path()).unwrap();
        assert_eq!(
            (p.tcp1, p.tcp4, p.cpu),
            (Some(1.26), None, Some((100, 10.0)))
        );
        assert!(Path1::read(&d.path().join("nope")).is_err());
    }
}
