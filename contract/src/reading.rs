//! The reading: one metric of one device at one time, the unit that travels from the bridge
//! through Kafka and the JDBC sink into the `readings` hypertable.
//!
//! [`FIELDS`] is the one definition of its fields. Three consumers derive from it and must not
//! spell the fields out again:
//! - the bridge's Kafka Connect JsonConverter envelope ([`connect_schema`]),
//! - the JDBC sink's table and upsert key ([`sink_mapping`]),
//! - the table the sink writes into ([`table_ddl`]), created by the database component.
//!
//! Adding a field here changes all three; the bridge's payload struct is checked against
//! [`FIELDS`] by its tests.

use serde::Serialize;

/// A field's type, in the two type systems it crosses. One enum instead of two columns, so a
/// field cannot be a Connect string and a SQL timestamp at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Milliseconds since the epoch: Connect `int64` with the `Timestamp` logical type, which the
    /// sink writes into a `timestamptz`.
    Timestamp,
    Text,
    Double,
}

/// Connect's name for its timestamp logical type.
pub const CONNECT_TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

impl ValueType {
    /// Connect schema `type`.
    pub const fn connect_type(self) -> &'static str {
        match self {
            Self::Timestamp => "int64",
            Self::Text => "string",
            Self::Double => "double",
        }
    }

    /// Connect logical type `name`, if any.
    pub const fn connect_logical_name(self) -> Option<&'static str> {
        match self {
            Self::Timestamp => Some(CONNECT_TIMESTAMP),
            Self::Text | Self::Double => None,
        }
    }

    /// PostgreSQL column type.
    pub const fn sql_type(self) -> &'static str {
        match self {
            Self::Timestamp => "timestamptz",
            Self::Text => "text",
            Self::Double => "double precision",
        }
    }
}

/// One field of a reading: a Connect struct field and a table column of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub value_type: ValueType,
    pub nullable: bool,
    /// Position in the reading's identity (the table's primary key and the sink's upsert key),
    /// or `None` for a field that is not part of it. A redelivered reading has the same identity
    /// and therefore overwrites its row instead of adding a second one.
    pub key_position: Option<usize>,
}

const fn field(name: &'static str, value_type: ValueType, key_position: Option<usize>) -> Field {
    Field {
        name,
        value_type,
        nullable: false,
        key_position,
    }
}

/// The reading's fields, in the order the envelope and the table list them.
///
/// The identity is `(home_id, device_id, metric, time)`: device ids are only unique within a home
/// (`meter-1` exists in many homes), so a key without the home would merge two homes' readings.
/// `time` comes last so the key's index also serves "this device's metric over a time range"; it
/// must be in the key at all because TimescaleDB requires the partitioning column in every
/// unique index of a hypertable.
pub const FIELDS: [Field; 6] = [
    // Device time when the payload had one, else arrival time.
    field("time", ValueType::Timestamp, Some(3)),
    field("home_id", ValueType::Text, Some(0)),
    field("device_id", ValueType::Text, Some(1)),
    field("metric", ValueType::Text, Some(2)),
    field("value", ValueType::Double, None),
    // When the bridge received the message: tells late device clocks and backlogs apart.
    field("arrival_time", ValueType::Timestamp, None),
];

/// The hypertable readings are written into; also the sink's `collection.name.format`.
pub const TABLE: &str = "readings";

/// The hypertable's partitioning column.
pub const TIME_FIELD: &str = "time";

/// Columns of the per-device index, followed by [`TIME_FIELD`] descending: "the last hour of
/// this meter" is the common read path, across all its metrics.
pub const DEVICE_INDEX_FIELDS: [&str; 2] = ["home_id", "device_id"];

/// Name of the Connect struct schema the sink sees.
pub const CONNECT_SCHEMA_NAME: &str = "ehs.Reading";

/// Names of the fields, in order.
pub fn field_names() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|field| field.name)
}

