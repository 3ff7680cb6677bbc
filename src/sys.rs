//! The only module with `unsafe`: socket creation with our options (rustix), UDP
//! send/receive with IP_PKTINFO/IPV6_PKTINFO (libc, which rustix does not cover), the
//! binary's global allocator (`alloc`), and `memcpy`/`memmove` for the static x86_64 build
//! (`mem`). Does IO.
#![allow(unsafe_code)]

pub mod alloc;
pub mod mem;

use std::io;
use std::mem::{size_of, zeroed};
use std::net::UdpSocket;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, TcpStream,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};

fn family(addr: &SocketAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    }
}

/// A non-blocking, close-on-exec socket of `kind` for `addr`'s family.
fn socket_for(addr: &SocketAddr, kind: SocketType) -> io::Result<std::os::fd::OwnedFd> {
    Ok(rustix::net::socket_with(
        family(addr),
        kind,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?)
}

/// Whether TCP listeners are bound with SO_REUSEPORT: each worker thread binds its own
/// socket to every TCP address and the kernel spreads new connections over them.
static SHARE_TCP_PORTS: AtomicBool = AtomicBool::new(false);

/// Bind TCP listeners with SO_REUSEPORT from now on (set once, before any is bound, when
/// there are several workers).
pub fn share_tcp_ports(on: bool) {
    SHARE_TCP_PORTS.store(on, Ordering::Relaxed);
}

/// A non-blocking TCP listener on `addr` with SO_REUSEADDR, IPV6_V6ONLY for IPv6 (so `0.0.0.0`
/// and `[::]` on one port can coexist), SO_REUSEPORT with several workers, TCP_NODELAY for
/// the connections it accepts, and the given accept backlog.
///
/// # Errors
/// The socket, bind or listen call failed (address in use, not local, permission).
pub fn bind_tcp(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let fd = socket_for(&addr, SocketType::STREAM)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if SHARE_TCP_PORTS.load(Ordering::Relaxed) {
        sockopt::set_socket_reuseport(&fd, true)?;
    }
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    // Accepted sockets inherit it (Linux copies the listener's options to each connection),
    // which saves a setsockopt(2) per connection: proxied bytes are never held back for
    // Nagle's algorithm.
    sockopt::set_tcp_nodelay(&fd, true)?;
    rustix::net::bind(&fd, &addr)?;
    rustix::net::listen(&fd, backlog_arg(backlog))?;
    Ok(TcpListener::from(fd))
}

/// Accept one connection from a listening socket, itself non-blocking and close-on-exec
/// from the start (accept4(2) with both flags: no fcntl or ioctl afterwards).
///
/// # Errors
/// As accept(2), `WouldBlock` included; a peer address that is not IP (then the connection
/// is closed).
pub fn accept_nonblocking(listener: &impl AsFd) -> io::Result<(TcpStream, SocketAddr)> {
    let (fd, from) =
        rustix::net::acceptfrom_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
    let peer = from
        .and_then(|a| SocketAddr::try_from(a).ok())
        .ok_or_else(|| io::Error::other("accepted a connection with no IP peer address"))?;
    Ok((TcpStream::from(fd), peer))
}

/// A non-blocking, close-on-exec TCP socket with TCP_NODELAY (proxied bytes are never held
/// back for Nagle's algorithm) and a connection to `addr` under way: the caller waits until
/// it is writable and then learns whether it was made.
///
/// # Errors
/// As socket(2) and connect(2), except "in progress".
pub fn connect_nonblocking(addr: SocketAddr) -> io::Result<TcpStream> {
    let fd = socket_for(&addr, SocketType::STREAM)?;
    sockopt::set_tcp_nodelay(&fd, true)?;
    match rustix::net::connect(&fd, &addr) {
        // (Interrupted: the connection is still made in the background, as with EINPROGRESS.)
        Ok(()) | Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::INTR) => {
            Ok(TcpStream::from(fd))
        }
        Err(e) => Err(e.into()),
    }
}

