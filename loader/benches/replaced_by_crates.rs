//! Side by side: the crates that replaced hand-written code (`time` for
//! event timestamps, `object` for the ELF pre-flight check) against that
//! code, kept here only as the reference, so the cost of the change is a
//! measured ratio. (`time`'s own formatting is measured too: it is why
//! `Rfc3339` takes only the calendar date from `time`.) The terminal's
//! progress bars (`indicatif`) have no hand-written reference left here:
//! `terminal_sink` measures what one event costs the buffered terminal sink
//! with indicatif bars on screen against plain lines (no terminal), side by
//! side; the book's benchmarks chapter has the whole-process figures before
//! and after.
//! `relay_line` is the other way round: serde reading a user event's JSON
//! line against the isolated relay's own reader of the frame the child
//! sends instead (`events::frame`), kept for its measured speed. Run with
//! `cargo bench -p loader --bench replaced_by_crates`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use criterion::Criterion;
use loader::events::progress::{ProgressStatus, StepProgress};
use loader::events::terminal::TERMINAL_FLUSH_DELAY;
use loader::events::time::{parse_rfc3339, unix_parts, Rfc3339};
use loader::events::{
    frame, parse_line_raw, Event, EventSink, Flush, JsonlSink, Level, RunInfo, TerminalOptions, TerminalSink,
};
use loader::find::preflight::check_library;

/// The hand-written formatter `time` replaced (Hinnant's civil algorithm).
mod hand_written_time {
    pub fn format(secs: i64, micros: u32) -> [u8; 27] {
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        put_digits(&mut b[0..4], year as u32);
        put_digits(&mut b[5..7], month);
        put_digits(&mut b[8..10], day);
        put_digits(&mut b[11..13], sod / 3600);
        put_digits(&mut b[14..16], sod / 60 % 60);
        put_digits(&mut b[17..19], sod % 60);
        put_digits(&mut b[20..26], micros);
        b
    }

    fn put_digits(out: &mut [u8], mut value: u32) {
        for slot in out.iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }

    fn civil_from_days(days: i64) -> (i64, u32, u32) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i64::from(month <= 2), month, day)
    }
}

/// The hand-written ELF header reader `object` replaced.
mod hand_written_elf {
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom};
    use std::path::Path;

    fn this_machine() -> Option<u16> {
        match std::env::consts::ARCH {
            "x86_64" => Some(62),
            "aarch64" => Some(183),
            _ => None,
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

    pub fn check_elf(path: &Path) -> Result<(), String> {
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

        let truncated =
            |what: &str, end: u64| format!("truncated: {what} ends at byte {end} but the file has {len} bytes");
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
}

/// The whole timestamp written by `time` (what `Rfc3339` does not use, for
/// its cost: see its `from_parts`).
fn time_format_into(secs: i64, micros: u32) -> [u8; 27] {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    let mut b = [0u8; 27];
    let nanos = i128::from(secs) * 1_000_000_000 + i128::from(micros) * 1_000;
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("a 4-digit year");
    t.format_into(&mut &mut b[..], FORMAT).expect("27 bytes");
    b
}

/// A shared library of this machine: the C library this process uses.
fn system_library() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("Linux");
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("libc.so") || p.contains("libc-"))
        .map(PathBuf::from)
        .expect("libc is mapped")
}

fn timestamps(c: &mut Criterion) {
    let (secs, micros) = unix_parts(SystemTime::now());
    assert_eq!(
        Rfc3339::from_parts(secs, micros).as_bytes(),
        &hand_written_time::format(secs, micros),
        "all write the same text"
    );
    assert_eq!(
        &time_format_into(secs, micros),
        &hand_written_time::format(secs, micros)
    );
    let mut group = c.benchmark_group("event_time_format");
    group.bench_function("time_calendar_then_digits", |b| {
        b.iter(|| *Rfc3339::from_parts(black_box(secs), black_box(micros)).as_bytes())
    });
    group.bench_function("time_format_into", |b| {
        b.iter(|| time_format_into(black_box(secs), black_box(micros)))
    });
    group.bench_function("hand_written", |b| {
        b.iter(|| hand_written_time::format(black_box(secs), black_box(micros)))
    });
    group.finish();

    let text = Rfc3339::from_parts(secs, micros).to_string();
    c.bench_function("event_time_parse/time_crate", |b| {
        b.iter(|| parse_rfc3339(black_box(&text)))
    });
}

