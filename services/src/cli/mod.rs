//! The command-line jobs beyond reading documents: importing a file, the demo, copying a
//! journal between backends, the operator's status, the reference dashboard consumer, and
//! their progress display.

pub mod consumer;
pub mod copy;
pub mod demo;
pub mod generate;
pub mod import;
pub mod progress;
pub mod retention;
pub mod status;
