//! Parquet files of tables other than trajectories (trainer datasets, early-experience branches and
//! datasets, reflections read back): written with the same settings as the trajectory parts (zstd level
//! 1), so that the rest of sandgym never names the Parquet crate.

use std::fs::File;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::{Result, StoreError};

/// A Parquet file of any Arrow schema, written batch by batch.
pub struct TableWriter {
    inner: ArrowWriter<File>,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter").finish_non_exhaustive()
    }
}

impl TableWriter {
    /// Starts a file of `schema` in `file`; `row_group_rows` bounds the rows of a row group (parquet's
    /// default, about a million, when `None`).
    pub fn new(file: File, schema: SchemaRef, row_group_rows: Option<usize>) -> Result<Self> {
        let level = ZstdLevel::try_new(1).map_err(|e| StoreError::Options(e.to_string()))?;
        let mut properties = WriterProperties::builder().set_compression(Compression::ZSTD(level));
        if let Some(rows) = row_group_rows {
            properties = properties.set_max_row_group_row_count(Some(rows));
        }
        let inner = ArrowWriter::try_new(file, schema, Some(properties.build()))?;
        Ok(TableWriter { inner })
    }

    /// Appends one batch (of the writer's schema).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        Ok(self.inner.write(batch)?)
    }

    /// Writes the footer and closes the file.
    pub fn close(self) -> Result<()> {
        self.inner.close()?;
        Ok(())
    }
}

/// Reads the named columns of a Parquet file, in batches. A column the file lacks is a
/// [`StoreError::Schema`] naming it.
pub fn read_columns(file: File, names: &[&str]) -> Result<Vec<RecordBatch>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    if let Some(missing) = names
        .iter()
        .find(|name| builder.schema().field_with_name(name).is_err())
    {
        return Err(StoreError::Schema(format!("no `{missing}` column")));
    }
    let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().copied());
    let reader = builder.with_projection(mask).build()?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}
