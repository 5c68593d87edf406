//! Unit tests of the folds: a small hand-made log, exact documents.

mod documents;
mod fixture;
mod fold;
mod revisions;
