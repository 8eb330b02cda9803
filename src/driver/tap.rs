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
//!
//! [`Tap::open_offload`] opens it with `IFF_VNET_HDR` and turns on checksum
//! and TCP segmentation offload: reads and writes then carry a
//! `virtio_net_hdr` first, and the kernel exchanges 64 KiB TCP frames with
//! the daemon (see [`super::offload`]).

use anyhow::{bail, Context, Result};
use socket2::{Domain, Socket, Type};
use std::io;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const MAX_INTERFACE_NAME: usize = libc::IFNAMSIZ - 1;

/// `TUNSETIFF` (linux/if_tun.h): `_IOW('T', 202, int)`.
const TUNSETIFF: libc::Ioctl = 0x4004_54ca;
/// `TUNSETOFFLOAD`: `_IOW('T', 208, unsigned int)`.
const TUNSETOFFLOAD: libc::Ioctl = 0x4004_54d0;
/// Offloads asked for: checksum, TSO for IPv4 and IPv6, TSO with ECN.
const TUN_OFFLOADS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08;

/// An open TAP interface, ready for the tokio loop.
///
/// Frames read and written are whole Ethernet frames (destination MAC first,
/// no FCS), behind a `virtio_net_hdr` when [`Tap::vnet_hdr`] says so.
/// Dropping the value removes the interface.
#[derive(Debug)]
pub struct Tap {
    fd: AsyncFd<OwnedFd>,
    name: String,
    mtu: u32,
    vnet_hdr: bool,
}

impl Tap {
    /// Creates the TAP interface `name` (tinc's `Interface`; at most 15 bytes,
    /// no `/`, `:` or whitespace; empty lets the kernel choose `tapN`), makes
    /// it non-blocking, sets its MTU to `mtu` and registers it with the
    /// current tokio runtime. The link is left down.
    ///
    /// Must be called from within a tokio runtime with IO enabled.
    pub fn open(name: &str, mtu: u32) -> Result<Tap> {
        Tap::open_with(name, mtu, false)
    }

    /// Like [`Tap::open`], with a `virtio_net_hdr` before every frame and
    /// checksum and TCP segmentation offload on (falls back to plain frames
    /// if the kernel refuses the header).
    pub fn open_offload(name: &str, mtu: u32) -> Result<Tap> {
        Tap::open_with(name, mtu, true)
    }

    fn open_with(name: &str, mtu: u32, offload: bool) -> Result<Tap> {
        validate_name(name)?;
        let context = || {
            format!(
                "cannot create the TAP interface {name:?} via /dev/net/tun (root or CAP_NET_ADMIN is needed; is the name used by another device?)"
            )
        };
        let (fd, name, vnet_hdr) = match create(name, offload) {
            Ok(r) => r,
            Err(_) if offload => create(name, false).with_context(context)?,
            Err(e) => return Err(e).with_context(context),
        };
        if vnet_hdr {
            // SAFETY: an ioctl taking an unsigned long by value on our descriptor.
            if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD, TUN_OFFLOADS) } < 0 {
                tracing::debug!(err = %io::Error::last_os_error(), "TAP offloads refused; frames stay MTU-sized");
            }
        }
        let mtu_c = libc::c_int::try_from(mtu)
            .map_err(|_| anyhow::anyhow!("MTU {mtu} for interface {name} is out of range"))?;
        let mut ifr = ifreq(&name)?;
        ifr.ifr_ifru.ifru_mtu = mtu_c;
        if_ioctl(libc::SIOCSIFMTU, &mut ifr)
            .with_context(|| format!("cannot set the MTU of interface {name} to {mtu}"))?;
        // SAFETY: the `OwnedFd` is moved into the `AsyncFd`, which owns the
        // descriptor from registration until it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(io::Error::from)
            .with_context(|| format!("cannot register the TAP interface {name} with tokio"))?;
        Ok(Tap {
            fd,
            name,
            mtu,
            vnet_hdr,
        })
    }

    /// Whether every read and write carries a `virtio_net_hdr` first.
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
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
            match guard.try_io(|fd| read_fd(fd.as_raw_fd(), buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// Takes a frame if one is queued; `None` when there is none.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match read_fd(self.fd.as_raw_fd(), buf) {
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
        if self.vnet_hdr {
            let hdr = [0u8; super::offload::VNET_HDR_LEN];
            return self.try_send_vectored(&[IoSlice::new(&hdr), IoSlice::new(frame)]);
        }
        self.try_send_vectored(&[IoSlice::new(frame)])
    }

    /// Writes one frame given in pieces (with its `virtio_net_hdr` first when
    /// [`Tap::vnet_hdr`]), without waiting; as [`Tap::try_send`].
    pub fn try_send_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<bool> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let iovcnt = libc::c_int::try_from(parts.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: IoSlice is ABI-compatible with iovec; the slices live for the call.
        let rc = unsafe { libc::writev(self.fd.as_raw_fd(), parts.as_ptr().cast(), iovcnt) };
        let res = if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc as usize)
        };
        match res {
            Ok(n) if n == len => Ok(true),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "short write to TAP interface {}: {n} of {} bytes",
                    self.name, len
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

/// Opens /dev/net/tun and attaches it to TAP `name` (with `IFF_VNET_HDR` if
/// asked): the descriptor, close-on-exec and non-blocking, and the name the
/// kernel gave.
fn create(name: &str, vnet_hdr: bool) -> io::Result<(OwnedFd, String, bool)> {
    // SAFETY: a NUL-terminated path literal; the result is checked.
    let raw = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut ifr =
        ifreq(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
    if vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    ifr.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF takes a pointer to an ifreq that lives for the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut ifr as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let name: String = ifr
        .ifr_name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8 as char)
        .collect();
    Ok((fd, name, vnet_hdr))
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length for the call.
    let rc = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}

/// Refuses names Linux would refuse or would silently truncate.
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

    /// Whether TAP tests can run here; prints why not. With
    /// `MESHD_REQUIRE_NETNS=1` (CI, which is root) a test that cannot run
    /// fails instead of skipping.
    fn can_run() -> bool {
        let why = if !nix::unistd::geteuid().is_root() {
            "TAP tests need root"
        } else if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .is_err()
        {
            "/dev/net/tun cannot be opened"
        } else {
            return true;
        };
        assert!(
            std::env::var_os("MESHD_REQUIRE_NETNS").is_none_or(|v| v != "1"),
            "{why}, and MESHD_REQUIRE_NETNS=1 forbids skipping"
        );
        eprintln!("SKIPPED: {why}");
        false
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