/// Change the accept backlog of a listening socket in place (Linux accepts a second listen()).
///
/// # Errors
/// The listen call failed.
pub fn set_backlog(listener: &impl AsFd, backlog: u32) -> io::Result<()> {
    rustix::net::listen(listener, backlog_arg(backlog))?;
    Ok(())
}

/// Stop a listening socket from taking new connections right now, even while other
/// references to it are still being dropped: on Linux, shutdown(2) on a listener closes its
/// accept queue, so new connection attempts are refused at once.
///
/// # Errors
/// The shutdown call failed.
pub fn stop_listening(listener: &impl AsFd) -> io::Result<()> {
    rustix::net::shutdown(listener, rustix::net::Shutdown::Read)?;
    Ok(())
}

/// What a splice pipe holds when it may be enlarged: 64 pages, four times Linux's default.
/// Each splice then moves up to four times as much, and a bulk transfer costs about a tenth
/// less CPU per GB (bench/PROFILE.md).
pub const PIPE_SIZE: usize = 256 * 1024;

/// Pipes of [`PIPE_SIZE`] the process holds now.
static BIG_PIPES: AtomicUsize = AtomicUsize::new(0);

/// A non-blocking pipe for moving socket bytes with splice(2).
pub struct SplicePipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    /// The count this pipe is in while it is of [`PIPE_SIZE`].
    big: Option<&'static AtomicUsize>,
}

impl Drop for SplicePipe {
    fn drop(&mut self) {
        if let Some(count) = self.big {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Linux's default `pipe-user-pages-soft`: the pipe pages one user may hold before each new
/// pipe of theirs is made tiny (root is exempt).
const USER_PIPE_PAGES: usize = 16_384;

/// The share of the user's pipe pages sluice's large pipes may take: a quarter, the rest
/// left to the user's other pipes.
const PIPE_PAGES_SHARE: usize = 4;

/// How many pipes of [`PIPE_SIZE`] the process may hold at once. Linux counts each pipe's
/// capacity against its user for as long as the pipe exists, across all the user's
/// processes (`pipe-user-pages-soft`); sluice takes [`PIPE_PAGES_SHARE`] of it (64 pipes
/// by default).
fn big_pipe_budget() -> usize {
    static BUDGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        let soft = std::fs::read_to_string("/proc/sys/fs/pipe-user-pages-soft")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(USER_PIPE_PAGES);
        // Zero: no limit; still bounded (four times the default), as each pipe may pin its
        // pages while bytes pass.
        let pages = if soft == 0 { 4 * USER_PIPE_PAGES } else { soft };
        pages / PIPE_PAGES_SHARE / (PIPE_SIZE / 4096)
    })
}

/// A non-blocking pipe for splice(2): of [`PIPE_SIZE`] while the process holds fewer than
/// its budget of those (and the kernel agrees), of the kernel's default size otherwise.
///
/// # Errors
/// Out of file descriptors (the caller falls back to copying through a buffer).
pub fn splice_pipe() -> io::Result<SplicePipe> {
    make_pipe(&BIG_PIPES, big_pipe_budget())
}

fn make_pipe(count: &'static AtomicUsize, budget: usize) -> io::Result<SplicePipe> {
    use rustix::pipe::PipeFlags;
    let (read, write) = rustix::pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
    let mut pipe = SplicePipe {
        read,
        write,
        big: None,
    };
    if count.fetch_add(1, Ordering::Relaxed) < budget {
        match rustix::pipe::fcntl_setpipe_size(&pipe.write, PIPE_SIZE) {
            Ok(_) => pipe.big = Some(count),
            // Above the system's pipe-max-size, or the user's pipes are over their limit
            // already (other processes): the default size works, with more calls.
            Err(e) => {
                static SAID: AtomicBool = AtomicBool::new(false);
                if !SAID.swap(true, Ordering::Relaxed) {
                    log::warn!("splice pipes stay at the kernel's default size: {e}");
                }
            }
        }
    }
    if pipe.big.is_none() {
        count.fetch_sub(1, Ordering::Relaxed);
    }
    Ok(pipe)
}

/// Move up to `len` bytes from `from` to `to` inside the kernel (one of them is a pipe),
/// without blocking: `WouldBlock` when `from` has nothing or `to` has no room.
///
/// # Errors
/// As splice(2).
pub fn splice(from: &impl AsFd, to: &impl AsFd, len: usize) -> io::Result<usize> {
    use rustix::pipe::SpliceFlags;
    Ok(rustix::pipe::splice(
        from,
        None,
        to,
        None,
        len,
        SpliceFlags::MOVE | SpliceFlags::NONBLOCK,
    )?)
}

/// A descriptor set aside (a close-on-exec duplicate of `fd`), to be closed the moment its
/// number is needed for something else.
///
/// # Errors
/// Out of file descriptors.
pub fn set_aside(fd: &impl AsFd) -> io::Result<std::os::fd::OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 0)?)
}

