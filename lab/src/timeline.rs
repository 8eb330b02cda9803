//! One failover trial drawn as an SVG timeline (`scripts/lab --svg`): each
//! probe a mark at the time it was sent, in the row of the holder whose TTL
//! answered it or in the "no answer" row; the fault a vertical line, the
//! outage a shaded band.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::probe::ProbeLog;

const COLOURS: [&str; 5] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"];
const LOST: &str = "#d62728";

/// What to draw besides the probe log.
#[derive(Debug, Clone)]
pub struct Drawing {
    pub fault: f64,
    pub title: String,
    pub subtitle: String,
    pub fault_label: String,
    /// Other events: (time, label).
    pub marks: Vec<(f64, String)>,
    pub ttl_base: u32,
    pub holders: Vec<u32>,
    /// Seconds shown before the fault, and at least after it.
    pub before: f64,
    pub after: f64,
}

/// The send time of every probe 1..=last: answered ones from arrival - RTT,
/// the others interpolated in icmp_seq between answered neighbours.
fn send_times(answers: &BTreeMap<u64, (f64, f64, u32)>, last: u64) -> BTreeMap<u64, f64> {
    let known: Vec<(u64, f64)> = answers.iter().map(|(&s, a)| (s, a.0 - a.1)).collect();
    let mut out = BTreeMap::new();
    if known.len() < 2 {
        return out;
    }
    let mut j = 0;
    for seq in 1..=last {
        while j + 1 < known.len() - 1 && known[j + 1].0 <= seq {
            j += 1;
        }
        let ((s0, t0), (s1, t1)) = (known[j], known[j + 1]);
        out.insert(
            seq,
            t0 + (seq as f64 - s0 as f64) * (t1 - t0) / (s1 - s0) as f64,
        );
    }
    out
}

