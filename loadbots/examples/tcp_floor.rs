//! The kernel's floor under the crowd benchmark: what the crowd scenario's
//! traffic costs a process that does nothing else with it.
//!
//! `serve` accepts connections and, ten times a second, writes one
//! delta-sized message to each; it answers every ping record with a pong.
//! `drive` opens that many connections and sends what a crowd bot sends:
//! an input ten times a second and a ping once a second per connection,
//! spread evenly over the period across connections. Neither side parses
//! anything; both run one `mio` poll loop on one thread. So their CPU time
//! is almost all the kernel's TCP work for that traffic: the least any
//! server and any load generator can spend on it on this machine.
//!
//!   taskset -c 0 tcp_floor serve 127.0.0.1:17990 --delta-bytes 250
//!   taskset -c 1 tcp_floor drive 127.0.0.1:17990 --conns 5000 --seconds 20
//!
//! `scripts/bench-floor` runs both for a list of counts.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// A client record: an input (tag `I`) or a ping (tag `P`, then the
/// driver's send time). Inputs of the crowd scenario are about this size on
/// the wire.
const RECORD: usize = 24;
/// A server message: a tag byte, a 16-bit little-endian payload length and
/// the payload (a delta's filler, or the ping record a pong echoes).
const HEADER: usize = 3;
const PERIOD: Duration = Duration::from_millis(100);
/// Pings go once every this many input periods.
const PINGS_EVERY: u64 = 10;
const LISTENER: Token = Token(usize::MAX);
/// The driver's schedule resolution.
const SLOTS: usize = 100;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let usage = "usage: tcp_floor serve ADDR [--delta-bytes B] [--report-every S] \
                 | tcp_floor drive ADDR --conns N [--warmup S] [--seconds S]";
    let (Some(mode), Some(addr)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    match mode.as_str() {
        "serve" => serve(
            addr,
            flag("--delta-bytes", 250) as usize,
            Duration::from_secs(flag("--report-every", 5)),
        ),
        "drive" => drive(
            addr,
            flag("--conns", 1000) as usize,
            Duration::from_secs(flag("--warmup", 5)),
            Duration::from_secs(flag("--seconds", 20)),
        ),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}

/// Messages both ways, for the per-second rates in a report.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    sent: u64,
    received: u64,
    /// Writes the kernel did not take whole (a full send buffer).
    short_writes: u64,
}

struct Peer {
    stream: TcpStream,
    /// The record being read and how much of it has arrived.
    record: [u8; RECORD],
    offset: usize,
}

fn serve(addr: SocketAddr, delta_bytes: usize, report_every: Duration) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut peers: HashMap<usize, Peer> = HashMap::new();
    let mut next_token = 0usize;
    let delta = framed(b'D', &vec![0; delta_bytes.saturating_sub(HEADER)]);
    let mut buf = [0u8; 4096];
    let mut counts = Counts::default();
    let mut next_tick = Instant::now() + PERIOD;
    let mut window = (Instant::now(), process_cpu(), counts);
    let mut window_conns = 0;
    loop {
        poll.poll(
            &mut events,
            Some(next_tick.saturating_duration_since(Instant::now())),
        )?;
        for event in &events {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    stream.set_nodelay(true)?;
                    let token = Token(next_token);
                    next_token += 1;
                    poll.registry()
                        .register(&mut stream, token, Interest::READABLE)?;
                    peers.insert(
                        token.0,
                        Peer {
                            stream,
                            record: [0; RECORD],
                            offset: 0,
                        },
                    );
                }
                continue;
            }
            let Some(peer) = peers.get_mut(&event.token().0) else {
                continue;
            };
            if !read_records(peer, &mut buf, &mut counts) {
                peers.remove(&event.token().0);
            }
        }
        if Instant::now() >= next_tick {
            next_tick += PERIOD;
            for peer in peers.values_mut() {
                write_counted(&mut peer.stream, &delta, &mut counts);
            }
        }
        // A window covers one connection count only: a report is of a
        // steady load, never of connecting.
        if peers.len() != window_conns {
            window_conns = peers.len();
            window = (Instant::now(), process_cpu(), counts);
        } else if window.0.elapsed() >= report_every {
            let now = (Instant::now(), process_cpu(), counts);
            report("serve", peers.len(), &window, &now);
            window = now;
        }
    }
}

