//! Writing the generated tables as CSV or Parquet, a chunk at a time.

use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::SampleFormat;
use crate::error::{Error, Result};

/// Column buffers for one output table.
#[derive(Default)]
pub(super) struct Table {
    pub(super) columns: Vec<Column>,
}

impl Table {
    pub(super) fn push(&mut self, c: Column) {
        self.columns.push(c);
    }
    pub(super) fn frame(self) -> Result<DataFrame> {
        Ok(DataFrame::new_infer_height(self.columns)?)
    }
}

pub(super) fn date_column(name: &str, days: Vec<i32>) -> Result<Column> {
    Ok(Column::new(name.into(), days).cast(&DataType::Date)?)
}

/// Accounts per chunk: the tables are generated and written a chunk of
/// accounts at a time, so memory is one chunk's rows whatever the number of
/// accounts (the alternative schema, for small test data, holds its list).
pub(super) const CHUNK: usize = 50_000;

pub(super) enum Writer {
    Csv(polars::io::csv::write::BatchedWriter<std::fs::File>),
    Parquet(polars::io::parquet::write::BatchedWriter<std::fs::File>),
}

/// One output table, written a chunk at a time.
pub(super) struct Sink {
    pub(super) path: PathBuf,
    pub(super) format: SampleFormat,
    pub(super) writer: Option<Writer>,
    pub(super) rows: usize,
}

impl Sink {
    pub(super) fn new(dir: &Path, stem: &str, format: SampleFormat) -> Sink {
        let path = dir.join(match format {
            SampleFormat::Csv => format!("{stem}.csv"),
            SampleFormat::Parquet => format!("{stem}.parquet"),
        });
        Sink {
            path,
            format,
            writer: None,
            rows: 0,
        }
    }

    pub(super) fn write(&mut self, df: DataFrame) -> Result<()> {
        if self.writer.is_none() {
            let file = std::fs::File::create(&self.path)
                .map_err(|e| Error::io("creating", &self.path, e))?;
            let schema = df.schema();
            self.writer = Some(match self.format {
                SampleFormat::Csv => Writer::Csv(CsvWriter::new(file).batched(schema)?),
                SampleFormat::Parquet => Writer::Parquet(ParquetWriter::new(file).batched(schema)?),
            });
        }
        match self.writer.as_mut().expect("created above") {
            Writer::Csv(w) => w.write_batch(&df)?,
            Writer::Parquet(w) => w.write_batch(&df)?,
        }
        self.rows += df.height();
        Ok(())
    }

    /// Close the file: its name and row count.
    pub(super) fn finish(self) -> Result<(String, usize)> {
        match self.writer {
            Some(Writer::Csv(mut w)) => w.finish()?,
            Some(Writer::Parquet(w)) => {
                w.finish()?;
            }
            None => {
                return Err(Error::Internal(format!(
                    "{} got no rows",
                    self.path.display()
                )))
            }
        }
        let name = self
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok((name, self.rows))
    }
}
