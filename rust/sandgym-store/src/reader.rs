//! Reading part files (or a whole output directory) back into trajectories.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;

use crate::batch::from_record_batch;
use crate::schema::{SCHEMA_VERSION_KEY, check_schema};
use crate::trajectory::Trajectory;
use crate::{Result, StoreError, io_error};

/// Prefixes an error's message with the file it concerns.
fn in_file(path: &Path, err: StoreError) -> StoreError {
    let at = path.display();
    match err {
        StoreError::Schema(message) => StoreError::Schema(format!("{at}: {message}")),
        StoreError::Parquet(e) => StoreError::Parquet(ParquetError::General(format!("{at}: {e}"))),
        StoreError::Arrow(e) => StoreError::Parquet(ParquetError::General(format!("{at}: {e}"))),
        other => other,
    }
}

/// The Parquet files `path` stands for: the file itself, or the `*.parquet` files directly inside a
/// directory (hidden files such as in-progress `.part-NNNNN.parquet.tmp` excluded), sorted by name.
pub fn parquet_files(path: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let path = path.as_ref();
    let meta = fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| io_error(path, e))? {
        let entry = entry.map_err(|e| io_error(path, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !name.ends_with(".parquet") {
            continue;
        }
        let file_path = entry.path();
        if fs::metadata(&file_path).is_ok_and(|m| m.is_file()) {
            files.push(file_path);
        }
    }
    files.sort();
    Ok(files)
}

/// Opens a file for reading after checking its schema.
///
/// The Arrow schema embedded by the writer is used first. If it is not ours, which happens when another
/// tool rewrote the data with its own Arrow types (polars writes `large_string` and `large_list`), the
/// plain Parquet types are tried instead: they map to `utf8` and `list` and may pass. A file that
/// declares another schema version is refused outright.
fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let spare = file.try_clone().map_err(|e| io_error(path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let Err(err) = check_schema(builder.schema()) else {
        return Ok(builder);
    };
    if builder.schema().metadata().contains_key(SCHEMA_VERSION_KEY) {
        // Our own metadata survived, so the embedded types are authoritative (or the version differs).
        return Err(err);
    }
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let plain = ArrowReaderMetadata::try_new(builder.metadata().clone(), options)?;
    if check_schema(plain.schema()).is_ok() {
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
            spare, plain,
        ))
    } else {
        Err(err)
    }
}

/// Reads every row of one Parquet file. Fails, naming the file, if it is not a trajectory table.
pub fn read_file(path: impl AsRef<Path>) -> Result<Vec<Trajectory>> {
    let path = path.as_ref();
    let read = || -> Result<Vec<Trajectory>> {
        let mut rows = Vec::new();
        for batch in open(path)?.build()? {
            rows.extend(from_record_batch(&batch?)?);
        }
        Ok(rows)
    };
    read().map_err(|e| in_file(path, e))
}

/// Reads a `.parquet` file, or all `*.parquet` files of a directory in name order (see
/// [`parquet_files`]), into memory. An empty directory gives no rows.
pub fn read_dir_or_file(path: impl AsRef<Path>) -> Result<Vec<Trajectory>> {
    let mut rows = Vec::new();
    for file in parquet_files(path)? {
        rows.extend(read_file(&file)?);
    }
    Ok(rows)
}

/// Counts the rows of a file or directory (as for [`read_dir_or_file`]) from the Parquet footers
/// alone, checking that each file is a trajectory table.
pub fn count_rows(path: impl AsRef<Path>) -> Result<u64> {
    let mut total = 0u64;
    for file in parquet_files(path)? {
        let builder = open(&file).map_err(|e| in_file(&file, e))?;
        let rows = builder.metadata().file_metadata().num_rows();
        total += u64::try_from(rows).map_err(|_| {
            StoreError::Schema(format!(
                "{}: negative row count {rows} in the footer",
                file.display()
            ))
        })?;
    }
    Ok(total)
}

/// The `episode_id`s already stored in a file or directory (empty when the directory does not exist),
/// reading only that column. A resumed run skips these episodes.
pub fn episode_ids(path: impl AsRef<Path>) -> Result<std::collections::HashSet<String>> {
    let path = path.as_ref();
    let mut ids = std::collections::HashSet::new();
    if !path.exists() {
        return Ok(ids);
    }
    for file in parquet_files(path)? {
        let mut read = || -> Result<()> {
            let builder = open(&file)?;
            let mask =
                parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), ["episode_id"]);
            for batch in builder.with_projection(mask).build()? {
                let batch = batch?;
                let column = batch
                    .column_by_name("episode_id")
                    .and_then(|c| c.as_any().downcast_ref::<arrow_array::StringArray>())
                    .ok_or_else(|| {
                        StoreError::Schema("`episode_id` is not a utf8 column".into())
                    })?;
                ids.extend(column.iter().flatten().map(str::to_string));
            }
            Ok(())
        };
        read().map_err(|e| in_file(&file, e))?;
    }
    Ok(ids)
}
