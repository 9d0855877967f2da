//! Heap bytes one room holds, counted by the allocator: after
//! `Room::new`, after one join, and after some ticks.
//!
//! `cargo run --release -p tessera-sim --example room_bytes`

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tessera_protocol::RawValue;
use tessera_sim::games::arena::Arena;
use tessera_sim::{Room, RoomConfig};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    // A first room pays for what is built once per process.
    drop(Room::new(&Arena, RoomConfig::default()).expect("room"));
    let region = Region::new(GLOBAL);
    let held = |region: &Region<'_, System>| {
        let c = region.change();
        c.bytes_allocated as isize - c.bytes_deallocated as isize + c.bytes_reallocated
    };
    let mut room = Room::new(&Arena, RoomConfig::default()).expect("room");
    let built = held(&region);
    room.join(1, &RawValue::nil()).expect("joins");
    let joined = held(&region);
    let mut out = Vec::new();
    for _ in 0..20 {
        out.clear();
        room.step(&mut out);
    }
    drop(out);
    let ticked = held(&region);
    println!("Room::new        {built:>7} bytes");
    println!("+ one join       {:>7} bytes", joined - built);
    println!("+ 20 ticks       {:>7} bytes", ticked - joined);
    println!("a room, 1 player {ticked:>7} bytes");
    drop(room);
    println!("after drop       {:>7} bytes", held(&region));
}
