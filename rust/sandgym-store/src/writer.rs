//! The streaming Parquet writer: a background thread behind a bounded channel, writing a directory of
//! part files that appear only once complete.
//!
//! Collectors call [`Writer::send`], which only blocks when the channel is full, so memory stays bounded
//! (channel capacity + one batch + the open row group) and I/O never happens on a collector thread. The
//! thread buffers rows into batches of [`WriterOptions::rows_per_batch`] (or fewer, when the buffered
//! text passes [`BATCH_BYTES`]), encodes them, and hands them to parquet's `ArrowWriter`, which flushes a
//! row group every [`WriterOptions::row_group_rows`] rows.
//!
//! Each part is written as `.{prefix}-NNNNN.parquet.tmp` in the output directory, then closed, synced and
//! renamed to `{prefix}-NNNNN.parquet` after [`WriterOptions::rows_per_file`] rows or at the end. A run that
//! is killed therefore leaves complete, readable parts plus at most one temp file, which readers skip.
//! Numbering starts after the highest part (or temp file) already in the directory, so a second run into
//! the same directory adds files. One writer per directory and prefix at a time.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::batch::to_record_batch;
use crate::schema::schema;
use crate::trajectory::Trajectory;
use crate::{Result, StoreError, io_error};

/// A batch is flushed early once its rows hold about this many bytes of text, which bounds the
/// writer's memory for long trajectories and keeps every batch far below Arrow's 2 GiB offset limit.
pub const BATCH_BYTES: usize = 64 << 20;

/// Page compression of the part files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression (fastest, largest).
    None,
    /// Snappy: faster than zstd, about 40% larger files.
    Snappy,
    /// Zstandard at the given level (1–22); level 1 is the default and the measured sweet spot.
    Zstd(i32),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(1)
    }
}

impl FromStr for Compression {
    type Err = StoreError;

    /// Parses `none`, `snappy`, `zstd` (level 1) or `zstd:N` / `zstd-N` / `zstd(N)`.
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "none" | "uncompressed" => return Ok(Compression::None),
            "snappy" => return Ok(Compression::Snappy),
            "zstd" => return Ok(Compression::Zstd(1)),
            _ => {}
        }
        let level = lower
            .strip_prefix("zstd")
            .map(|rest| {
                rest.trim_start_matches([':', '-', '('])
                    .trim_end_matches(')')
            })
            .and_then(|level| level.parse::<i32>().ok());
        match level {
            Some(level) => {
                ZstdLevel::try_new(level).map_err(|e| StoreError::Options(e.to_string()))?;
                Ok(Compression::Zstd(level))
            }
            None => Err(StoreError::Options(format!(
                "unknown compression {s:?} (expected none, snappy, zstd or zstd:LEVEL)"
            ))),
        }
    }
}

impl Compression {
    fn to_parquet(self) -> Result<ParquetCompression> {
        Ok(match self {
            Compression::None => ParquetCompression::UNCOMPRESSED,
            Compression::Snappy => ParquetCompression::SNAPPY,
            Compression::Zstd(level) => ParquetCompression::ZSTD(
                ZstdLevel::try_new(level).map_err(|e| StoreError::Options(e.to_string()))?,
            ),
        })
    }
}

/// How [`Writer`] lays out its files. `WriterOptions::default()` is the recommended setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterOptions {
    /// Rows encoded into one Arrow batch before it is handed to the Parquet encoder (default 1024).
    pub rows_per_batch: usize,
    /// Maximum rows per Parquet row group (default 16,384).
    pub row_group_rows: usize,
    /// Rows per part file; a part is closed and published when it reaches this (default 10,000). Smaller
    /// parts mean less work lost when a run is killed: only the open part is.
    pub rows_per_file: usize,
    /// Page compression (default zstd level 1).
    pub compression: Compression,
    /// Rows that may wait in the channel before [`Writer::send`] blocks (default 256).
    pub channel_capacity: usize,
    /// File name prefix: parts are `{prefix}-NNNNN.parquet` (default `part`).
    pub file_prefix: String,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            rows_per_batch: 1024,
            row_group_rows: 16_384,
            rows_per_file: 10_000,
            compression: Compression::default(),
            channel_capacity: 256,
            file_prefix: "part".to_string(),
        }
    }
}

