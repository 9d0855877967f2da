//! Room state kept in the world as a boxed resource.
//!
//! bevy stores each resource type in a sparse set that reserves room for
//! 64 values in every world (`SparseSets::get_or_insert`), so a 352-byte
//! resource costs a room 22 KB before it holds anything. Behind a box, the
//! reservation is 64 pointers and the state itself is allocated once.

use std::ops::{Deref, DerefMut};

use bevy_ecs::prelude::*;

/// A resource `T` whose value lives behind a box (see the module docs).
#[derive(Resource, Debug, Default)]
pub(crate) struct Boxed<T: Send + Sync + 'static>(Box<T>);

impl<T: Send + Sync + 'static> Boxed<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(Box::new(value))
    }
}

impl<T: Send + Sync + 'static> Deref for Boxed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Send + Sync + 'static> DerefMut for Boxed<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}
