//! `meshd top`: tinc's top — every node's traffic, redrawn every second on the terminal from
//! `dump nodes`. Keys as tinc's: `n` sort by name, `i`/`I` by incoming packets/bytes, `o`/`O`
//! outgoing, `t`/`T` total, `c` cumulative or per second, `b`/`k`/`M`/`G` byte units, `q` quit.

use super::daemon::ask;
use crate::config::NetDir;
use crate::control::{Request, Response};
use crate::node::status::NodeStatus;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// What the table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Name,
    InPackets,
    InBytes,
    OutPackets,
    OutBytes,
    TotalPackets,
    TotalBytes,
}

/// The view's settings, changed by keys.
#[derive(Debug, Clone, Copy)]
struct View {
    sort: SortBy,
    cumulative: bool,
    /// Bytes are divided by this (1, 1e3, 1e6, 1e9) and shown with its unit.
    unit: (f64, &'static str),
}

impl Default for View {
    fn default() -> View {
        View {
            sort: SortBy::Name,
            cumulative: false,
            unit: (1.0, "bytes"),
        }
    }
}

impl View {
    /// Applies a key; false for `q`.
    fn key(&mut self, k: u8) -> bool {
        match k {
            b'q' | b'Q' => return false,
            b'n' => self.sort = SortBy::Name,
            b'i' => self.sort = SortBy::InPackets,
            b'I' => self.sort = SortBy::InBytes,
            b'o' => self.sort = SortBy::OutPackets,
            b'O' => self.sort = SortBy::OutBytes,
            b't' => self.sort = SortBy::TotalPackets,
            b'T' => self.sort = SortBy::TotalBytes,
            b'c' => self.cumulative = !self.cumulative,
            b'b' => self.unit = (1.0, "bytes"),
            b'k' => self.unit = (1e3, "kbyte"),
            b'M' => self.unit = (1e6, "Mbyte"),
            b'G' => self.unit = (1e9, "Gbyte"),
            _ => {}
        }
        true
    }
}

/// One row: a node's counters, as totals or per second.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    name: String,
    in_packets: f64,
    in_bytes: f64,
    out_packets: f64,
    out_bytes: f64,
}

