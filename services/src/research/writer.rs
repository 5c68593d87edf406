//! The streaming row writers of research exports (CSV, JSON Lines, Parquet) and the data
//! dictionary.
//!
//! A [`RowWriter`] writes rows of [`Cell`]s, typed by its [`Column`]s, into a
//! [`SharedBuffer`]; the exporter drains the buffer after each cohort and sends the bytes on
//! (to the file, or to the HTTP response). What stays in memory is therefore one cohort's
//! rows (CSV, JSON Lines) or one Parquet row group ([`PARQUET_ROW_GROUP_ROWS`] rows, encoded),
//! whatever the number of cohorts.
//!
//! | format | rows | nulls | instants | media type |
//! |---|---|---|---|---|
//! | `csv` | RFC 4180, a header line, UTF-8 | empty field | RFC 3339 UTC (`2025-09-15T07:00:00Z`) | `text/csv` |
//! | `jsonl` | one JSON object a line, keys in column order | `null` | RFC 3339 UTC strings | `application/x-ndjson` |
//! | `parquet` | Parquet (arrow schema embedded), snappy, row groups of [`PARQUET_ROW_GROUP_ROWS`] | null | `timestamp[us, UTC]` | `application/vnd.apache.parquet` |

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, SecondsFormat, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Rows per Parquet row group (and per record batch handed to the Parquet writer).
pub const PARQUET_ROW_GROUP_ROWS: usize = 8192;

/// Why rows could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the export: {0}")]
pub struct WriteError(pub String);

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}
impl From<csv::Error> for WriteError {
    fn from(e: csv::Error) -> Self {
        Self(e.to_string())
    }
}
impl From<parquet::errors::ParquetError> for WriteError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        Self(e.to_string())
    }
}
impl From<arrow_schema::ArrowError> for WriteError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        Self(e.to_string())
    }
}

/// An export's file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// JSON Lines.
    Jsonl,
}

impl Format {
    /// `csv`, `parquet` or `jsonl`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "csv" => Some(Self::Csv),
            "parquet" => Some(Self::Parquet),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    /// The name (and usual file extension).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Parquet => "parquet",
            Self::Jsonl => "jsonl",
        }
    }

    /// The HTTP media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Parquet => "application/vnd.apache.parquet",
            Self::Jsonl => "application/x-ndjson",
        }
    }
}

/// A column's type. Instants are UTC with microsecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// UTF-8 text (arrow `Utf8`).
    Str,
    /// 64-bit signed integer.
    Int,
    /// 64-bit float.
    Float,
    /// true / false.
    Bool,
    /// An instant: arrow `Timestamp(Microsecond, "UTC")`; RFC 3339 text in CSV and JSON Lines.
    Time,
}

impl ColType {
    /// The name in the dictionary: `string`, `int64`, `float64`, `boolean`,
    /// `timestamp[us, UTC]`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Str => "string",
            Self::Int => "int64",
            Self::Float => "float64",
            Self::Bool => "boolean",
            Self::Time => "timestamp[us, UTC]",
        }
    }

    /// The arrow data type.
    pub fn arrow(self) -> DataType {
        match self {
            Self::Str => DataType::Utf8,
            Self::Int => DataType::Int64,
            Self::Float => DataType::Float64,
            Self::Bool => DataType::Boolean,
            Self::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        }
    }
}

/// One column of an export, as the data dictionary describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Its name (the CSV header, the JSON key, the Parquet field).
    pub name: &'static str,
    /// Its type.
    pub ty: ColType,
    /// Whether it may be empty (null).
    pub nullable: bool,
    /// Its unit (`half-days`, `days`, `ratio 0..1`, `pseudonym`, ...), or empty.
    pub unit: &'static str,
    /// What it means.
    pub meaning: String,
}

/// One value of a row. A cell whose variant does not fit its column's type is written as null.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// Text.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float (written as null when not finite).
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An instant.
    Time(DateTime<Utc>),
}

impl Cell {
    /// `Str`, or `Null` for `None`.
    pub fn opt_str(value: Option<impl Into<String>>) -> Self {
        value.map_or(Self::Null, |v| Self::Str(v.into()))
    }

