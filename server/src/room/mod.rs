//! Hosting rooms.
//!
//! - `table`: [`RoomTable`], name → room: opens a room on its first join
//!   and closes it once nobody is in it or on the way in.
//! - `names`: the names of the open rooms, under the one lock that both
//!   opening (the table) and closing (the tick threads) take.
//! - `handle`: [`RoomHandle`], a room as the rest of the server sees it.
//! - `workers`: the tick threads, their clock and their schedule.
//! - `host`: a hosted room (inbox, step, delivery to session links, lag,
//!   admin questions), stepped with a `now` its caller passes in.
//! - `load`: the tick times and bytes a room publishes for the admin API.
//!
//! What sessions and rooms say to each other is in `crate::link`.

mod handle;
mod host;
mod load;
mod names;
mod table;
mod workers;

pub use handle::RoomHandle;
pub use load::RoomLoad;
pub use table::{Admission, Opening, RoomTable};