/// Raise the soft limit on open descriptors to the hard limit: each relayed connection needs
/// two sockets and, while it moves data, two splice pipes. Returns the new soft limit.
///
/// # Errors
/// The limit could not be read or set (the process keeps its current limit).
pub fn raise_fd_limit() -> io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit)?;
    }
    Ok(limit.current.unwrap_or(u64::MAX))
}

fn backlog_arg(backlog: u32) -> i32 {
    i32::try_from(backlog).unwrap_or(i32::MAX)
}

/// A non-blocking UDP socket bound to `addr`. On a wildcard address, packet-info delivery is
/// switched on so [`recv_with_dst`] learns which local address each datagram was sent to.
///
/// # Errors
/// The socket, option or bind call failed.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let fd = socket_for(&addr, SocketType::DGRAM)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if addr.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    if addr.ip().is_unspecified() {
        let (level, name) = if addr.is_ipv4() {
            (libc::IPPROTO_IP, libc::IP_PKTINFO)
        } else {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
        };
        let on: libc::c_int = 1;
        // SAFETY: `fd` is an open socket; the option value points to a live c_int whose size
        // is passed alongside.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    rustix::net::bind(&fd, &addr)?;
    Ok(UdpSocket::from(fd))
}

/// Room for one IPv6 packet-info control message (the larger of the two).
const CMSG_ROOM: usize = 64;

/// Receive one datagram: its length, sender, and the local address it was sent to when the
/// socket has packet info switched on (wildcard binds), else `None`.
///
/// # Errors
/// As recvmsg(2); `WouldBlock` when nothing is queued.
pub fn recv_with_dst(
    sock: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<IpAddr>)> {
    // SAFETY: all-zero is a valid bit pattern for these plain C structs.
    let mut src: libc::sockaddr_storage = unsafe { zeroed() };
    let mut control = [0u64; CMSG_ROOM / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut src).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_ROOM as _;
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length for the
    // duration of the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let from = sockaddr_to_std(&src)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown sender family"))?;
    let mut dst = None;
    // SAFETY: the CMSG_* walkers stay inside msg_control/msg_controllen as set by the kernel.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_PKTINFO {
                let info: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                dst = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    info.ipi_addr.s_addr,
                ))));
            } else if c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok((n as usize, from, dst))
}