    /// `Int`, or `Null` for `None`.
    pub fn opt_int(value: Option<impl Into<i64>>) -> Self {
        value.map_or(Self::Null, |v| Self::Int(v.into()))
    }

    /// `Float`, or `Null` for `None`.
    pub fn opt_float(value: Option<f64>) -> Self {
        value.map_or(Self::Null, Self::Float)
    }

    /// `Bool`, or `Null` for `None`.
    pub fn opt_bool(value: Option<bool>) -> Self {
        value.map_or(Self::Null, Self::Bool)
    }
}

fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A byte buffer shared between a writer and whoever drains it.
#[derive(Clone, Debug, Default)]
pub struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the bytes written so far, leaving the buffer empty.
    pub fn take(&self) -> Vec<u8> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *guard)
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The arrow schema of `columns` (no metadata).
pub fn arrow_schema(columns: &[Column]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name, c.ty.arrow(), c.nullable))
            .collect::<Vec<_>>(),
    )
}

/// The data dictionary of `columns` as CSV: `column,type,nullable,unit,meaning`, one line a
/// column, in the export's order.
///
/// # Errors
/// [`WriteError`] only if the CSV writer fails (it writes to memory).
pub fn dictionary_csv(columns: &[Column]) -> Result<Vec<u8>, WriteError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["column", "type", "nullable", "unit", "meaning"])?;
    for c in columns {
        writer.write_record([
            c.name,
            c.ty.name(),
            if c.nullable { "yes" } else { "no" },
            c.unit,
            c.meaning.as_str(),
        ])?;
    }
    writer
        .into_inner()
        .map_err(|e| WriteError(e.error().to_string()))
}

enum Inner {
    Csv(Box<csv::Writer<SharedBuffer>>),
    Jsonl(SharedBuffer),
    Parquet {
        writer: Box<ArrowWriter<SharedBuffer>>,
        schema: SchemaRef,
        pending: Vec<Vec<Cell>>,
    },
}

/// Writes rows of one shape in one format into a [`SharedBuffer`].
pub struct RowWriter {
    inner: Inner,
    columns: Vec<Column>,
    rows: u64,
}

