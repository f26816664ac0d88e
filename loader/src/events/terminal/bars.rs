//! The terminal sink's progress bars, drawn by `indicatif`: one bar per
//! step in a [`MultiProgress`], in place, at most 20 times a second (with
//! indicatif's bursts), completions and new steps at once.
//!
//! indicatif draws into [`Screen`], a byte buffer speaking ANSI cursor
//! movement, rather than to stderr itself: the sink writes that buffer
//! together with its own lines, so bar redraws and lines stay in order and
//! share the sink's buffered writes (one write per 64 KiB or per flush).
//! Lines go above the bars through [`MultiProgress::suspend`].

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::super::lock;
use super::super::progress::ProgressStatus;

/// How often indicatif may redraw the bars, per second.
const REDRAWS_PER_SECOND: u8 = 20;
/// The bar's width in characters.
const BAR_WIDTH: usize = 20;
/// Labels are padded to at least this many characters.
const MIN_LABEL_CHARS: usize = 9;

/// The terminal size `(rows, columns)` bars are laid out for.
pub type ScreenSize = fn() -> (u16, u16);

/// The size of the terminal on stderr, or 24x80 when it has none.
pub fn stderr_size() -> (u16, u16) {
    console::Term::stderr().size_checked().unwrap_or((24, 80))
}

/// A fixed 24x80 screen (tests, benchmarks).
pub fn fixed_size() -> (u16, u16) {
    (24, 80)
}

/// What indicatif draws into: bytes with ANSI cursor movement, collected
/// until the sink writes them.
#[derive(Debug, Clone)]
struct Screen {
    bytes: Arc<Mutex<Vec<u8>>>,
    size: ScreenSize,
}

impl Screen {
    fn push(&self, text: &str) -> std::io::Result<()> {
        lock(&self.bytes).extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn cursor(&self, n: usize, code: char) -> std::io::Result<()> {
        if n > 0 {
            let mut text = String::new();
            let _ = write!(text, "\x1b[{n}{code}");
            self.push(&text)?;
        }
        Ok(())
    }
}

impl TermLike for Screen {
    fn width(&self) -> u16 {
        (self.size)().1
    }

    fn height(&self) -> u16 {
        (self.size)().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.cursor(n, 'D')
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.push(s)?;
        self.push("\n")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.push(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.push("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One step's bar.
struct StepBar {
    step: Option<String>,
    bar: ProgressBar,
    status: ProgressStatus,
}

/// What a bar shows: its escaped label, position, and the text after it.
pub struct BarView<'a> {
    pub step: Option<&'a str>,
    pub label: String,
    pub current: u64,
    pub total: u64,
    pub status: ProgressStatus,
    /// `45.00%  9/20  eta 3s`, coloured as the sink colours it.
    pub text: String,
}

/// The bars of one run.
pub struct Bars {
    multi: MultiProgress,
    screen: Screen,
    steps: Vec<StepBar>,
    label_width: usize,
    color: bool,
}

impl Bars {
    pub fn new(size: ScreenSize, color: bool) -> Self {
        let screen = Screen {
            bytes: Arc::default(),
            size,
        };
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(screen.clone()), REDRAWS_PER_SECOND);
        if color {
            // indicatif colours through `console`, which asks whether stdout
            // is a terminal; the sink has decided for stderr already.
            console::set_colors_enabled(true);
        }
        Bars {
            multi: MultiProgress::with_draw_target(target),
            screen,
            steps: Vec::new(),
            label_width: MIN_LABEL_CHARS,
            color,
        }
    }

    /// Shows `view`: a new bar drawn at once, or an update of its step's bar
    /// (redrawn at once when the step completes or fails).
    pub fn show(&mut self, view: BarView<'_>) {
        if view.label.chars().count() > self.label_width {
            self.label_width = view.label.chars().count();
            for step in &self.steps {
                step.bar.set_style(self.style(step.status));
            }
        }
        let slot = self.steps.iter().position(|s| s.step.as_deref() == view.step);
        let (index, is_new) = match slot {
            Some(index) => (index, false),
            None => {
                // Set up while hidden, so that only the finished bar is drawn.
                let bar = ProgressBar::with_draw_target(Some(view.total), ProgressDrawTarget::hidden());
                bar.set_style(self.style(view.status));
                bar.set_prefix(view.label.clone());
                bar.set_position(view.current.min(view.total));
                bar.set_message(view.text.clone());
                let bar = self.multi.add(bar);
                self.steps.push(StepBar {
                    step: view.step.map(str::to_owned),
                    bar,
                    status: view.status,
                });
                (self.steps.len() - 1, true)
            }
        };
        if is_new {
            self.steps[index].bar.force_draw();
            return;
        }
        let style = (self.steps[index].status != view.status).then(|| self.style(view.status));
        let step = &mut self.steps[index];
        let (current, total) = (view.current.min(view.total), view.total);
        step.bar.update(|state| {
            state.set_len(total);
            state.set_pos(current);
        });
        step.bar.set_message(view.text);
        if let Some(style) = style {
            step.status = view.status;
            step.bar.set_style(style);
            step.bar.force_draw();
        }
    }

    /// Puts `lines` (whole lines) above the bars.
    pub fn print_above(&self, lines: &[u8]) {
        let write = || lock(&self.screen.bytes).extend_from_slice(lines);
        if self.steps.is_empty() {
            write()
        } else {
            self.multi.suspend(write)
        }
    }

    /// Draws the bars a last time and leaves them on screen, the cursor on
    /// the line below them.
    pub fn leave(&mut self) {
        for step in self.steps.drain(..) {
            step.bar.abandon();
        }
        let mut bytes = lock(&self.screen.bytes);
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
    }

    /// How many bytes of drawing wait to be written.
    pub fn pending(&self) -> usize {
        lock(&self.screen.bytes).len()
    }

    /// Moves the drawing that waits into `out`.
    pub fn take_into(&self, out: &mut Vec<u8>) {
        out.append(&mut lock(&self.screen.bytes));
    }

    fn style(&self, status: ProgressStatus) -> ProgressStyle {
        let colour = match status {
            ProgressStatus::Running => "cyan",
            ProgressStatus::Completed => "green",
            ProgressStatus::Failed => "red",
        };
        let bar = if self.color {
            format!("{{bar:{BAR_WIDTH}.{colour}}}")
        } else {
            format!("{{bar:{BAR_WIDTH}}}")
        };
        let template = format!("{{prefix:<{}}} [{bar}] {{msg}}", self.label_width);
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#-")
    }
}
