//! sandgym's trajectory store: the row one finished episode becomes, and the Parquet files rows live in.
//! It knows nothing of envs, policies or wasm; the core fills rows, this crate encodes, writes and reads
//! them, and owns the project's Parquet settings.
//!
//! - [`trajectory`]: the row ([`Trajectory`]) and the per-turn record of how the policy acted;
//! - `columns.rs`: the one list of columns, from which the [`schema`], the encoder and the decoder are
//!   generated (each Rust field type knows its Arrow column, `column.rs`); `docs/schema.md` documents
//!   them column by column;
//! - [`to_record_batch`] / [`from_record_batch`]: rows to an Arrow batch and back;
//! - [`Writer`]: streams rows to a directory of `part-NNNNN.parquet` files from a background thread behind a
//!   bounded channel, publishing each part by an atomic rename once it is complete;
//! - [`read_dir_or_file`] / [`count_rows`]: read a part file or a whole output directory back;
//! - [`TableWriter`] / [`read_columns`]: Parquet files of other tables, with the same settings;
//! - [`tokens`]: an episode's turns' token ids as one masked sequence ([`EpisodeTokens`]).

mod batch;
mod column;
mod columns;
mod reader;
mod schema;
mod table;
pub mod tokens;
pub mod trajectory;
mod writer;

pub use batch::{from_record_batch, to_record_batch};
pub use columns::{ADDED_COLUMNS, col};
pub use reader::{count_rows, episode_ids, parquet_files, read_dir_or_file, read_file};
pub use schema::{SCHEMA_VERSION, SCHEMA_VERSION_KEY, check_schema, schema, type_name};
pub use table::{TableWriter, read_columns};
pub use tokens::{EpisodeTokens, TokenGap};
pub use trajectory::{PolicyTurn, Trajectory, TurnChunk};
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