/// (outage s, its start, its end, the mean spacing): the longest gap between
/// answers from the last answer before the fault on, minus one spacing.
fn outage(answers: &BTreeMap<u64, (f64, f64, u32)>, fault: f64) -> (f64, Option<(f64, f64)>, f64) {
    let seqs: Vec<u64> = answers.keys().copied().collect();
    if seqs.len() < 2 {
        return (0.0, None, 0.01);
    }
    let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
    let spacing = (answers[&last].0 - answers[&first].0) / (last - first) as f64;
    let pre = seqs
        .iter()
        .copied()
        .filter(|s| answers[s].0 < fault)
        .max()
        .unwrap_or(first);
    let (mut best, mut span, mut prev) = (0.0, None, None::<u64>);
    for &s in seqs.iter().filter(|&&s| s >= pre) {
        if let Some(p) = prev.filter(|&p| s - p > 1) {
            let d = answers[&s].0 - answers[&p].0 - spacing;
            if d > best {
                best = d;
                span = Some((answers[&p].0, answers[&s].0));
            }
        }
        prev = Some(s);
    }
    (best, span, spacing)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// A tick label: `+0.5`, `-0.25`, `+1`, `0`.
fn tick(rel: f64) -> String {
    if rel.abs() <= 1e-9 {
        return "0".into();
    }
    let s = format!("{rel:+.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The SVG, or None with fewer than two answers.
pub fn draw(log: &ProbeLog, d: &Drawing) -> Option<String> {
    let mut answers: BTreeMap<u64, (f64, f64, u32)> = BTreeMap::new();
    for a in &log.answers {
        answers.entry(a.seq).or_insert((a.ts, a.rtt, a.ttl));
    }
    if answers.len() < 2 {
        return None;
    }
    let last_seq = *answers.keys().next_back()?;
    let sends = send_times(&answers, last_seq);
    let (out_s, span, spacing) = outage(&answers, d.fault);
    let mut rows: Vec<String> = d.holders.iter().map(|h| format!("node_{h}")).collect();
    rows.push("no answer".into());
    let colour = |r: &str| -> &str {
        rows.iter().position(|x| x == r).map_or(LOST, |i| {
            if i < d.holders.len() {
                COLOURS[i % COLOURS.len()]
            } else {
                LOST
            }
        })
    };
    let t0 = d.fault - d.before;
    let mut t1 = d.fault + d.after;
    if let Some((_, b)) = span {
        t1 = t1.max(b + 0.5);
    }
    for (t, _) in &d.marks {
        t1 = t1.max(t + 0.3);
    }
    let (w, left, right, top) = (900.0, 120.0, 24.0, 64.0);
    let (rowh, gap) = (30.0, 6.0);
    let plot_h = rows.len() as f64 * (rowh + gap);
    let h = top + plot_h + 92.0;
    let pw = w - left - right;
    let x = |t: f64| left + (t - t0) / (t1 - t0) * pw;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="20" font-size="15" font-weight="bold">{}</text>"#,
        esc(&d.title)
    );
    if !d.subtitle.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="{left}" y="38" fill="#444">{}</text>"##,
            esc(&d.subtitle)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * (rowh + gap);
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{y}" width="{pw}" height="{rowh}" fill="#f4f4f4"/>"##
        );
        let label = if r == "no answer" {
            r.clone()
        } else {
            format!("{r} answered")
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end" fill="{}">{}</text>"#,
            left - 8.0,
            y + rowh / 2.0 + 4.0,
            colour(r),
            esc(&label)
        );
    }
    match span {
        Some((a, b)) if out_s > 0.0 => {
            let (xa, xb) = (x(a.max(t0)), x(b.min(t1)));
            let _ = writeln!(
                s,
                r#"<rect x="{xa:.1}" y="{}" width="{:.1}" height="{plot_h}" fill="{LOST}" fill-opacity="0.10"/>"#,
                top - 4.0,
                (xb - xa).max(1.0)
            );
            let lost = (1..=last_seq)
                .filter(|q| {
                    !answers.contains_key(q) && (a..=b).contains(sends.get(q).unwrap_or(&0.0))
                })
                .count();
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle" fill="{LOST}" font-weight="bold">outage {:.0} ms ({lost} probes lost)</text>"#,
                (xa + xb) / 2.0,
                top + plot_h + 14.0,
                out_s * 1000.0
            );
        }
        _ => {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{}" fill="#2a7">no probe lost</text>"##,
                x(d.fault) + 6.0,
                top + plot_h + 14.0
            );
        }
    }
    let mw = (spacing / (t1 - t0) * pw * 0.7).clamp(1.2, 6.0);
    for seq in 1..=last_seq {
        let Some(&t) = sends.get(&seq) else { continue };
        if t < t0 || t > t1 {
            continue;
        }
        let row = match answers.get(&seq) {
            Some(a) => format!("node_{}", i64::from(a.2) - i64::from(d.ttl_base)),
            None => "no answer".into(),
        };
        let Some(i) = rows.iter().position(|r| *r == row) else {
            continue;
        };
        let y = top + i as f64 * (rowh + gap) + 4.0;
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{y}" width="{mw:.1}" height="{}" fill="{}"/>"#,
            x(t) - mw / 2.0,
            rowh - 8.0,
            colour(&row)
        );
    }
    let mut vline = |t: f64, label: &str, col: &str, dash: &str, row: usize| {
        let xt = x(t);
        let _ = writeln!(
            s,
            r#"<line x1="{xt:.1}" y1="{}" x2="{xt:.1}" y2="{}" stroke="{col}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#,
            top - 8.0,
            top + plot_h - gap
        );
        let (anchor, dx) = if xt < left + pw * 0.75 {
            ("start", 4.0)
        } else {
            ("end", -4.0)
        };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="{anchor}" fill="{col}">{}</text>"#,
            xt + dx,
            top - 10.0 - 12.0 * row as f64,
            esc(label)
        );
    };
    vline(d.fault, &d.fault_label, "#000", "5,3", 0);
    for (k, (t, label)) in d.marks.iter().enumerate() {
        let row = if (x(*t) - x(d.fault)).abs() < 160.0 {
            k + 1
        } else {
            0
        };
        vline(*t, label, "#555", "2,3", row);
    }
    let ya = top + plot_h + 22.0;
    let _ = writeln!(
        s,
        r##"<line x1="{left}" y1="{ya}" x2="{}" y2="{ya}" stroke="#000"/>"##,
        left + pw
    );
    let step = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0]
        .into_iter()
        .find(|st| (t1 - t0) / st <= 12.0)
        .unwrap_or(60.0);
    let mut k = ((t0 - d.fault) / step) as i64 - 1;
    loop {
        let tv = d.fault + k as f64 * step;
        k += 1;
        if tv < t0 - 1e-9 {
            continue;
        }
        if tv > t1 + 1e-9 {
            break;
        }
        let xt = x(tv);
        let _ = writeln!(
            s,
            r##"<line x1="{xt:.1}" y1="{ya}" x2="{xt:.1}" y2="{}" stroke="#000"/>"##,
            ya + 5.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{xt:.1}" y="{}" text-anchor="middle">{} s</text>"#,
            ya + 18.0,
            tick(tv - d.fault)
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{}" fill="#444">time since the fault; one mark per probe (node_5 pings the VIP every {:.0} ms) at the time it was sent,</text>"##,
        ya + 38.0,
        spacing * 1000.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{}" fill="#444">in the row of the holder that answered it (each holder answers with its own TTL)</text>"##,
        ya + 53.0
    );
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawing() -> Drawing {
        Drawing {
            fault: 100.5,
            title: "meshd: SIGKILL <node_2>".into(),
            subtitle: "sub".into(),
            fault_label: "SIGKILL node_2".into(),
            marks: vec![(101.0, "node_3 adds the VIP".into())],
            ttl_base: 40,
            holders: vec![2, 3, 4],
            before: 0.5,
            after: 2.0,
        }
    }

    fn log() -> ProbeLog {
        // Answers every 10 ms from node_2 until 100.5, none until 100.8, then node_3.
        let mut text = String::new();
        for s in 1..=300u64 {
            let ts = 100.0 + s as f64 * 0.01;
            if (100.5..100.8).contains(&ts) {
                text += &format!("no answer yet for icmp_seq={s}\n");
                continue;
            }
            let ttl = if ts < 100.5 { 42 } else { 43 };
            text += &format!(
                "[{ts:.6}] 64 bytes from 10.1.1.10: icmp_seq={s} ttl={ttl} time=0.300 ms\n"
            );
        }
        ProbeLog::parse(&text)
    }

    #[test]
    fn draws_the_outage_the_rows_and_the_marks() {
        let svg = draw(&log(), &drawing()).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\""));
        assert!(svg.ends_with("</svg>\n"));
        assert!(
            svg.contains("meshd: SIGKILL &lt;node_2&gt;"),
            "titles are escaped"
        );
        assert!(svg.contains(">node_2 answered</text>") && svg.contains(">no answer</text>"));
        // 100.49 .. 100.80 minus one spacing: 300 ms, 30 probes lost.
        assert!(svg.contains("outage 300 ms (30 probes lost)"), "{svg}");
        assert!(
            svg.contains(">SIGKILL node_2</text>") && svg.contains(">node_3 adds the VIP</text>")
        );
        assert!(
            svg.contains(">+0.5 s</text>")
                && svg.contains(">0 s</text>")
                && svg.contains(">-0.25 s</text>")
        );
        // node_2's colour before the fault, node_3's after, red in between.
        assert!(
            svg.contains(r##"fill="#1f77b4"/>"##)
                && svg.contains(r##"fill="#ff7f0e"/>"##)
                && svg.contains(r##"fill="#d62728"/>"##)
        );
    }

    #[test]
    fn without_loss_it_says_so() {
        let text: String = (1..=100)
            .map(|s| {
                format!(
                    "[{:.6}] 64 bytes from 10.1.1.10: icmp_seq={s} ttl=42 time=0.3 ms\n",
                    100.0 + s as f64 * 0.01
                )
            })
            .collect();
        let svg = draw(&ProbeLog::parse(&text), &drawing()).unwrap();
        assert!(svg.contains("no probe lost"));
        assert!(draw(&ProbeLog::parse(""), &drawing()).is_none());
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick(0.5), "+0.5");
        assert_eq!(tick(1.0), "+1");
        assert_eq!(tick(-0.25), "-0.25");
        assert_eq!(tick(1e-12), "0");
    }
}
