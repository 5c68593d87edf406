//! Standard output for the commands: a reader that went away (`| head`, a pager quit early, a
//! closed pipe) ends the job quietly instead of a panic (`println!` panics on a broken pipe)
//! or an error line.

use std::io::Write as _;

/// Whether `e` says the reader of standard output went away.
pub fn reader_gone(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

/// Writes `bytes` as they are to standard output and flushes it; a reader that went away is
/// not an error.
///
/// # Errors
/// Any other write error.
pub fn emit_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if !reader_gone(&e) => Err(e.into()),
        _ => Ok(()),
    }
}

/// Writes `text` as it is to standard output ([`emit_bytes`]).
///
/// # Errors
/// Any write error but a reader that went away.
pub fn emit(text: &str) -> anyhow::Result<()> {
    emit_bytes(text.as_bytes())
}

/// Writes `text` and a newline to standard output ([`emit`]).
///
/// # Errors
/// Any write error but a reader that went away.
pub fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if !reader_gone(&e) => Err(e.into()),
        _ => Ok(()),
    }
}
