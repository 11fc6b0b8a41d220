//! Turns finished trajectories into Parquet. Knows the schema; knows nothing of envs or policies.
//!
//! One [`Trajectory`](crate::trajectory::Trajectory) is one row. The pieces:
//!
//! - [`schema`]: the single source of the column layout (documented column by column in `docs/schema.md`);
//! - [`to_record_batch`] / [`from_record_batch`]: rows to an Arrow batch and back, built from flat buffers
//!   (offsets + child arrays) rather than nested builders;
//! - [`Writer`]: streams rows to a directory of `part-NNNNN.parquet` files from a background thread behind a
//!   bounded channel, publishing each part by an atomic rename once it is complete;
//! - [`read_dir_or_file`] / [`count_rows`]: read a part file or a whole output directory back.

mod batch;
mod policy_turns;
mod reader;
mod schema;
mod writer;

pub use batch::{from_record_batch, to_record_batch};
pub use reader::{count_rows, episode_ids, parquet_files, read_dir_or_file, read_file};
pub use schema::{SCHEMA_VERSION, SCHEMA_VERSION_KEY, check_schema, schema, type_name};
pub use writer::{BATCH_BYTES, Compression, WriteSummary, Writer, WriterOptions};

/// What can go wrong while storing or loading trajectories.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed; the message names the path involved.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The Parquet encoder or decoder failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building or reading an Arrow array failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The data does not fit the trajectory schema: a foreign file or batch (missing or mistyped column,
    /// other schema version), a null in a non-nullable column, an unknown role, or a batch too large for
    /// 32-bit offsets.
    #[error("{0}")]
    Schema(String),
    /// [`WriterOptions`] holds a value the writer cannot use.
    #[error("invalid writer options: {0}")]
    Options(String),
    /// The background writer thread stopped after an earlier error (already returned once) or a panic.
    #[error("trajectory writer stopped: {0}")]
    WriterStopped(String),
}

/// Result of the store's operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Wraps an I/O error so its message names `path`, keeping its kind.
pub(crate) fn io_error(path: &std::path::Path, err: std::io::Error) -> StoreError {
    StoreError::Io(std::io::Error::new(
        err.kind(),
        format!("{}: {err}", path.display()),
    ))
}
