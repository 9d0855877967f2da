//! Tick threads: each owns some rooms and steps each at its own fixed rate.
//!
//! A room ticks on a plain OS thread, never on the async runtime, so a slow
//! tick cannot stall network I/O and the tick never awaits anything. Rooms
//! are spread over the threads round-robin; each room keeps its own phase
//! (its first tick is when it opened), so rooms do not all tick at once.
//! The schedule lives here and reads the clock; the hosted room is
//! stepped with the `now` it is given (it reads the clock only to time its
//! own tick for the metrics).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tessera_protocol::ErrorCode;

use super::host::{HostedRoom, Stepped};
use super::names::Names;
use crate::link::CloseRequest;
use crate::metrics::TickMetrics;

enum WorkerMsg {
    Add(Box<HostedRoom>),
    Stop,
}

/// The pool of tick threads.
pub(super) struct TickWorkers {
    senders: Mutex<Vec<Sender<WorkerMsg>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next: AtomicUsize,
}

impl TickWorkers {
    /// Starts `count` threads that tick their rooms every `period` and
    /// close them through `names`.
    pub(super) fn start(count: usize, period: Duration, names: Arc<Names>) -> Self {
        let mut senders = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for i in 0..count {
            let (tx, rx) = std::sync::mpsc::channel();
            let names = Arc::clone(&names);
            let spawned = std::thread::Builder::new()
                .name(format!("tessera-tick-{i}"))
                .spawn(move || worker_loop(&rx, &names, period));
            match spawned {
                Ok(handle) => {
                    senders.push(tx);
                    threads.push(handle);
                }
                Err(e) => tracing::error!(error = %e, "cannot start tick thread"),
            }
        }
        Self {
            senders: Mutex::new(senders),
            threads: Mutex::new(threads),
            next: AtomicUsize::new(0),
        }
    }

    /// Hands a room to the next tick thread. Fails after `stop`.
    pub(super) fn add(&self, room: HostedRoom) -> Result<(), ()> {
        let senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        if senders.is_empty() {
            return Err(());
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % senders.len();
        senders[i]
            .send(WorkerMsg::Add(Box::new(room)))
            .map_err(|_| ())
    }

    /// Tick threads running.
    pub(super) fn len(&self) -> usize {
        self.senders.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Stops every tick thread and waits for them.
    pub(super) fn stop(&self) {
        let senders = std::mem::take(&mut *self.senders.lock().unwrap_or_else(|p| p.into_inner()));
        for tx in &senders {
            let _ = tx.send(WorkerMsg::Stop);
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a tick thread panicked");
            }
        }
    }
}

/// A room and when it ticks next.
struct Scheduled {
    room: Box<HostedRoom>,
    next_tick: Instant,
    open: bool,
}

impl Scheduled {
    /// The tick after this one. A room that overran by a whole period
    /// skips the missed ticks rather than bursting to catch up.
    fn advance(&mut self, now: Instant, period: Duration) {
        self.next_tick += period;
        if self.next_tick < now {
            tracing::warn!(
                room = %self.room.handle().name,
                behind_ms = (now - self.next_tick).as_millis() as u64,
                "tick overrun"
            );
            self.next_tick = now + period;
        }
    }
}

fn worker_loop(inbox: &Receiver<WorkerMsg>, names: &Names, period: Duration) {
    let mut rooms: Vec<Scheduled> = Vec::new();
    let metrics = TickMetrics::new();
    loop {
        let now = Instant::now();
        let wait = rooms
            .iter()
            .map(|r| r.next_tick.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(1));
        match inbox.recv_timeout(wait) {
            Ok(WorkerMsg::Add(room)) => rooms.push(Scheduled {
                room,
                next_tick: Instant::now(),
                open: true,
            }),
            Ok(WorkerMsg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                for scheduled in &mut rooms {
                    scheduled.room.persist_closing();
                }
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        for due in rooms.iter_mut().filter(|r| r.next_tick <= now) {
            due.open = tick_one(&mut due.room, now, names, &metrics);
            if due.open {
                due.advance(now, period);
            }
        }
        rooms.retain(|r| r.open);
    }
}

/// Ticks one room; false once it has closed.
fn tick_one(room: &mut HostedRoom, now: Instant, names: &Names, metrics: &TickMetrics) -> bool {
    // A panic in game code must not take the thread's other rooms with
    // it: the failed room is closed and its players told.
    let stepped =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| room.step(now, metrics)));
    match stepped {
        Err(_) => {
            tracing::error!(room = %room.handle().name, "room tick panicked; closing the room");
            room.end_all(|| CloseRequest::error(ErrorCode::Internal, "the room failed"));
            names.close(room.handle());
            false
        }
        Ok(Stepped::CloseRequested) => {
            room.persist_closing();
            names.close(room.handle());
            tracing::info!(
                room = %room.handle().name,
                room_id = room.handle().id,
                "room closed by an operator"
            );
            false
        }
        Ok(Stepped::Ticked) => {
            if !room.is_empty() {
                return true;
            }
            // The last checkpoint is taken (and known to the node) before
            // the name is free: a join that opens the room again right
            // after starts from it. Should a session be on its way in, the
            // room goes on, and checkpoints once more when it empties.
            room.persist_closing();
            !names.close_if_unused(room.handle())
        }
    }
}
