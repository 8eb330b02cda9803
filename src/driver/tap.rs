//! The TAP device: a non-blocking Linux tun/tap interface in TAP mode (no
//! packet information header) registered with tokio, so that the
//! current-thread runtime never blocks on it.
//!
//! Like tincd, meshd sets the MTU but never sets the link up nor assigns
//! addresses: `tinc-up` does that. The device is not persistent: it disappears
//! when the [`Tap`] is dropped (the kernel removes it when its last file
//! descriptor closes), so cleanup on exit, even on an error path, is automatic.
//! The descriptor is opened close-on-exec, so scripts never inherit it and
//! cannot keep the device alive.

use anyhow::{bail, Context, Result};
use socket2::{Domain, Socket, Type};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_INTERFACE_NAME: usize = libc::IFNAMSIZ - 1;

/// An open TAP interface, ready for the tokio loop.
///
/// Frames read and written are whole Ethernet frames (destination MAC first,
/// no FCS). Dropping the value removes the interface.
#[derive(Debug)]
pub struct Tap {
    fd: AsyncFd<tun_tap::Iface>,
    name: String,
    mtu: u32,
}

impl Tap {
    /// Creates the TAP interface `name` (tinc's `Interface`; at most 15 bytes,
    /// no `/`, `:` or whitespace; empty lets the kernel choose `tapN`), makes
    /// it non-blocking, sets its MTU to `mtu` and registers it with the
    /// current tokio runtime. The link is left down.
    ///
    /// Must be called from within a tokio runtime with IO enabled.
    pub fn open(name: &str, mtu: u32) -> Result<Tap> {
        validate_name(name)?;
        let iface = tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tap)
            .with_context(|| {
                format!(
                    "cannot create the TAP interface {name:?} via /dev/net/tun (root or CAP_NET_ADMIN is needed; is the name used by another device?)"
                )
            })?;
        let name = iface.name().to_string();
        set_nonblocking(iface.as_raw_fd())
            .with_context(|| format!("cannot make the TAP interface {name} non-blocking"))?;
        let mtu_c = libc::c_int::try_from(mtu)
            .map_err(|_| anyhow::anyhow!("MTU {mtu} for interface {name} is out of range"))?;
        let mut ifr = ifreq(&name)?;
        ifr.ifr_ifru.ifru_mtu = mtu_c;
        if_ioctl(libc::SIOCSIFMTU, &mut ifr)
            .with_context(|| format!("cannot set the MTU of interface {name} to {mtu}"))?;
        // SAFETY: `Iface` owns its `File`; the descriptor stays open and the same
        // for as long as the `AsyncFd` owns it (the `Iface` is never taken out).
        let fd = unsafe { AsyncFd::register_with_interest(iface, Interest::READABLE) }
            .map_err(io::Error::from)
            .with_context(|| format!("cannot register the TAP interface {name} with tokio"))?;
        Ok(Tap { fd, name, mtu })
    }

    /// The interface name the kernel actually gave (exported to scripts as
    /// `INTERFACE`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MTU set by [`Tap::open`] (a script may change it later; this value
    /// does not follow).
    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    /// The interface's current MAC address, read from the kernel
    /// (SIOCGIFHWADDR), so a MAC set by `tinc-up` is seen.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut ifr = ifreq(&self.name)?;
        if_ioctl(libc::SIOCGIFHWADDR, &mut ifr)
            .with_context(|| format!("cannot read the MAC address of interface {}", self.name))?;
        // SAFETY: SIOCGIFHWADDR succeeded, so the kernel filled `ifru_hwaddr`.
        let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *m = *b as u8;
        }
        Ok(mac)
    }

    /// Waits for a frame and copies it into `buf` (size it to MTU + 18 at
    /// least, or longer frames are truncated). Cancel-safe: if the future is
    /// dropped before it completes, no frame is lost.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().recv(buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Takes a frame if one is queued; `None` when there is none.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.fd.get_ref().recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes one frame without waiting. Returns `false` if the device would
    /// block (the caller counts a drop instead of stalling the loop).
    ///
    /// Linux refuses writes while the link is down with `EIO`; that error is
    /// returned as is (the caller should count it as a drop too).
    pub fn try_send(&self, frame: &[u8]) -> io::Result<bool> {
        match self.fd.get_ref().send(frame) {
            Ok(n) if n == frame.len() => Ok(true),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "short write to TAP interface {}: {n} of {} bytes",
                    self.name,
                    frame.len()
                ),
            )),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Refuses names Linux would refuse or that tun-tap would silently truncate.
