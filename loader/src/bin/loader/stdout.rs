//! Writing the CLI's output to stdout without panicking when the reader
//! goes away (`loader list | head -1`): a closed pipe ends the loader
//! quietly with success, as cargo and ripgrep do.

use serde_json::Value;
use std::io::{self, Write};

/// Writes `text` to stdout; on a closed pipe the process exits with 0, on
/// any other write error with an `error:` line and 1.
pub fn write(text: &str) {
    let mut out = io::stdout().lock();
    if let Err(error) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        exit_on_write_error(&error);
    }
}

fn exit_on_write_error(error: &io::Error) -> ! {
    if error.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout\n  {error}");
    std::process::exit(1);
}

/// `println!` for the CLI's stdout, through [`write`].
macro_rules! outln {
    () => {
        $crate::stdout::write("\n")
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

pub(crate) fn print_json(value: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}
