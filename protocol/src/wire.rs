//! The contract between a game's replicated components and the wire.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::delta::EntityState;
use crate::raw::{PayloadError, RawValue};

/// The wire form of a replicated component: a compact serde type with a
/// stable one-byte id. A game's server side (in `tessera-sim`) converts its
/// simulation component into this form; its clients decode this form.
///
/// Keep the serialized form small (it is sent for every change of every
/// visible entity) and its fields append-only.
pub trait WireComponent:
    Serialize + DeserializeOwned + PartialEq + Clone + Send + Sync + 'static
{
    /// The component's id in delta entries; unique within a game.
    const ID: u8;
    /// Human-readable name, for tools and logs.
    const NAME: &'static str;

    /// The value as tools show it to a person (`tessera admin entity`),
    /// encoded as MessagePack. By default the wire value itself; a
    /// quantized or packed component gives what it stands for instead (the
    /// arena's position gives `{"x": …, "y": …}` in world units).
    fn readable(&self) -> Result<RawValue, PayloadError> {
        RawValue::encode(self)
    }
}

impl EntityState {
    /// Decodes component `C` if this entry carries it.
    pub fn get<C: WireComponent>(&self) -> Option<Result<C, PayloadError>> {
        self.component(C::ID).map(RawValue::decode)
    }
}