fn validate_name(name: &str) -> Result<()> {
    if name.len() > MAX_INTERFACE_NAME {
        bail!(
            "Interface = {name}: the interface name is {} bytes long, Linux allows at most {MAX_INTERFACE_NAME}",
            name.len()
        );
    }
    if name == "." || name == ".." {
        bail!("Interface = {name}: not a valid interface name");
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || *c == '\0' || c.is_whitespace())
    {
        bail!("Interface = {name}: the interface name may not contain {c:?}");
    }
    Ok(())
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain fcntl calls on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A zeroed `ifreq` carrying `name`.
fn ifreq(name: &str) -> Result<libc::ifreq> {
    validate_name(name)?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(ifr)
}

/// Runs an interface ioctl on a throwaway AF_INET datagram socket.
fn if_ioctl(request: libc::Ioctl, ifr: &mut libc::ifreq) -> io::Result<()> {
    let sock = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    // SAFETY: `ifr` is a valid, NUL-terminated ifreq that lives for the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request, ifr as *mut libc::ifreq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads an interface's MTU from the kernel (SIOCGIFMTU).
pub fn read_mtu(name: &str) -> Result<u32> {
    let mut ifr = ifreq(name)?;
    if_ioctl(libc::SIOCGIFMTU, &mut ifr)
        .with_context(|| format!("cannot read the MTU of interface {name}"))?;
    // SAFETY: SIOCGIFMTU succeeded, so the kernel filled `ifru_mtu`.
    let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).with_context(|| format!("interface {name} reports MTU {mtu}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    /// Whether TAP tests can run here; prints why not.
    fn can_run() -> bool {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: TAP tests need root");
            return false;
        }
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .is_err()
        {
            eprintln!("SKIPPED: /dev/net/tun cannot be opened");
            return false;
        }
        true
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// Whether the interface went away within two seconds (a child process
    /// forked by a parallel test may hold the descriptor until its exec).
    fn gone(name: &str) -> bool {
        let path = format!("/sys/class/net/{name}");
        for _ in 0..200 {
            if !Path::new(&path).exists() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn ip(args: &[&str]) {
        let status = Command::new("ip").args(args).status().expect("run ip");
        assert!(status.success(), "ip {args:?} failed");
    }

    #[test]
    fn refuses_long_and_bad_names() {
        let err = validate_name("abcdefghijklmnop").unwrap_err().to_string();
        assert!(err.contains("Interface"), "{err}");
        assert!(err.contains("15"), "{err}");
        assert!(validate_name("abcdefghijklmno").is_ok());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("a:b").is_err());
    }

    #[test]
    fn open_mtu_mac_send_drop() {
        if !can_run() {
            return;
        }
        let rt = rt();
        let name = format!("mdtst{}a", std::process::id());
        rt.block_on(async {
            let tap = Tap::open(&name, 1379).expect("open tap");
            assert_eq!(tap.name(), name);
            assert_eq!(tap.mtu(), 1379);
            assert_eq!(read_mtu(&name).expect("read mtu"), 1379);
            let sys =
                std::fs::read_to_string(format!("/sys/class/net/{name}/mtu")).expect("sysfs mtu");
            assert_eq!(sys.trim(), "1379");
            let mac = tap.mac().expect("mac");
            assert_ne!(mac, [0u8; 6]);
            let flags = std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
                .expect("sysfs flags");
            let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
                .expect("flags parse");
            assert_eq!(flags & libc::IFF_UP as u32, 0, "the link must stay down");
            let mut buf = vec![0u8; 2048];
            assert_eq!(tap.try_recv(&mut buf).expect("try_recv"), None);
            // A broadcast frame of a made-up ethertype.
            let mut frame = vec![0xffu8; 6];
            frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]);
            frame.extend_from_slice(&[0u8; 50]);
            // Linux refuses frames while the link is down.
            let down = tap.try_send(&frame).expect_err("write to a down link");
            assert_eq!(down.raw_os_error(), Some(libc::EIO));
            ip(&["link", "set", &name, "up"]);
            assert!(tap.try_send(&frame).expect("try_send"));
            drop(tap);
        });
        assert!(gone(&name), "interface survived the drop");
    }

    #[test]
    fn receives_arp_request() {
        if !can_run() {
            return;
        }
        let rt = rt();
        let pid = std::process::id();
        let name = format!("mdtst{pid}b");
        let x = pid % 250 + 1;
        let ours = format!("10.254.{x}.1/24");
        let target = format!("10.254.{x}.2");
        rt.block_on(async {
            let tap = Tap::open(&name, 1400).expect("open tap");
            ip(&["addr", "add", &ours, "dev", &name]);
            ip(&["link", "set", &name, "up"]);
            // Any IPv4 packet to a neighbour on the subnet makes the kernel ask
            // for its MAC first.
            let udp = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
            udp.send_to(b"hello", format!("{target}:9"))
                .expect("send to the unanswered neighbour");
            let mut buf = vec![0u8; 2048];
            let found = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let n = tap.recv(&mut buf).await.expect("recv");
                    // IPv6 router solicitations etc. may come first.
                    if n >= 42 && buf[12..14] == [0x08, 0x06] {
                        return buf[..n].to_vec();
                    }
                }
            })
            .await;
            let frame = found.expect("no ARP request within 5 s");
            assert_eq!(&frame[..6], &[0xff; 6], "ARP request is broadcast");
            assert_eq!(&frame[20..22], &[0, 1], "ARP opcode request");
            let target_ip: Vec<u8> = target
                .split('.')
                .map(|o| o.parse::<u8>().expect("octet"))
                .collect();
            assert_eq!(&frame[38..42], &target_ip[..]);
            assert_eq!(&frame[6..12], &tap.mac().expect("mac"));
            drop(tap);
        });
        assert!(gone(&name), "interface survived the drop");
    }
}