/// The identity's field names, in key order.
pub fn primary_key() -> Vec<&'static str> {
    let mut key: Vec<(usize, &'static str)> = FIELDS
        .iter()
        .filter_map(|field| field.key_position.map(|position| (position, field.name)))
        .collect();
    key.sort_unstable();
    key.into_iter().map(|(_, name)| name).collect()
}

/// The Kafka record key of a reading: `<home_id>/<device_id>`. Records with the same key go to
/// the same partition, so a device's readings keep their order; the home is part of it because
/// device ids repeat across homes. Both ids are whole MQTT topic levels and cannot contain `/`,
/// so the key is unambiguous. Writes into a reused buffer: this runs once per record.
pub fn write_record_key(out: &mut String, home_id: &str, device_id: &str) {
    out.clear();
    out.push_str(home_id);
    out.push(RECORD_KEY_SEPARATOR);
    out.push_str(device_id);
}

/// Separates the home and device ids in the record key.
pub const RECORD_KEY_SEPARATOR: char = '/';

/// Kafka Connect JsonConverter struct schema (`schemas.enable=true`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectSchema {
    #[serde(rename = "type")]
    pub schema_type: &'static str,
    pub fields: Vec<ConnectField>,
    pub optional: bool,
    pub name: &'static str,
}

/// One field of a [`ConnectSchema`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectField {
    #[serde(rename = "type")]
    pub field_type: &'static str,
    pub optional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub field: &'static str,
}

/// The envelope schema of a reading, from [`FIELDS`].
pub fn connect_schema() -> ConnectSchema {
    ConnectSchema {
        schema_type: "struct",
        fields: FIELDS
            .iter()
            .map(|field| {
                let logical = field.value_type.connect_logical_name();
                ConnectField {
                    field_type: field.value_type.connect_type(),
                    optional: field.nullable,
                    name: logical,
                    version: logical.map(|_| 1),
                    field: field.name,
                }
            })
            .collect(),
        optional: false,
        name: CONNECT_SCHEMA_NAME,
    }
}

/// What a JDBC sink connector needs to upsert readings into [`TABLE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkMapping {
    /// Target table (Debezium: `collection.name.format`).
    pub table: &'static str,
    /// Upsert key, taken from the record value (Debezium: `primary.key.mode=record_value`).
    pub primary_key_fields: Vec<&'static str>,
}

impl SinkMapping {
    /// The key as a connector property value: `home_id,device_id,metric,time`.
    pub fn primary_key_fields_property(&self) -> String {
        self.primary_key_fields.join(",")
    }
}

pub fn sink_mapping() -> SinkMapping {
    SinkMapping {
        table: TABLE,
        primary_key_fields: primary_key(),
    }
}