impl RowWriter {
    /// A writer of `columns` in `format` into `buffer`; `metadata` goes into the Parquet
    /// footer's key-value metadata (ignored by the other formats). The CSV header is written
    /// at once.
    ///
    /// # Errors
    /// [`WriteError`] when the Parquet writer cannot be set up.
    pub fn new(
        format: Format,
        columns: Vec<Column>,
        buffer: SharedBuffer,
        metadata: Vec<(String, String)>,
    ) -> Result<Self, WriteError> {
        let inner = match format {
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(buffer);
                writer.write_record(columns.iter().map(|c| c.name))?;
                Inner::Csv(Box::new(writer))
            }
            Format::Jsonl => Inner::Jsonl(buffer),
            Format::Parquet => {
                let schema: SchemaRef = Arc::new(arrow_schema(&columns));
                let properties = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(PARQUET_ROW_GROUP_ROWS))
                    .set_created_by(format!("fieldtrail {}", env!("CARGO_PKG_VERSION")))
                    .set_key_value_metadata(Some(
                        metadata
                            .into_iter()
                            .map(|(k, v)| KeyValue::new(k, v))
                            .collect(),
                    ))
                    .build();
                let writer = ArrowWriter::try_new(buffer, schema.clone(), Some(properties))?;
                Inner::Parquet {
                    writer: Box::new(writer),
                    schema,
                    pending: Vec::new(),
                }
            }
        };
        Ok(Self {
            inner,
            columns,
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes one row (cells in column order; missing cells are null, extra ones ignored).
    ///
    /// # Errors
    /// [`WriteError`] from the format's writer.
    pub fn write(&mut self, row: Vec<Cell>) -> Result<(), WriteError> {
        self.rows = self.rows.saturating_add(1);
        match &mut self.inner {
            Inner::Csv(writer) => {
                let fields: Vec<String> = self
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, column)| csv_field(column.ty, row.get(i)))
                    .collect();
                writer.write_record(&fields)?;
            }
            Inner::Jsonl(buffer) => {
                let mut line = String::from("{");
                for (i, column) in self.columns.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(&json_string(column.name));
                    line.push(':');
                    line.push_str(&json_value(column.ty, row.get(i)));
                }
                line.push_str("}\n");
                buffer.write_all(line.as_bytes())?;
            }
            Inner::Parquet {
                writer,
                schema,
                pending,
            } => {
                pending.push(row);
                if pending.len() >= PARQUET_ROW_GROUP_ROWS {
                    let rows = std::mem::take(pending);
                    writer.write(&batch(schema, &self.columns, &rows)?)?;
                }
            }
        }
        Ok(())
    }

    /// Pushes what the format's writer holds into the buffer where the format allows (CSV's
    /// internal buffer; a Parquet writer flushes on its own at each row group).
    ///
    /// # Errors
    /// [`WriteError`] from the format's writer.
    pub fn end_chunk(&mut self) -> Result<(), WriteError> {
        if let Inner::Csv(writer) = &mut self.inner {
            writer.flush()?;
        }
        Ok(())
    }

    /// Writes what is pending and the format's trailer (the Parquet footer); returns the
    /// number of rows written.
    ///
    /// # Errors
    /// [`WriteError`] from the format's writer.
    pub fn finish(self) -> Result<u64, WriteError> {
        match self.inner {
            Inner::Csv(mut writer) => writer.flush()?,
            Inner::Jsonl(mut buffer) => buffer.flush()?,
            Inner::Parquet {
                mut writer,
                schema,
                pending,
            } => {
                if !pending.is_empty() {
                    writer.write(&batch(&schema, &self.columns, &pending)?)?;
                }
                writer.close()?;
            }
        }
        Ok(self.rows)
    }
}