impl WriterOptions {
    fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("rows_per_batch", self.rows_per_batch),
            ("row_group_rows", self.row_group_rows),
            ("rows_per_file", self.rows_per_file),
        ] {
            if value == 0 {
                return Err(StoreError::Options(format!("{name} must be at least 1")));
            }
        }
        let prefix = &self.file_prefix;
        if prefix.is_empty()
            || prefix.starts_with('.')
            || prefix.contains(['/', '\\'])
            || prefix.contains('\0')
        {
            return Err(StoreError::Options(format!(
                "file_prefix {prefix:?} must be a plain, non-hidden file name part"
            )));
        }
        self.compression.to_parquet()?;
        Ok(())
    }

    fn properties(&self) -> Result<WriterProperties> {
        Ok(WriterProperties::builder()
            .set_compression(self.compression.to_parquet()?)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .build())
    }
}

/// What a finished [`Writer`] produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// The part files written by this writer, in order (full paths).
    pub files: Vec<PathBuf>,
    /// Rows written.
    pub rows: u64,
    /// Total size of `files` in bytes.
    pub bytes: u64,
}

/// Streams trajectories to a directory of Parquet part files from a background thread.
///
/// `send` takes `&self`, so one writer can be shared by several collector threads. Call
/// [`Writer::finish`] to publish the last part and learn about errors. Dropping a writer without
/// `finish` still finalizes it: `Drop` closes the channel and waits for the thread to write the
/// buffered rows and publish the open part (a panic in a collector then keeps what was collected).
/// Errors during that implicit finish cannot be reported and are ignored; a failed part stays a temp file.
pub struct Writer {
    tx: Option<SyncSender<Trajectory>>,
    state: Mutex<ThreadState>,
}

struct ThreadState {
    handle: Option<JoinHandle<Result<WriteSummary>>>,
    /// Why the thread stopped, once its error has been returned to a caller.
    stopped: Option<String>,
}

impl Writer {
    /// Creates `dir` (and its parents) if needed and starts the writer thread. Fails at once on
    /// invalid options or an unusable directory.
    pub fn create(dir: impl AsRef<Path>, options: WriterOptions) -> Result<Writer> {
        let dir = dir.as_ref().to_path_buf();
        options.validate()?;
        let properties = options.properties()?;
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let next_part = next_part_number(&dir, &options.file_prefix)?;
        let (tx, rx) = sync_channel(options.channel_capacity);
        let worker = Worker {
            dir,
            options,
            properties,
            next_part,
            part: None,
            buffer: Vec::new(),
            buffer_bytes: 0,
            summary: WriteSummary::default(),
        };
        let handle = std::thread::Builder::new()
            .name("sandgym-store".to_string())
            .spawn(move || worker.run(rx))
            .map_err(|e| {
                StoreError::Io(std::io::Error::new(
                    e.kind(),
                    format!("spawning the writer thread: {e}"),
                ))
            })?;
        Ok(Writer {
            tx: Some(tx),
            state: Mutex::new(ThreadState {
                handle: Some(handle),
                stopped: None,
            }),
        })
    }

    /// Queues one trajectory; blocks only while the channel is full. If the writer thread has failed,
    /// returns its error (the first time; later calls return [`StoreError::WriterStopped`]).
    pub fn send(&self, trajectory: Trajectory) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Err(StoreError::WriterStopped(
                "writer already finished".to_string(),
            ));
        };
        match tx.send(trajectory) {
            Ok(()) => Ok(()),
            Err(_) => Err(self.take_failure()),
        }
    }

    /// Writes everything still buffered, publishes the last part and stops the thread. Returns what
    /// this writer produced, or the thread's error.
    pub fn finish(mut self) -> Result<WriteSummary> {
        drop(self.tx.take());
        let handle = self.lock().handle.take();
        match handle {
            Some(handle) => join(handle),
            None => Err(StoreError::WriterStopped(
                self.lock()
                    .stopped
                    .clone()
                    .unwrap_or_else(|| "writer thread already stopped".to_string()),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ThreadState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The channel is closed: the thread has stopped. Returns its error once, then a summary of it.
    fn take_failure(&self) -> StoreError {
        let mut state = self.lock();
        match state.handle.take() {
            Some(handle) => {
                let err = match join(handle) {
                    Err(err) => err,
                    Ok(_) => StoreError::WriterStopped("writer thread exited early".to_string()),
                };
                state.stopped = Some(err.to_string());
                err
            }
            None => StoreError::WriterStopped(
                state
                    .stopped
                    .clone()
                    .unwrap_or_else(|| "writer thread already stopped".to_string()),
            ),
        }
    }
}

impl Drop for Writer {
    /// Best-effort finish: closes the channel and waits for the thread to publish what it has.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(handle) = self.lock().handle.take() {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("open", &self.tx.is_some())
            .finish_non_exhaustive()
    }
}

fn join(handle: JoinHandle<Result<WriteSummary>>) -> Result<WriteSummary> {
    handle.join().unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(StoreError::WriterStopped(format!(
            "writer thread panicked: {message}"
        )))
    })
}