/// Reads what `peer` sent and answers its pings; false once it is gone.
fn read_records(peer: &mut Peer, buf: &mut [u8], counts: &mut Counts) -> bool {
    loop {
        match peer.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                let drained = n < buf.len();
                for &byte in &buf[..n] {
                    peer.record[peer.offset] = byte;
                    peer.offset += 1;
                    if peer.offset == RECORD {
                        peer.offset = 0;
                        counts.received += 1;
                        if peer.record[0] == b'P' {
                            let pong = framed(b'O', &peer.record);
                            write_counted(&mut peer.stream, &pong, counts);
                        }
                    }
                }
                // A short read emptied the socket: the next arrival raises a
                // new event, so asking again would only cost a syscall that
                // says so (tokio skips it the same way).
                if drained {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

fn framed(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![tag];
    frame.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn write_counted(stream: &mut TcpStream, bytes: &[u8], counts: &mut Counts) {
    match stream.write(bytes) {
        Ok(n) if n == bytes.len() => counts.sent += 1,
        _ => counts.short_writes += 1,
    }
}

fn drive(
    addr: SocketAddr,
    conns: usize,
    warmup: Duration,
    seconds: Duration,
) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    let mut streams = Vec::with_capacity(conns);
    let mut inboxes: Vec<Vec<u8>> = vec![Vec::new(); conns];
    let mut rtt = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid");
    for i in 0..conns {
        let stream = std::net::TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(stream);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        streams.push(stream);
    }
    // Connection i sends in slot `spread(i)` of each period.
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(); SLOTS];
    for i in 0..conns {
        let phase = (i as f64 * 0.618_033_988_749_895).fract();
        slots[(phase * SLOTS as f64) as usize % SLOTS].push(i);
    }
    let slot_length = PERIOD / SLOTS as u32;
    let mut input = [b'I'; RECORD];
    let mut ping = [b'P'; RECORD];
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let mut counts = Counts::default();
    let start = Instant::now();
    let mut slot_index: u64 = 0;
    let mut window: Option<(Instant, (Duration, Duration), Counts)> = None;
    while start.elapsed() < warmup + seconds {
        let next_slot = start + slot_length * (slot_index as u32 + 1);
        poll.poll(
            &mut events,
            Some(next_slot.saturating_duration_since(Instant::now())),
        )?;
        let measuring = window.is_some();
        for event in &events {
            let i = event.token().0;
            loop {
                match streams[i].read(&mut buf) {
                    Ok(0) => return Err(ErrorKind::ConnectionReset.into()),
                    Ok(n) => {
                        inboxes[i].extend_from_slice(&buf[..n]);
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            take_frames(&mut inboxes[i], &mut counts, |sent_at| {
                if measuring {
                    let micros = start.elapsed().saturating_sub(sent_at).as_micros();
                    let _ = rtt.record(micros as u64);
                }
            });
        }
        while start + slot_length * (slot_index as u32 + 1) <= Instant::now() {
            let period = slot_index / SLOTS as u64;
            for &i in &slots[(slot_index % SLOTS as u64) as usize] {
                input[1] = period as u8;
                write_counted(&mut streams[i], &input, &mut counts);
                if (period + i as u64).is_multiple_of(PINGS_EVERY) {
                    let sent_at = start.elapsed().as_nanos() as u64;
                    ping[1..9].copy_from_slice(&sent_at.to_le_bytes());
                    write_counted(&mut streams[i], &ping, &mut counts);
                }
            }
            slot_index += 1;
        }
        if window.is_none() && start.elapsed() >= warmup {
            window = Some((Instant::now(), process_cpu(), counts));
        }
    }
    if let Some(window) = window {
        report(
            "drive",
            conns,
            &window,
            &(Instant::now(), process_cpu(), counts),
        );
        let ms = |q: f64| rtt.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "drive rtt_ms p50={:.2} p99={:.2} max={:.2} pongs={}",
            ms(0.5),
            ms(0.99),
            rtt.max() as f64 / 1000.0,
            rtt.len()
        );
    }
    Ok(())
}

/// Takes the whole frames off the front of `inbox`, counting them, and
/// hands `on_pong` the send time each pong among them carries.
fn take_frames(inbox: &mut Vec<u8>, counts: &mut Counts, mut on_pong: impl FnMut(Duration)) {
    let mut at = 0;
    while let Some(header) = inbox.get(at..at + HEADER) {
        let len = usize::from(u16::from_le_bytes([header[1], header[2]]));
        let Some(payload) = inbox.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        counts.received += 1;
        if header[0] == b'O'
            && let Some(sent_at) = payload.get(1..9)
        {
            let nanos = u64::from_le_bytes(sent_at.try_into().unwrap_or_default());
            on_pong(Duration::from_nanos(nanos));
        }
        at += HEADER + len;
    }
    inbox.drain(..at);
}

/// Prints CPU use (user and system, percent of one core) and message rates
/// between two samples.
fn report(
    side: &str,
    conns: usize,
    from: &(Instant, (Duration, Duration), Counts),
    to: &(Instant, (Duration, Duration), Counts),
) {
    let wall = to.0.duration_since(from.0).as_secs_f64();
    let percent = |a: Duration, b: Duration| 100.0 * b.saturating_sub(a).as_secs_f64() / wall;
    let rate = |a: u64, b: u64| (b - a) as f64 / wall;
    println!(
        "{side} conns={conns} user%={:.1} sys%={:.1} sent/s={:.0} received/s={:.0} short_writes={}",
        percent(from.1.0, to.1.0),
        percent(from.1.1, to.1.1),
        rate(from.2.sent, to.2.sent),
        rate(from.2.received, to.2.received),
        to.2.short_writes - from.2.short_writes,
    );
}

/// This process's user and system CPU time, from `/proc/self/stat`
/// (fields 14 and 15, in clock ticks of 1/100 s; counted from the command
/// name's closing parenthesis, as the name may hold spaces).
fn process_cpu() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let mut fields = after_name.split_whitespace().skip(11);
    let mut next = || {
        let ticks: u64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
        Duration::from_millis(ticks * 10)
    };
    let user = next();
    (user, next())
}
