-- The hypertable the Kafka Connect JDBC sink writes ehs-bridge readings into.
-- One row per metric ("long" format); the columns match the fields of the bridge's
-- connect-json schema `ehs.Reading` (bridge/src/encode.rs), Timestamp fields as timestamptz.
CREATE TABLE IF NOT EXISTS readings (
    time         timestamptz      NOT NULL,
    home_id      text             NOT NULL,
    device_id    text             NOT NULL,
    metric       text             NOT NULL,
    value        double precision NOT NULL,
    arrival_time timestamptz      NOT NULL
);

SELECT create_hypertable('readings', 'time', if_not_exists => TRUE);

-- Per-device queries ("last hour of meter X") are the common read path.
CREATE INDEX IF NOT EXISTS readings_device_time_idx ON readings (device_id, time DESC);