/// Send one datagram to `to`, leaving from local address `from` when given (the address the
/// client originally sent to, on a wildcard-bound socket).
///
/// # Errors
/// As sendmsg(2); `WouldBlock` when the socket buffer is full.
pub fn send_from(
    sock: &UdpSocket,
    buf: &[u8],
    to: SocketAddr,
    from: Option<IpAddr>,
) -> io::Result<usize> {
    let Some(from) = from else {
        return sock.send_to(buf, to);
    };
    let (mut dst, dst_len) = std_to_sockaddr(to);
    let mut control = [0u64; CMSG_ROOM / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid bit pattern for msghdr.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&raw mut dst).cast();
    msg.msg_namelen = dst_len;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: the control buffer holds CMSG_ROOM bytes, more than CMSG_SPACE of either
    // packet-info struct; the header and data are written inside it.
    unsafe {
        let (level, kind, len) = match from {
            IpAddr::V4(_) => (
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                size_of::<libc::in_pktinfo>(),
            ),
            IpAddr::V6(_) => (
                libc::IPPROTO_IPV6,
                libc::IPV6_PKTINFO,
                size_of::<libc::in6_pktinfo>(),
            ),
        };
        msg.msg_controllen = libc::CMSG_SPACE(len as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(len as u32) as _;
        match from {
            IpAddr::V4(ip) => {
                let mut info: libc::in_pktinfo = zeroed();
                info.ipi_spec_dst.s_addr = u32::from(ip).to_be();
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
            }
            IpAddr::V6(ip) => {
                let mut info: libc::in6_pktinfo = zeroed();
                info.ipi6_addr.s6_addr = ip.octets();
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
            }
        }
    }
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &raw const msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in; storage is larger.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read_unaligned((s as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6; storage is larger.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read_unaligned((s as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn std_to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut s: libc::sockaddr_storage = unsafe { zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: as above.
            let mut sin: libc::sockaddr_in = unsafe { zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            unsafe { std::ptr::write_unaligned((&raw mut s).cast(), sin) };
            (s, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let mut sin6: libc::sockaddr_in6 = unsafe { zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            // SAFETY: as above.
            unsafe { std::ptr::write_unaligned((&raw mut s).cast(), sin6) };
            (s, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_pipes_are_enlarged_within_the_budget_only() {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let size = |p: &SplicePipe| rustix::pipe::fcntl_getpipe_size(&p.read).unwrap();
        let first = make_pipe(&COUNT, 2).unwrap();
        let second = make_pipe(&COUNT, 2).unwrap();
        assert_eq!((size(&first), size(&second)), (PIPE_SIZE, PIPE_SIZE));
        let third = make_pipe(&COUNT, 2).unwrap();
        assert!(
            size(&third) < PIPE_SIZE,
            "over the budget: the default size"
        );
        assert_eq!(COUNT.load(Ordering::Relaxed), 2);
        drop(third);
        assert_eq!(
            COUNT.load(Ordering::Relaxed),
            2,
            "the small one was not counted"
        );
        drop(first);
        assert_eq!(COUNT.load(Ordering::Relaxed), 1);
        let fourth = make_pipe(&COUNT, 2).unwrap();
        assert_eq!(size(&fourth), PIPE_SIZE, "a closed big pipe makes room");
        drop((second, fourth));
        assert_eq!(COUNT.load(Ordering::Relaxed), 0);
        // The budget the process uses: what the default limit allows leaves room to spare.
        assert!((1..=4096).contains(&big_pipe_budget()));
    }

    #[test]
    fn sockaddr_round_trips() {
        for a in ["127.0.0.1:5353", "[::1]:443", "[fe80::1%2]:80"] {
            let a: SocketAddr = a.parse().unwrap();
            let (s, _) = std_to_sockaddr(a);
            assert_eq!(sockaddr_to_std(&s), Some(a));
        }
    }

    #[test]
    fn wildcard_udp_reports_destination_and_replies_from_it() {
        let server = bind_udp("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        // 127.0.0.2 is loopback too: the reply must come from it, not from 127.0.0.1.
        client.send_to(b"hi", ("127.0.0.2", port)).unwrap();
        server.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 16];
        let (n, from, dst) = loop {
            match recv_with_dst(&server, &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                r => break r.unwrap(),
            }
        };
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(dst, Some("127.0.0.2".parse().unwrap()));
        send_from(&server, b"yo", from, dst).unwrap();
        let (n, reply_from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"yo");
        assert_eq!(reply_from, SocketAddr::from(([127, 0, 0, 2], port)));
    }

    #[test]
    fn tcp_v4_and_v6_wildcards_share_a_port() {
        let v4 = bind_tcp("0.0.0.0:0".parse().unwrap(), 16).unwrap();
        let port = v4.local_addr().unwrap().port();
        if let Ok(v6) = bind_tcp(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)), 16) {
            assert_eq!(v6.local_addr().unwrap().port(), port);
        }
    }

    #[test]
    fn accepted_connections_inherit_nodelay_from_the_listener() {
        let listener = bind_tcp("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