/// The part number of `name` if it is `{prefix}-N.parquet` or `.{prefix}-N.parquet.tmp`.
fn part_number(name: &str, prefix: &str) -> Option<u64> {
    let stem = name
        .strip_suffix(".parquet")
        .or_else(|| name.strip_prefix('.')?.strip_suffix(".parquet.tmp"))?;
    let digits = stem.strip_prefix(prefix)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One past the highest part number in `dir`, counting temp files of interrupted runs too.
fn next_part_number(dir: &Path, prefix: &str) -> Result<u64> {
    let mut next = 0;
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        if let Some(n) = entry
            .file_name()
            .to_str()
            .and_then(|n| part_number(n, prefix))
        {
            next = next.max(n + 1);
        }
    }
    Ok(next)
}

/// The open part file.
struct Part {
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: usize,
}

/// State of the writer thread.
struct Worker {
    dir: PathBuf,
    options: WriterOptions,
    properties: WriterProperties,
    next_part: u64,
    part: Option<Part>,
    buffer: Vec<Trajectory>,
    buffer_bytes: usize,
    summary: WriteSummary,
}

/// Rough text size of a row, to cut batches by bytes.
fn approx_bytes(t: &Trajectory) -> usize {
    let messages: usize = t
        .messages
        .iter()
        .map(|m| {
            m.content.len()
                + 16
                + m.tool_call_id.as_ref().map_or(0, String::len)
                + m.name.as_ref().map_or(0, String::len)
                + m.tool_calls
                    .iter()
                    .map(|c| c.id.len() + c.name.len() + c.arguments.len())
                    .sum::<usize>()
        })
        .sum();
    t.run_id.len()
        + t.episode_id.len()
        + t.env_id.len()
        + t.env_name.len()
        + t.task_id.len()
        + t.task.len()
        + t.tools.len()
        + t.policy.len()
        + t.info.len()
        + t.error_kind.as_ref().map_or(0, String::len)
        + t.error_message.as_ref().map_or(0, String::len)
        + messages
        + 8 * t.turn_rewards.len()
        + 128
}

/// Where a failure happened, which decides what becomes of the open part.
enum Failure {
    /// Before the Parquet encoder saw the batch: the open part is intact and can still be published.
    Encode(StoreError),
    /// In the encoder or the file system: the open part is suspect and is deleted.
    Write(StoreError),
}

impl Worker {
    fn run(mut self, rx: Receiver<Trajectory>) -> Result<WriteSummary> {
        let outcome = self.drain(rx).and_then(|()| {
            self.flush_buffer()?;
            self.close_part().map_err(Failure::Write)
        });
        match outcome {
            Ok(()) => Ok(self.summary),
            Err(Failure::Encode(err)) => {
                // The rows already in the part were encoded fine: publish them, or drop the part if
                // even that fails.
                if self.close_part().is_err() {
                    self.discard_part();
                }
                Err(err)
            }
            Err(Failure::Write(err)) => {
                self.discard_part();
                Err(err)
            }
        }
    }

    fn drain(&mut self, rx: Receiver<Trajectory>) -> std::result::Result<(), Failure> {
        for trajectory in rx {
            let bytes = approx_bytes(&trajectory);
            if !self.buffer.is_empty() && self.buffer_bytes + bytes > BATCH_BYTES {
                self.flush_buffer()?;
            }
            self.buffer.push(trajectory);
            self.buffer_bytes += bytes;
            let part_rows = self.part.as_ref().map_or(0, |p| p.rows);
            if self.buffer.len() >= self.options.rows_per_batch
                || part_rows + self.buffer.len() >= self.options.rows_per_file
                || self.buffer_bytes >= BATCH_BYTES
            {
                self.flush_buffer()?;
            }
        }
        Ok(())
    }

