//! The command-line jobs beyond reading documents: importing a file, the demo, copying a
//! journal between backends, the operator's status, the reference dashboard consumer, their
//! progress display, and standard output that a closed pipe ends quietly.

pub mod consumer;
pub mod copy;
pub mod demo;
pub mod generate;
pub mod import;
pub mod output;
pub mod progress;
pub mod retention;
pub mod status;
