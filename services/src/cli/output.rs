//! Standard output for the commands: a reader that went away (`| head`, a pager quit early, a
//! closed pipe) ends the job quietly instead of a panic (`println!` panics on a broken pipe)
//! or an error line.

use std::io::Write as _;

/// Writes `args` to standard output, then a new line when `newline`: what [`crate::say!`]
/// and [`crate::say_raw!`] call instead of `println!` / `print!`, which panic when the
/// reader went away. A failing standard output is not an error of the job: nothing is left to
/// tell it to, and what the job did stays done (an import's `--report-json` is still written).
pub fn say_args(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut text = args.to_string();
    if newline {
        text.push('\n');
    }
    let _ = emit(&text);
}

/// `println!` that never panics ([`say_args`]).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::say_args(::std::format_args!($($arg)*), true)
    };
}

/// `print!` that never panics ([`say_args`]).
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::cli::output::say_args(::std::format_args!($($arg)*), false)
    };
}

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
