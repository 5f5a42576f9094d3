-- schema.sql: the pipeline's tables. Idempotent (CREATE ... IF NOT EXISTS).
-- Template fields (not values): {d_state}, {d_action} - the fixed array sizes of the log
-- contract, validated integers written into the DDL because type parameters cannot be bound.

CREATE TABLE IF NOT EXISTS pipeline_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- The log contract (design card §3); one row per logged recommendation.
CREATE TABLE IF NOT EXISTS interactions (
    event_id          VARCHAR NOT NULL,
    event_time        TIMESTAMPTZ NOT NULL,
    event_date        DATE NOT NULL,
    user_id           VARCHAR NOT NULL,
    episode_id        VARCHAR NOT NULL,
    step              INTEGER NOT NULL,
    state             FLOAT[{d_state}] NOT NULL,
    action            FLOAT[{d_action}] NOT NULL,
    item_id           VARCHAR NOT NULL,
    reward            DOUBLE NOT NULL,
    behavior_logprob  DOUBLE,
    logging_policy    VARCHAR NOT NULL,
    ingest_id         VARCHAR NOT NULL
);

-- 64-bit hashes of the stored event_ids by date: the cross-date duplicate check of the ingest
-- probes these 12-byte rows, so a nightly ingest does not slow down as the history grows (the
-- event_id strings of the dates a hash points at confirm a duplicate exactly).
CREATE TABLE IF NOT EXISTS event_index (
    event_hash  UBIGINT NOT NULL,   -- hash(event_id)
    event_date  DATE NOT NULL
);

-- Rows that broke a contract rule: never dropped, kept raw (as JSON) with the rule's name.
CREATE TABLE IF NOT EXISTS quarantine (
    ingest_id       VARCHAR NOT NULL,
    event_date      DATE NOT NULL,      -- the partition being ingested
    source_file     VARCHAR NOT NULL,
    source_row      BIGINT NOT NULL,    -- 0-based row number within source_file
    event_id        VARCHAR,
    rule            VARCHAR NOT NULL,   -- the first contract rule the row broke
    column_name     VARCHAR NOT NULL,   -- the column that broke it
    raw             JSON NOT NULL,
    quarantined_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS ingest_runs (
    ingest_id         VARCHAR NOT NULL,
    event_date        DATE NOT NULL,
    source_files      VARCHAR[] NOT NULL,
    content_hash      VARCHAR NOT NULL,
    rows_in           BIGINT NOT NULL,
    rows_kept         BIGINT NOT NULL,
    rows_quarantined  BIGINT NOT NULL,
    status            VARCHAR NOT NULL,   -- ingested | skipped_unchanged
    started_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS filter_runs (
    filter_id          VARCHAR NOT NULL,
    window_start       DATE NOT NULL,
    window_end         DATE NOT NULL,
    kappa              DOUBLE NOT NULL,
    partition_by       VARCHAR NOT NULL,  -- none | event_date | segment
    partition_value    VARCHAR NOT NULL,
    rows_in            BIGINT NOT NULL,
    rows_kept          BIGINT NOT NULL,
    nu                 DOUBLE NOT NULL,   -- the top-kappa threshold (VaR, the dual minimiser)
    boundary_fraction  DOUBLE NOT NULL,   -- share of the mass of rows tied at nu that is kept
    kept_share         DOUBLE NOT NULL,   -- kept probability mass (= kappa)
    cvar               DOUBLE NOT NULL,   -- upper-tail CVaR_kappa of the ranked value
    sql_hash           VARCHAR NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
    -- the value ranked (issue 11): reward | return | advantage | q, and its discount; older
    -- warehouses get these two columns from sql/cvar_filter_record.sql
    quality            VARCHAR DEFAULT 'reward',
    gamma              DOUBLE DEFAULT 0.0
);

CREATE TABLE IF NOT EXISTS validation_runs (
    event_date   DATE NOT NULL,
    success      BOOLEAN NOT NULL,
    critical_failures  VARCHAR[] NOT NULL,
    warnings     VARCHAR[] NOT NULL,
    result       JSON NOT NULL,
    validated_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);

-- One row per ingested day: facts about the day's files that are not rows, so that nothing
-- downstream reopens the raw logs (the simulator config the simulator wrote into the Parquet
-- key-value metadata; NULL for logs from elsewhere). Replaced with the day's rows.
CREATE TABLE IF NOT EXISTS day_metadata (
    event_date        DATE NOT NULL,
    ingest_id         VARCHAR NOT NULL,
    simulator_config  JSON              -- NULL: the logs carry none
);
