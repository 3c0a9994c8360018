//! Network functions.
