//! Checks a library file before it is handed to the system loader.
//!
//! `dlopen` maps a library's segments straight from the file: a truncated
//! copy of a real library passes its checks and then kills the process with
//! SIGBUS when a segment beyond the end of the file is touched. So on ELF
//! platforms the loader reads the headers first and refuses a file whose
//! segments or section table lie beyond its end, that is not a shared
//! object, or that was built for another machine.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Why a file cannot be a loadable library for this machine.
pub fn check_library(path: &Path) -> Result<(), String> {
    if cfg!(all(unix, not(target_vendor = "apple"))) {
        check_elf(path)
    } else {
        Ok(())
    }
}

const PT_LOAD: u32 = 1;
const ET_DYN: u16 = 3;

struct Reader {
    little_endian: bool,
}

impl Reader {
    fn u16(&self, b: &[u8], at: usize) -> u16 {
        let bytes = [b[at], b[at + 1]];
        if self.little_endian {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        }
    }

    fn u32(&self, b: &[u8], at: usize) -> u32 {
        let bytes = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        }
    }

    fn u64(&self, b: &[u8], at: usize) -> u64 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&b[at..at + 8]);
        if self.little_endian {
            u64::from_le_bytes(bytes)
        } else {
            u64::from_be_bytes(bytes)
        }
    }

    /// A word: 8 bytes in 64-bit files, 4 in 32-bit ones.
    fn word(&self, b: &[u8], at: usize, wide: bool) -> u64 {
        if wide {
            self.u64(b, at)
        } else {
            u64::from(self.u32(b, at))
        }
    }
}

fn check_elf(path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let len = file.metadata().map_err(|e| format!("cannot read the file: {e}"))?.len();
    let mut header = [0u8; 64];
    let read = read_up_to(&mut file, &mut header).map_err(|e| format!("cannot read the file: {e}"))?;
    if read < 16 || &header[..4] != b"\x7fELF" {
        return Err("not a shared library: no ELF header".to_owned());
    }
    let wide = match header[4] {
        1 => false,
        2 => true,
        other => return Err(format!("not a valid ELF file: unknown class {other}")),
    };
    let reader = Reader {
        little_endian: header[5] == 1,
    };
    let header_len = if wide { 64 } else { 52 };
    if read < header_len {
        return Err(format!("truncated: {len} bytes, shorter than an ELF header"));
    }
    if (wide != cfg!(target_pointer_width = "64")) || (reader.little_endian != cfg!(target_endian = "little")) {
        return Err(format!(
            "built for a {}-bit {}-endian machine, not this one",
            if wide { 64 } else { 32 },
            if reader.little_endian { "little" } else { "big" }
        ));
    }
    if reader.u16(&header, 16) != ET_DYN {
        return Err("not a shared library (ELF type is not a shared object)".to_owned());
    }
    let machine = reader.u16(&header, 18);
    if let Some(expected) = this_machine() {
        if machine != expected {
            return Err(format!(
                "built for another architecture (ELF machine {machine}, this machine is {expected})"
            ));
        }
    }
    let (ph_off, sh_off) = if wide {
        (reader.u64(&header, 32), reader.u64(&header, 40))
    } else {
        (u64::from(reader.u32(&header, 28)), u64::from(reader.u32(&header, 32)))
    };
    let at = if wide { 54 } else { 42 };
    let (ph_size, ph_num) = (
        u64::from(reader.u16(&header, at)),
        u64::from(reader.u16(&header, at + 2)),
    );
    let (sh_size, sh_num) = (
        u64::from(reader.u16(&header, at + 4)),
        u64::from(reader.u16(&header, at + 6)),
    );

    let truncated = |what: &str, end: u64| format!("truncated: {what} ends at byte {end} but the file has {len} bytes");
    let ph_end = ph_off.saturating_add(ph_size.saturating_mul(ph_num));
    if ph_end > len {
        return Err(truncated("the program header table", ph_end));
    }
    let sh_end = sh_off.saturating_add(sh_size.saturating_mul(sh_num));
    if sh_end > len {
        return Err(truncated("the section header table", sh_end));
    }
    let table_len = usize::try_from(ph_size * ph_num).map_err(|_| "program header table too large".to_owned())?;
    let mut table = vec![0u8; table_len];
    file.seek(SeekFrom::Start(ph_off))
        .and_then(|_| file.read_exact(&mut table))
        .map_err(|e| format!("cannot read the program headers: {e}"))?;
    let entry_min = if wide { 56 } else { 32 };
    if ph_num > 0 && (ph_size as usize) < entry_min {
        return Err("not a valid ELF file: program header entries too small".to_owned());
    }
    for entry in table.chunks_exact(ph_size.max(1) as usize) {
        if reader.u32(entry, 0) != PT_LOAD {
            continue;
        }
        let (offset, file_size) = if wide {
            (reader.word(entry, 8, true), reader.word(entry, 32, true))
        } else {
            (reader.word(entry, 4, false), reader.word(entry, 16, false))
        };
        let end = offset.saturating_add(file_size);
        if end > len {
            return Err(truncated("a loadable segment", end));
        }
    }
    Ok(())
}

fn read_up_to(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The ELF machine number of this build's architecture.
fn this_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86" => Some(3),
        "x86_64" => Some(62),
        "arm" => Some(40),
        "aarch64" => Some(183),
        "riscv64" => Some(243),
        "powerpc64" => Some(21),
        "s390x" => Some(22),
        _ => None,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("preflight-{name}-{}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Some shared library of this machine: the C library the tests link.
    fn system_library() -> Vec<u8> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.contains("libc.so") || p.contains("libc-"))
            .unwrap();
        std::fs::read(libc).unwrap()
    }

    #[test]
    fn a_complete_library_passes_and_every_truncation_is_caught() {
        let whole = system_library();
        let ok = temp_file("whole", &whole);
        assert_eq!(check_library(&ok), Ok(()));
        for cut in [10, 60, 1000, whole.len() / 3, whole.len() - 1] {
            let path = temp_file("cut", &whole[..cut]);
            let err = check_library(&path).unwrap_err();
            assert!(
                err.contains("truncated") || err.contains("ELF header"),
                "cut at {cut}: {err}"
            );
        }
        std::fs::remove_file(ok).unwrap();
    }

    #[test]
    fn text_and_executables_are_not_libraries() {
        let text = temp_file("text", b"hello, this is not a library at all, just words");
        assert!(check_library(&text).unwrap_err().contains("no ELF header"));
        let mut exe = system_library();
        exe[16] = 2; // ET_EXEC
        let path = temp_file("exe", &exe);
        assert!(check_library(&path).unwrap_err().contains("not a shared library"));
        let mut foreign = system_library();
        foreign[18] = 0xff;
        let path = temp_file("foreign", &foreign);
        assert!(check_library(&path).unwrap_err().contains("another architecture"));
    }
}