fn csv_field(ty: ColType, cell: Option<&Cell>) -> String {
    match (ty, cell) {
        (ColType::Str, Some(Cell::Str(s))) => s.clone(),
        (ColType::Int, Some(Cell::Int(i))) => i.to_string(),
        (ColType::Float, Some(Cell::Float(f))) if f.is_finite() => f.to_string(),
        (ColType::Bool, Some(Cell::Bool(b))) => b.to_string(),
        (ColType::Time, Some(Cell::Time(t))) => rfc3339(t),
        _ => String::new(),
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn json_value(ty: ColType, cell: Option<&Cell>) -> String {
    match (ty, cell) {
        (ColType::Str, Some(Cell::Str(s))) => json_string(s),
        (ColType::Int, Some(Cell::Int(i))) => i.to_string(),
        (ColType::Float, Some(Cell::Float(f))) => {
            serde_json::Number::from_f64(*f).map_or_else(|| "null".to_owned(), |n| n.to_string())
        }
        (ColType::Bool, Some(Cell::Bool(b))) => b.to_string(),
        (ColType::Time, Some(Cell::Time(t))) => json_string(&rfc3339(t)),
        _ => "null".to_owned(),
    }
}

/// The record batch of `rows` (cells that do not fit their column are null).
fn batch(
    schema: &SchemaRef,
    columns: &[Column],
    rows: &[Vec<Cell>],
) -> Result<RecordBatch, WriteError> {
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| -> ArrayRef {
            let cells = rows.iter().map(|row| row.get(i));
            match column.ty {
                ColType::Str => Arc::new(
                    cells
                        .map(|c| match c {
                            Some(Cell::Str(s)) => Some(s.as_str()),
                            _ => None,
                        })
                        .collect::<StringArray>(),
                ),
                ColType::Int => Arc::new(
                    cells
                        .map(|c| match c {
                            Some(Cell::Int(v)) => Some(*v),
                            _ => None,
                        })
                        .collect::<Int64Array>(),
                ),
                ColType::Float => Arc::new(
                    cells
                        .map(|c| match c {
                            Some(Cell::Float(v)) if v.is_finite() => Some(*v),
                            _ => None,
                        })
                        .collect::<Float64Array>(),
                ),
                ColType::Bool => Arc::new(
                    cells
                        .map(|c| match c {
                            Some(Cell::Bool(v)) => Some(*v),
                            _ => None,
                        })
                        .collect::<BooleanArray>(),
                ),
                ColType::Time => Arc::new(
                    cells
                        .map(|c| match c {
                            Some(Cell::Time(t)) => Some(t.timestamp_micros()),
                            _ => None,
                        })
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone("UTC"),
                ),
            }
        })
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<Column> {
        let col = |name, ty, nullable| Column {
            name,
            ty,
            nullable,
            unit: "",
            meaning: format!("the {name}"),
        };
        vec![
            col("name", ColType::Str, false),
            col("n", ColType::Int, true),
            col("rate", ColType::Float, true),
            col("ok", ColType::Bool, true),
            col("at", ColType::Time, true),
        ]
    }

    fn row(n: i64) -> Vec<Cell> {
        vec![
            Cell::Str(format!("a,\"b\" {n}")),
            Cell::Int(n),
            Cell::Float(f64::NAN),
            Cell::Bool(true),
            Cell::Time(DateTime::from_timestamp(1_757_919_600, 0).unwrap_or_default()),
        ]
    }

    #[test]
    fn csv_and_jsonl_quote_and_write_nulls() {
        let buffer = SharedBuffer::new();
        let mut w = RowWriter::new(Format::Csv, columns(), buffer.clone(), vec![]).unwrap();
        w.write(row(1)).unwrap();
        w.write(vec![Cell::Str("x".into())]).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        let text = String::from_utf8(buffer.take()).unwrap();
        assert_eq!(
            text,
            "name,n,rate,ok,at\n\"a,\"\"b\"\" 1\",1,,true,2025-09-15T07:00:00Z\nx,,,,\n"
        );
        let buffer = SharedBuffer::new();
        let mut w = RowWriter::new(Format::Jsonl, columns(), buffer.clone(), vec![]).unwrap();
        w.write(row(2)).unwrap();
        w.finish().unwrap();
        let line: serde_json::Value = serde_json::from_slice(&buffer.take()).unwrap();
        assert_eq!(
            line,
            serde_json::json!({"name": "a,\"b\" 2", "n": 2, "rate": null, "ok": true, "at": "2025-09-15T07:00:00Z"})
        );
    }

    #[test]
    fn parquet_reads_back_with_the_schema() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let buffer = SharedBuffer::new();
        let mut w = RowWriter::new(
            Format::Parquet,
            columns(),
            buffer.clone(),
            vec![("k".into(), "v".into())],
        )
        .unwrap();
        for n in 0..(PARQUET_ROW_GROUP_ROWS as i64 + 10) {
            w.write(row(n)).unwrap();
        }
        w.finish().unwrap();
        let bytes = bytes::Bytes::from(buffer.take());
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        let fields: Vec<_> = builder.schema().fields().iter().cloned().collect();
        let expected: Vec<_> = arrow_schema(&columns()).fields().iter().cloned().collect();
        assert_eq!(fields, expected);
        assert_eq!(builder.metadata().num_row_groups(), 2);
        let rows: usize = builder
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(rows, PARQUET_ROW_GROUP_ROWS + 10);
    }

    #[test]
    fn a_null_in_a_required_column_is_an_error_not_a_panic() {
        let buffer = SharedBuffer::new();
        let mut w = RowWriter::new(Format::Parquet, columns(), buffer, vec![]).unwrap();
        w.write(vec![Cell::Null]).unwrap();
        assert!(w.finish().is_err());
    }

    #[test]
    fn the_dictionary_lists_every_column() {
        let text = String::from_utf8(dictionary_csv(&columns()).unwrap()).unwrap();
        assert!(text.starts_with("column,type,nullable,unit,meaning\nname,string,no,,the name\n"));
        assert!(text.contains("at,\"timestamp[us, UTC]\",yes,,the at\n"));
    }
}
