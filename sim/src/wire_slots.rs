//! The small numbers a client's moves name its entities by.
//!
//! Each entity a version-2 client knows gets a slot when it enters the
//! client's view (the delta's `slots` section) and gives it back when it
//! leaves. The lowest free slot is always taken, so slots stay below the
//! number of entities the client knows and a move names its entity in one
//! byte while the client knows fewer than 128.

/// The slots of one client in use, as a bit set.
#[derive(Debug, Default, Clone)]
pub(crate) struct WireSlots {
    used: Vec<u64>,
}

impl WireSlots {
    /// Takes the lowest free slot.
    pub fn take(&mut self) -> u32 {
        let word = match self.used.iter().position(|w| *w != u64::MAX) {
            Some(i) => i,
            None => {
                self.used.push(0);
                self.used.len() - 1
            }
        };
        let bit = self.used[word].trailing_ones();
        self.used[word] |= 1 << bit;
        word as u32 * 64 + bit
    }

    /// Gives `slot` back.
    pub fn give_back(&mut self, slot: u32) {
        if let Some(w) = self.used.get_mut(slot as usize / 64) {
            *w &= !(1 << (slot % 64));
        }
    }

    /// Starts again from exactly `slots` in use (after a delta the client
    /// did not get, from the view it still has).
    pub fn reset_to(&mut self, slots: impl Iterator<Item = u32>) {
        self.used.clear();
        for slot in slots {
            let word = slot as usize / 64;
            if word >= self.used.len() {
                self.used.resize(word + 1, 0);
            }
            self.used[word] |= 1 << (slot % 64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_free_slot_is_taken_and_freed_slots_come_back_first() {
        let mut slots = WireSlots::default();
        let taken: Vec<u32> = (0..130).map(|_| slots.take()).collect();
        assert_eq!(taken, (0..130).collect::<Vec<_>>());
        slots.give_back(70);
        slots.give_back(3);
        assert_eq!((slots.take(), slots.take(), slots.take()), (3, 70, 130));
        slots.reset_to([5, 0].into_iter());
        assert_eq!((slots.take(), slots.take()), (1, 2));
        slots.give_back(9_999);
        assert_eq!(slots.take(), 3);
    }
}