    /// Encodes and writes the buffered rows; publishes the part if it is full.
    fn flush_buffer(&mut self) -> std::result::Result<(), Failure> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = to_record_batch(&self.buffer).map_err(Failure::Encode)?;
        let rows = self.buffer.len();
        self.buffer.clear();
        self.buffer_bytes = 0;
        let part = self.open_part().map_err(Failure::Write)?;
        part.writer
            .write(&batch)
            .map_err(|e| Failure::Write(e.into()))?;
        part.rows += rows;
        let full = part.rows >= self.options.rows_per_file;
        self.summary.rows += rows as u64;
        if full {
            self.close_part().map_err(Failure::Write)?;
        }
        Ok(())
    }

    /// The open part, creating the next temp file if none is open.
    fn open_part(&mut self) -> Result<&mut Part> {
        if self.part.is_none() {
            let prefix = &self.options.file_prefix;
            // `create_new` never clobbers: skip numbers taken since the directory was scanned.
            let (tmp, path, file) = loop {
                let n = self.next_part;
                self.next_part += 1;
                let path = self.dir.join(format!("{prefix}-{n:05}.parquet"));
                let tmp = self.dir.join(format!(".{prefix}-{n:05}.parquet.tmp"));
                if path.exists() {
                    continue;
                }
                match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                    Ok(file) => break (tmp, path, file),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(io_error(&tmp, e)),
                }
            };
            let writer = ArrowWriter::try_new(file, schema(), Some(self.properties.clone()))?;
            self.part = Some(Part {
                tmp,
                path,
                writer,
                rows: 0,
            });
        }
        Ok(self.part.as_mut().expect("part was just opened"))
    }

    /// Finishes the open part (footer, fsync) and renames it to its final name.
    fn close_part(&mut self) -> Result<()> {
        let Some(mut part) = self.part.take() else {
            return Ok(());
        };
        let result = (|| {
            part.writer.finish()?;
            part.writer
                .inner()
                .sync_all()
                .map_err(|e| io_error(&part.tmp, e))?;
            fs::rename(&part.tmp, &part.path).map_err(|e| io_error(&part.path, e))?;
            // Make the rename itself durable; not every platform can sync a directory.
            if let Ok(dir) = File::open(&self.dir) {
                let _ = dir.sync_all();
            }
            let bytes = fs::metadata(&part.path)
                .map_err(|e| io_error(&part.path, e))?
                .len();
            Ok(bytes)
        })();
        match result {
            Ok(bytes) => {
                self.summary.bytes += bytes;
                self.summary.files.push(part.path);
                Ok(())
            }
            Err(err) => {
                // Keep it around so `run` can discard the temp file.
                self.part = Some(part);
                Err(err)
            }
        }
    }

    /// Deletes the open part's temp file (best effort).
    fn discard_part(&mut self) {
        if let Some(part) = self.part.take() {
            drop(part.writer);
            let _ = fs::remove_file(&part.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers() {
        assert_eq!(part_number("part-00012.parquet", "part"), Some(12));
        assert_eq!(part_number(".part-00003.parquet.tmp", "part"), Some(3));
        assert_eq!(part_number("part-123456.parquet", "part"), Some(123_456));
        assert_eq!(part_number("part-00012.parquet", "other"), None);
        assert_eq!(part_number("part-.parquet", "part"), None);
        assert_eq!(part_number("part-1x.parquet", "part"), None);
        assert_eq!(part_number("part-00001.parquet.tmp", "part"), None);
    }

    #[test]
    fn compression_parses() {
        assert_eq!("zstd".parse::<Compression>().unwrap(), Compression::Zstd(1));
        assert_eq!(
            "ZSTD:3".parse::<Compression>().unwrap(),
            Compression::Zstd(3)
        );
        assert_eq!(
            "zstd(5)".parse::<Compression>().unwrap(),
            Compression::Zstd(5)
        );
        assert_eq!(
            "snappy".parse::<Compression>().unwrap(),
            Compression::Snappy
        );
        assert_eq!("none".parse::<Compression>().unwrap(), Compression::None);
        assert!("zstd:99".parse::<Compression>().is_err());
        assert!("lz4".parse::<Compression>().is_err());
    }

    #[test]
    fn invalid_options_are_rejected() {
        let dir = std::env::temp_dir();
        for options in [
            WriterOptions {
                rows_per_file: 0,
                ..WriterOptions::default()
            },
            WriterOptions {
                file_prefix: "a/b".into(),
                ..WriterOptions::default()
            },
            WriterOptions {
                compression: Compression::Zstd(100),
                ..WriterOptions::default()
            },
        ] {
            assert!(matches!(
                Writer::create(&dir, options),
                Err(StoreError::Options(_))
            ));
        }
    }
}
