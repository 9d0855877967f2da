//! Dead letters tried again (`tessera worker --replay-dead-letters`): each
//! record goes back to the store on its own; what lands leaves the dead
//! letters, what the store still refuses stays with its new error.

use super::store::{Store, StoreError};
use super::unix_ms;

/// What a replay came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Written to the store and removed from the dead letters.
    pub written: usize,
    /// Refused again (kept, with the new error).
    pub refused: usize,
    /// Not a record this version can read (kept as they are).
    pub unreadable: usize,
}

/// Replays up to `limit` dead letters, oldest first. A store that cannot
/// be reached stops the replay with its error; nothing is lost.
pub async fn replay(store: &Store, limit: usize) -> Result<Replayed, StoreError> {
    let mut replayed = Replayed::default();
    for letter in store.dead_letters(limit).await? {
        let Some(record) = letter.record else {
            replayed.unreadable += 1;
            continue;
        };
        match store.write_batch(std::slice::from_ref(&record)).await {
            Ok(()) => {
                store.remove_dead_letter(&letter.id).await?;
                replayed.written += 1;
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                let attempts = letter.attempts.saturating_add(1);
                store
                    .add_dead_letter(&record, &e.to_string(), attempts, unix_ms())
                    .await?;
                replayed.refused += 1;
            }
        }
    }
    Ok(replayed)
}