fn elf_preflight(c: &mut Criterion) {
    let library = system_library();
    assert_eq!(check_library(&library), Ok(()));
    assert_eq!(hand_written_elf::check_elf(&library), Ok(()));
    let mut group = c.benchmark_group("elf_preflight");
    group.bench_function("object_crate", |b| b.iter(|| check_library(black_box(&library))));
    group.bench_function("hand_written", |b| {
        b.iter(|| hand_written_elf::check_elf(black_box(&library)))
    });
    group.finish();
}

/// A running step's progress event.
fn progress_event(step: &str, current: u64) -> Event {
    StepProgress {
        current,
        total: 1_000_000,
        percent: current as f64 / 10_000.0,
        elapsed: Duration::from_secs(3),
        eta: Some(Duration::from_secs(7)),
        status: ProgressStatus::Running,
    }
    .to_event(Some(step))
}

/// The stderr sink as `loader run` builds it (buffered), writing nowhere.
fn terminal(tty: bool) -> TerminalSink<std::io::Sink> {
    let opts = TerminalOptions {
        tty,
        color: tty,
        verbose: false,
    };
    TerminalSink::buffered(std::io::sink(), opts, TERMINAL_FLUSH_DELAY)
}

fn terminal_sink(c: &mut Criterion) {
    let run = RunInfo::new("bench", "train");
    let mut group = c.benchmark_group("terminal_sink");
    for (label, tty) in [("indicatif_bars", true), ("plain_lines", false)] {
        let sink = terminal(tty);
        sink.start(&run);
        sink.emit(&run, &progress_event("eval", 1));
        let mut current = 0;
        group.bench_function(format!("progress_event/{label}"), |b| {
            b.iter(|| {
                current += 1;
                sink.emit(&run, black_box(&progress_event("train", current)))
            })
        });
        let message = Event::message(Level::Info, "epoch 3 of 10 done").with_step("train");
        group.bench_function(format!("message_line/{label}"), |b| {
            b.iter(|| sink.emit(&run, black_box(&message)))
        });
        sink.finish(&run);
    }
    group.finish();
}

/// The isolated relay reads a user event the child sent as a frame
/// (`events::frame`); before frames, it read the event's JSON line with
/// serde. The same event read both ways.
fn relay_line(c: &mut Criterion) {
    let sink = JsonlSink::new(Vec::new(), Flush::EachLine);
    let run = RunInfo::new("bench", "log_calls");
    let event = Event::user("tick", serde_json::json!({ "i": 7, "loss": 0.25 }));
    sink.emit(&run, &event);
    let written = String::from_utf8(sink.into_inner().expect("a Vec never fails")).expect("JSON is UTF-8");
    let line = written.trim_end().to_owned();
    let mut framed = Vec::new();
    frame::write(&mut framed, &event);
    framed.pop();
    let by_frame = frame::read(&framed).expect("the frame reads back");
    let (_, by_serde) = parse_line_raw(&line).expect("the line reads back");
    assert_eq!(
        (&by_frame.event, &by_frame.raw_data),
        (&by_serde.event, &by_serde.raw_data)
    );
    let mut group = c.benchmark_group("relay_line");
    group.bench_function("frame", |b| b.iter(|| frame::read(black_box(&framed))));
    group.bench_function("serde_json_line", |b| b.iter(|| parse_line_raw(black_box(&line))));
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    timestamps(&mut c);
    elf_preflight(&mut c);
    terminal_sink(&mut c);
    relay_line(&mut c);
    c.final_summary();
}
