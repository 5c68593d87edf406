//! Helpers live in `it/`; this crate exists only to host the `it` test binary.
