//! Reading a file the user named as input (`--params @FILE`,
//! `--env-file`) without trusting it to be one: only a regular file is
//! read, and only up to a size limit, so a FIFO, a device such as
//! `/dev/urandom` or a directory is refused at once instead of blocking or
//! filling memory, and an oversized file is refused before it is read.
//!
//! The file is opened non-blocking (opening a FIFO for reading would
//! otherwise wait for a writer), its type and size come from the open
//! descriptor (so a file swapped after a check is not read), and the read
//! itself stops at the limit even if the file grows meanwhile. The text is
//! read once into one buffer of the file's size.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest env file read (`--env-file`).
pub const MAX_ENV_FILE_BYTES: u64 = 1024 * 1024;

/// The largest params file read by default (`--params @FILE`).
pub const DEFAULT_MAX_PARAMS_BYTES: u64 = 64 * 1024 * 1024;

/// Why an input file was not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputFileError {
    #[error("cannot read the {what} `{path}`: {reason}")]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the {what} `{path}` is {kind}, not a regular file")]
    NotRegular {
        what: &'static str,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("the {what} `{path}` is larger than the limit of {limit} bytes{hint}")]
    TooLarge {
        what: &'static str,
        path: PathBuf,
        limit: u64,
        hint: &'static str,
    },
    #[error("the {what} `{path}` is not UTF-8 text")]
    NotText { what: &'static str, path: PathBuf },
}

/// Reads the regular file at `path` as UTF-8 text of at most `limit`
/// bytes. `what` names the file in errors ("params file"); `hint` is added
/// to the size error (how to raise the limit, if one can).
pub fn read_text(path: &Path, what: &'static str, limit: u64, hint: &'static str) -> Result<String, InputFileError> {
    let unreadable = |e: std::io::Error| InputFileError::Unreadable {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        return Err(InputFileError::NotRegular {
            what,
            path: path.to_owned(),
            kind: kind_of(&file_type),
        });
    }
    let too_large = || InputFileError::TooLarge {
        what,
        path: path.to_owned(),
        limit,
        hint,
    };
    if metadata.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    read_up_to(&file, limit.saturating_add(1), &mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|_| InputFileError::NotText {
        what,
        path: path.to_owned(),
    })
}

fn read_up_to(file: &File, max: u64, into: &mut Vec<u8>) -> std::io::Result<usize> {
    file.take(max).read_to_end(into)
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, "{\"a\": 1}").unwrap();
        assert_eq!(read_text(&path, "params file", 100, "").unwrap(), "{\"a\": 1}");
        assert_eq!(read_text(&path, "params file", 8, "").unwrap(), "{\"a\": 1}");
    }

    #[test]
    fn refuses_what_is_not_a_regular_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        let mut cases = vec![
            (dir.path().to_owned(), "a directory"),
            (PathBuf::from("/dev/urandom"), "a character device"),
        ];
        if made.is_ok_and(|s| s.success()) {
            cases.push((fifo, "a FIFO (named pipe)"));
        }
        for (path, kind) in cases {
            let err = read_text(&path, "env file", 1024, "").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the env file `{}` is {kind}, not a regular file", path.display())
            );
        }
    }

    #[test]
    fn refuses_oversized_files_and_names_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        std::fs::write(&path, vec![b' '; 2000]).unwrap();
        let err = read_text(&path, "params file", 1999, " (raise it with --max-params-bytes)").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the params file `{}` is larger than the limit of 1999 bytes (raise it with --max-params-bytes)",
                path.display()
            )
        );
    }

    #[test]
    fn missing_and_binary_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(read_text(&missing, "env file", 10, "")
            .unwrap_err()
            .to_string()
            .starts_with(&format!("cannot read the env file `{}`: ", missing.display())));
        let binary = dir.path().join("bin");
        std::fs::write(&binary, [0xff, 0xfe]).unwrap();
        assert_eq!(
            read_text(&binary, "env file", 10, "").unwrap_err(),
            InputFileError::NotText {
                what: "env file",
                path: binary
            }
        );
    }
}