/// SQL creating the readings hypertable, its primary key (the sink's upsert key) and the
/// per-device index. Idempotent; needs the `timescaledb` extension.
pub fn table_ddl() -> String {
    let width = field_names().map(str::len).max().unwrap_or(0);
    let columns: Vec<String> = FIELDS
        .iter()
        .map(|field| {
            let null = if field.nullable { "NULL" } else { "NOT NULL" };
            let column = format!(
                "{:width$} {} {null}",
                field.name,
                field.value_type.sql_type()
            );
            format!("    {column},\n")
        })
        .collect();
    let device_index = DEVICE_INDEX_FIELDS.join(", ");
    format!(
        "-- Generated from ehs_contract::reading::FIELDS; edit the fields there, not here.\n\
         CREATE TABLE IF NOT EXISTS {TABLE} (\n\
         {columns}    PRIMARY KEY ({key})\n\
         );\n\
         SELECT create_hypertable('{TABLE}', by_range('{TIME_FIELD}'), if_not_exists => TRUE);\n\
         CREATE INDEX IF NOT EXISTS {TABLE}_device_time_idx ON {TABLE} ({device_index}, {TIME_FIELD} DESC);\n",
        columns = columns.concat(),
        key = primary_key().join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_positions_number_the_identity_without_gaps() {
        let mut positions: Vec<usize> = FIELDS.iter().filter_map(|f| f.key_position).collect();
        positions.sort_unstable();
        assert_eq!(positions, (0..positions.len()).collect::<Vec<_>>());
        assert_eq!(primary_key(), ["home_id", "device_id", "metric", "time"]);
    }

    #[test]
    fn partitioning_and_index_columns_are_fields_and_time_is_in_the_key() {
        assert!(primary_key().contains(&TIME_FIELD), "TimescaleDB needs it");
        for name in DEVICE_INDEX_FIELDS.iter().chain([&TIME_FIELD]) {
            assert!(field_names().any(|field| field == *name), "{name}");
        }
        let time = FIELDS.iter().find(|f| f.name == TIME_FIELD).expect("time");
        assert_eq!(time.value_type, ValueType::Timestamp);
        assert!(!time.nullable);
    }

    #[test]
    fn key_fields_are_never_null() {
        for field in FIELDS.iter().filter(|f| f.key_position.is_some()) {
            assert!(!field.nullable, "{}", field.name);
        }
    }

    #[test]
    fn connect_schema_lists_every_field_in_order() {
        let schema = connect_schema();
        let names: Vec<_> = schema.fields.iter().map(|f| f.field).collect();
        assert_eq!(names, field_names().collect::<Vec<_>>());
        for (connect, field) in schema.fields.iter().zip(FIELDS) {
            assert_eq!(connect.field_type, field.value_type.connect_type());
            assert_eq!(connect.optional, field.nullable);
        }
        assert_eq!(schema.fields[0].name, Some(CONNECT_TIMESTAMP));
        assert_eq!(schema.fields[1].name, None);
    }

    /// Parses the generated DDL back, so the table cannot drift from [`FIELDS`].
    #[test]
    fn ddl_columns_and_key_equal_the_fields() {
        let ddl = table_ddl();
        let body = ddl
            .split_once(&format!("CREATE TABLE IF NOT EXISTS {TABLE} (\n"))
            .and_then(|(_, rest)| rest.split_once("\n);"))
            .expect("a CREATE TABLE statement")
            .0;
        let mut lines: Vec<&str> = body
            .lines()
            .map(|l| l.trim().trim_end_matches(','))
            .collect();
        let key = lines.pop().expect("primary key line");
        let columns: Vec<(String, String)> = lines
            .iter()
            .map(|line| {
                let (name, rest) = line.split_once(' ').expect("name and type");
                (name.to_owned(), rest.trim().to_owned())
            })
            .collect();
        let expected: Vec<(String, String)> = FIELDS
            .iter()
            .map(|f| {
                (
                    f.name.to_owned(),
                    format!("{} NOT NULL", f.value_type.sql_type()),
                )
            })
            .collect();
        assert_eq!(columns, expected);
        assert_eq!(key, "PRIMARY KEY (home_id, device_id, metric, time)");
        assert!(
            ddl.contains("create_hypertable('readings', by_range('time')"),
            "{ddl}"
        );
        assert!(
            ddl.contains("ON readings (home_id, device_id, time DESC)"),
            "{ddl}"
        );
    }

    #[test]
    fn sink_upserts_on_the_table_key() {
        let mapping = sink_mapping();
        assert_eq!(mapping.table, TABLE);
        assert_eq!(mapping.primary_key_fields, primary_key());
        assert_eq!(
            mapping.primary_key_fields_property(),
            "home_id,device_id,metric,time"
        );
    }

    #[test]
    fn record_key_includes_the_home() {
        let mut key = String::from("stale");
        write_record_key(&mut key, "home-1", "meter-1");
        assert_eq!(key, "home-1/meter-1");
        let mut other = String::new();
        write_record_key(&mut other, "home-2", "meter-1");
        assert_ne!(key, other, "the same device id in two homes");
    }
}