/// The rows from two samples `secs` apart (`before` empty or `cumulative`: the totals).
fn rows(
    now: &[NodeStatus],
    before: &BTreeMap<String, [u64; 4]>,
    secs: f64,
    view: &View,
) -> Vec<Row> {
    let mut out: Vec<Row> = now
        .iter()
        .map(|n| {
            let c = [n.rx_packets, n.rx_bytes, n.tx_packets, n.tx_bytes];
            let v = match before.get(&n.name) {
                Some(b) if !view.cumulative && secs > 0.0 => {
                    let d = |i: usize| c[i].saturating_sub(b[i]) as f64 / secs;
                    [d(0), d(1), d(2), d(3)]
                }
                _ if !view.cumulative => [0.0; 4],
                _ => c.map(|x| x as f64),
            };
            Row {
                name: n.name.clone(),
                in_packets: v[0],
                in_bytes: v[1],
                out_packets: v[2],
                out_bytes: v[3],
            }
        })
        .collect();
    let key = |r: &Row| match view.sort {
        SortBy::Name => 0.0,
        SortBy::InPackets => r.in_packets,
        SortBy::InBytes => r.in_bytes,
        SortBy::OutPackets => r.out_packets,
        SortBy::OutBytes => r.out_bytes,
        SortBy::TotalPackets => r.in_packets + r.out_packets,
        SortBy::TotalBytes => r.in_bytes + r.out_bytes,
    };
    out.sort_by(|a, b| {
        key(b)
            .partial_cmp(&key(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.name.cmp(&b.name))
    });
    out
}

/// The screen's text.
fn render(title: &str, rows: &[Row], view: &View) -> String {
    let (div, unit) = view.unit;
    let mut s = format!(
        "{title}  {}\n\n{:<20} {:>12} {:>14} {:>12} {:>14}\n",
        if view.cumulative {
            "cumulative"
        } else {
            "per second"
        },
        "Node",
        "IN pkts",
        format!("IN {unit}"),
        "OUT pkts",
        format!("OUT {unit}"),
    );
    for r in rows {
        s.push_str(&format!(
            "{:<20} {:>12.0} {:>14.0} {:>12.0} {:>14.0}\n",
            r.name,
            r.in_packets,
            r.in_bytes / div,
            r.out_packets,
            r.out_bytes / div
        ));
    }
    s.push_str("\nkeys: n i I o O t T sort, c cumulative, b k M G units, q quit\n");
    s
}

/// The terminal in non-canonical, no-echo mode until dropped.
struct RawTerminal {
    fd: i32,
    saved: libc::termios,
}

impl RawTerminal {
    fn new(fd: i32) -> Result<RawTerminal> {
        // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            bail!(
                "cannot read the terminal's mode: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 0;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: `raw` is a valid termios copied from the terminal's own.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            bail!(
                "cannot set the terminal's mode: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(RawTerminal { fd, saved })
    }

    /// Waits up to `timeout` for a key.
    fn key(&self, timeout: Duration) -> Option<u8> {
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
        if n <= 0 {
            return None;
        }
        let mut b = 0u8;
        // SAFETY: reads at most one byte into `b`.
        let r = unsafe { libc::read(self.fd, (&mut b as *mut u8).cast(), 1) };
        (r == 1).then_some(b)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the mode read in `new`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// `meshd top`.
pub fn top(netdir: &NetDir) -> Result<i32> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        eprintln!(
            "meshd top needs a terminal (it redraws the screen every second); \
             meshd dump nodes prints the same counters once"
        );
        return Ok(1);
    }
    let term = RawTerminal::new(std::io::stdin().as_raw_fd())?;
    let title = format!("meshd top: {}", netdir.root.display());
    let mut view = View::default();
    let mut before: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let mut last = Instant::now();
    let mut out = std::io::stdout();
    loop {
        let nodes = match ask(netdir, &Request::DumpNodes) {
            Ok(Response::Nodes { nodes }) => nodes,
            Ok(other) => bail!("unexpected answer: {other:?}"),
            Err(err) => {
                drop(term);
                eprintln!("{err}");
                return Ok(1);
            }
        };
        let now = Instant::now();
        let table = rows(&nodes, &before, (now - last).as_secs_f64(), &view);
        // Home, clear, draw.
        let _ = write!(out, "\x1b[H\x1b[2J{}", render(&title, &table, &view));
        let _ = out.flush();
        before = nodes
            .iter()
            .map(|n| {
                let c = [n.rx_packets, n.rx_bytes, n.tx_packets, n.tx_bytes];
                (n.name.clone(), c)
            })
            .collect();
        last = now;
        let deadline = now + Duration::from_secs(1);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match term.key(left) {
                Some(k) if !view.key(k) => {
                    let _ = writeln!(out);
                    return Ok(0);
                }
                Some(_) => break,
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, rx: u64, tx: u64) -> NodeStatus {
        NodeStatus {
            name: name.to_string(),
            rx_packets: rx,
            rx_bytes: rx * 100,
            tx_packets: tx,
            tx_bytes: tx * 100,
            ..NodeStatus::default()
        }
    }

    #[test]
    fn rates_sorting_and_units() {
        let before: BTreeMap<String, [u64; 4]> = [
            ("a".to_string(), [10, 1000, 0, 0]),
            ("b".to_string(), [0, 0, 0, 0]),
        ]
        .into();
        let now = [node("a", 30, 0), node("b", 10, 50)];
        let mut view = View::default();
        let r = rows(&now, &before, 2.0, &view);
        assert_eq!(r[0].name, "a");
        assert_eq!(r[0].in_packets, 10.0);
        assert_eq!(r[0].in_bytes, 1000.0);
        assert!(view.key(b'O'));
        let r = rows(&now, &before, 2.0, &view);
        assert_eq!(r[0].name, "b");
        assert_eq!(r[0].out_packets, 25.0);
        assert!(view.key(b'c'));
        let r = rows(&now, &before, 2.0, &view);
        assert_eq!(r[0].out_bytes, 5000.0);
        assert!(view.key(b'k'));
        let text = render("t", &r, &view);
        assert!(
            text.contains("cumulative") && text.contains("OUT kbyte"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("b ") && l.ends_with(" 5")),
            "{text}"
        );
        assert!(!view.key(b'q'));
    }
}
