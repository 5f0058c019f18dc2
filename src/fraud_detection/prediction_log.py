"""The prediction log's tables and queries: SQLite by default, PostgreSQL with DATABASE_URL."""

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    event,
    exists,
    func,
    inspect,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateIndex

from .errors import PredictionLogError
from .log_record import LOG_COLUMNS, SHADOW, Labels, label_records
from .log_record import utc_now as utc_now  # the log's clock, where it has always been
from .prediction_sink import PRESUMED, PRUNE_BATCH
from .schema import FEATURES, LABEL

log = logging.getLogger(__name__)

metadata = MetaData()

# Times are naive UTC everywhere: SQLite has no time zones, and one convention beats two.
predictions = Table(
    "predictions",
    metadata,
    # 64-bit: a 32-bit id runs out after 2.1 billion rows (249 days at 100 predictions/s).
    # SQLite's INTEGER PRIMARY KEY is the 64-bit rowid already, and only that spelling is.
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("transaction_id", String(128), nullable=False, index=True),
    Column("created_at", DateTime(), nullable=False, index=True),
    Column("endpoint", String(16), nullable=False),
    Column("variant", String(16), nullable=False),
    Column("model_version", String(32), nullable=False),
    *(Column(name, Float, nullable=False) for name in FEATURES),
    Column("probability", Float, nullable=False),
    Column("is_fraud", Boolean, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("latency_ms", Float, nullable=True),
    # The explained rows' TreeSHAP top features (JSON), for the analyst reviewing them.
    Column("explanation", Text, nullable=True),
    # When the transaction happened (its sender's event_time); windows, maturity and cohorts
    # use it, and created_at (the receive time) where it is NULL.
    Column("event_time", DateTime(), nullable=True, index=True),
)

feedback = Table(
    "feedback",
    metadata,
    # One label per transaction: an analyst's correction replaces the earlier label.
    Column("transaction_id", String(128), primary_key=True),
    Column("label", SmallInteger, nullable=False),
    Column("received_at", DateTime(), nullable=False),
    # Where the label came from: review | chargeback | other (labels stored before sources
    # existed read as other), when it was learnt (NULL: when it was received), and who gave it.
    Column("source", String(16), nullable=False, server_default="other"),
    Column("observed_at", DateTime(), nullable=True),
    Column("reviewer", String(128), nullable=True),
)

# Every label ever stored, in order, beside `feedback` (which keeps the current one): the
# review page shows a transaction's earlier labels, and its Undo puts the previous one back.
label_history = Table(
    "label_history",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("transaction_id", String(128), nullable=False, index=True),
    Column("label", SmallInteger, nullable=False),
    Column("source", String(16), nullable=False, server_default="other"),
    Column("reviewer", String(128), nullable=True),
    Column("observed_at", DateTime(), nullable=True),
    Column("received_at", DateTime(), nullable=False),
    Column("undone_at", DateTime(), nullable=True),
    # A reviewer's last label, for Undo, without reading every label ever stored.
    Index("ix_label_history_reviewer", "reviewer", "id"),
)

HAPPENED = func.coalesce(predictions.c.event_time, predictions.c.created_at)
"""When a logged transaction happened: its event time, else when it was received."""
ALERT = (predictions.c.is_fraud == true()) & (predictions.c.variant != SHADOW)
"""A flagged row that was answered (a shadow model's flags reach no one): an analyst's alert."""
# Partial indexes: only the alerts (about 0.2% of rows) pay for them on insert. The review
# queue walks the first in the review policy's order (score, then when it happened); its day
# counts and day filter the second.
Index(
    "ix_predictions_alert_order",
    predictions.c.probability.desc(),
    HAPPENED,
    predictions.c.transaction_id,
    predictions.c.id,
    sqlite_where=ALERT,
    postgresql_where=ALERT,
)
Index("ix_predictions_alert_day", HAPPENED, sqlite_where=ALERT, postgresql_where=ALERT)


def normalise_url(url: str) -> str:
    """DATABASE_URL as SQLAlchemy needs it: plain postgres URLs use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_engine(url: str) -> Engine:
    """An engine for the log; connections fail fast so a down database never stalls a caller."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 5})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {"connect_timeout": 3} if parsed.get_backend_name() == "postgresql" else {}
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets every gunicorn worker append while `fraud monitor` reads.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def is_logging(conn: Connection) -> bool:
    """True once a service has created the log's predictions and labels; tables that later
    versions added (label_history) may still be missing until it restarts."""
    return {predictions.name, feedback.name} <= set(inspect(conn).get_table_names())


def ensure_schema(engine: Engine) -> None:
    """Create the tables, and add columns that later versions introduced to older tables."""
    try:
        missing = set(metadata.tables) - set(inspect(engine).get_table_names())
        try:
            metadata.create_all(engine)
        except SQLAlchemyError:
            # Another worker created the tables between the check and the CREATE: fine.
            if not set(metadata.tables) <= set(inspect(engine).get_table_names()):
                raise
        existing = inspect(engine)
        with engine.begin() as conn:
            for table in metadata.sorted_tables:
                have = {c["name"] for c in existing.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in have:
                        conn.execute(text(_add_column(engine, table.name, column)))
                        log.info("prediction log: added column %s.%s", table.name, column.name)
        _add_indexes(engine)
        if label_history.name in missing:
            _backfill_history(engine)
        _widen_ids(engine)
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {error_reason(exc)}") from exc


def _add_column(engine: Engine, table: str, column: Column[Any]) -> str:
    """The ALTER TABLE that adds `column` to an older table: NULL for its existing rows, or
    its server default (then NOT NULL too, as declared)."""
    kind = column.type.compile(dialect=engine.dialect)
    name = engine.dialect.identifier_preparer.quote(column.name)
    clause = f"ALTER TABLE {table} ADD COLUMN {name} {kind}"
    default = column.server_default
    if default is not None:
        value = str(getattr(default, "arg", ""))
        if "'" in value:
            raise ValueError(f"server default of {column.name} cannot be quoted: {value!r}")
        clause += f" DEFAULT '{value}'" + ("" if column.nullable else " NOT NULL")
    return clause


def _add_indexes(engine: Engine) -> None:
    """Create the indexes later versions introduced on older tables. On a big log each is one
    pass over the table while writers wait (the log writer buffers): run it on a quiet hour."""
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            have = index_names(conn, table.name)
            for index in table.indexes:
                if index.name not in have:
                    # IF NOT EXISTS: another worker may create it between the check and here.
                    conn.execute(CreateIndex(index, if_not_exists=True))
                    log.info("prediction log: added index %s", index.name)


def index_names(conn: Connection, table: str) -> set[str]:
    """The names of a table's indexes, expression indexes included (which SQLAlchemy's
    inspector skips on SQLite)."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    else:
        query = (
            "SELECT indexname FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = :t"
        )
    return {str(name) for (name,) in conn.execute(text(query), {"t": table})}


def _backfill_history(engine: Engine) -> None:
    """Start a new label history with the labels already stored, so Undo never drops one."""
    shared = [c.name for c in label_history.columns if c.name != "id" and c.name in feedback.c]
    unrecorded = ~exists().where(label_history.c.transaction_id == feedback.c.transaction_id)
    query = select(*(feedback.c[name] for name in shared)).where(unrecorded)
    with engine.begin() as conn:
        conn.execute(label_history.insert().from_select(shared, query))


def _widen_ids(engine: Engine) -> None:
    """Move a PostgreSQL log made with 32-bit ids to 64-bit ids, in place. The ALTER rewrites
    the table once under an exclusive lock: writers wait (the service's log writer buffers
    and drops beyond its capacity), so run it on a quiet hour for a big table."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        kind = conn.execute(
            text(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = 'predictions' AND column_name = 'id'"
            )
        ).scalar()
        if kind != "integer":
            return
        conn.execute(text("ALTER TABLE predictions ALTER COLUMN id TYPE BIGINT"))
        sequence = conn.execute(text("SELECT pg_get_serial_sequence('predictions', 'id')")).scalar()
        if sequence:
            conn.execute(text(f"ALTER SEQUENCE {sequence} AS BIGINT"))
        log.info("prediction log: predictions.id widened to BIGINT")


_COPY_TYPE = {
    String: "text",
    Text: "text",
    DateTime: "timestamp",
    Float: "float8",
    Boolean: "bool",
}
COPY_TYPES = [_COPY_TYPE[type(predictions.c[name].type)] for name in LOG_COLUMNS]
"""The PostgreSQL types binary COPY sends LOG_COLUMNS as (varchar takes text's format)."""


def insert_predictions(engine: Engine, rows: Sequence[Sequence[Any]]) -> None:
    """Append logged predictions (value tuples in LOG_COLUMNS order) in one transaction.

    PostgreSQL gets binary COPY, SQLite multi-row INSERTs through the driver: both skip
    SQLAlchemy's own parameter handling, and serving workers share the CPU they use with their
    requests.
    """
    names = ", ".join(engine.dialect.identifier_preparer.quote(c) for c in LOG_COLUMNS)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(f"COPY predictions ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
        return
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    marks = "(" + ", ".join([mark] * len(LOG_COLUMNS)) + ")"
    # B608 accepted: the names are the table's own columns, quoted, and every value is bound.
    sql = f"INSERT INTO predictions ({names}) VALUES {marks}"  # nosec B608
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            conn.exec_driver_sql(sql, list(rows))
        return
    # SQLite: a statement of SQLITE_ROWS rows at a time, so the driver steps (and lets go of
    # the GIL, which request threads then wait to take back) once per chunk, not once per row;
    # the rest row by row, one statement each, as the driver caches one text per size.
    rows = [_sqlite_times(row) for row in rows]
    whole = len(rows) - len(rows) % SQLITE_ROWS
    chunk_sql = sql + f", {marks}" * (SQLITE_ROWS - 1)
    with engine.begin() as conn:
        for start in range(0, whole, SQLITE_ROWS):
            values = tuple(chain.from_iterable(rows[start : start + SQLITE_ROWS]))
            conn.exec_driver_sql(chunk_sql, values)
        if whole < len(rows):
            conn.exec_driver_sql(sql, rows[whole:])


SQLITE_ROWS = 50
"""Rows per multi-row INSERT in SQLite (2,200 values, under its limit of 32,766)."""
_CREATED_AT, _EVENT_TIME = (LOG_COLUMNS.index(name) for name in ("created_at", "event_time"))


def _sqlite_times(row: Sequence[Any]) -> Sequence[Any]:
    """The row with its times as SQLAlchemy writes them in SQLite (text that sorts by time)."""
    happened = row[_EVENT_TIME]
    return (
        *row[:_CREATED_AT],
        sqlite_time(row[_CREATED_AT]),
        *row[_CREATED_AT + 1 : _EVENT_TIME],
        None if happened is None else sqlite_time(happened),
        *row[_EVENT_TIME + 1 :],
    )


def sqlite_time(at: datetime) -> str:
    """`at` as SQLAlchemy's DateTime stores it in SQLite (`2026-03-01 09:30:00.000000`, text
    that sorts by time), for every row: isoformat is C, and only leaves out a zero microsecond
    (strftime is slower, and writes year 1 as `1`)."""
    text = at.isoformat(" ")
    return text if at.microsecond else text + ".000000"


def refused_rows(engine: Engine, exc: BaseException) -> bool:
    """True when the database (or its driver) refused the rows' values, so retrying the same
    rows cannot succeed; False for an outage (connection, disk, locks), which may pass."""
    dbapi = engine.dialect.loaded_dbapi
    # COPY raises the driver's own errors, executemany SQLAlchemy's wrapping of them;
    # ValueError/TypeError: the driver could not encode a value (a lone surrogate, say).
    error = getattr(exc, "orig", None) or exc
    return isinstance(error, dbapi.DataError | dbapi.IntegrityError | ValueError | TypeError)


def store_labels(engine: Engine, labels: Labels) -> None:
    """Upsert labels by transaction id, with their source, when they were learnt and who gave
    them; every one goes to the label history too. PredictionLogError when the DB is down."""
    now = utc_now()
    rows = [
        {
            "transaction_id": record.transaction_id,
            "label": record.label,
            "received_at": now,
            "source": record.source,
            "observed_at": record.observed_at,
            "reviewer": record.reviewer,
        }
        for record in label_records(labels)
    ]
    if not rows:
        return
    insert = (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(feedback)
    statement = insert.on_conflict_do_update(
        index_elements=["transaction_id"],
        set_={name: insert.excluded[name] for name in rows[0] if name != "transaction_id"},
    )
    try:
        with engine.begin() as conn:
            conn.execute(statement, rows)
            conn.execute(label_history.insert(), rows)
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {error_reason(exc)}") from exc


LEARNT = func.coalesce(feedback.c.observed_at, feedback.c.received_at)
"""When a label was learnt: its observed_at, else when it was received."""


def read_window(engine: Engine, since: datetime) -> pd.DataFrame:
    """Predictions that happened since `since` (event time, else receive time) with their
    label (NaN until one arrives), its source and when it was learnt (`label_observed_at`);
    empty when the service has not logged anything yet (no tables)."""
    query = (
        select(
            *(c for c in predictions.columns if c.name not in ("id", "latency_ms")),
            feedback.c.label,
            feedback.c.source,
            type_coerce(LEARNT, DateTime()).label("label_observed_at"),
        )
        .select_from(
            predictions.outerjoin(
                feedback, feedback.c.transaction_id == predictions.c.transaction_id
            )
        )
        .where(type_coerce(HAPPENED, DateTime()) >= since)
        .order_by(predictions.c.id)
    )
    try:
        with engine.connect() as conn:
            if not is_logging(conn):
                frame = pd.DataFrame(columns=[c.name for c in query.selected_columns])
            else:
                frame = pd.read_sql(query, conn)
    except (SQLAlchemyError, pd.errors.DatabaseError) as exc:  # pandas wraps driver errors
        raise PredictionLogError(f"prediction log unavailable: {error_reason(exc)}") from exc
    frame["label"] = frame["label"].astype("float64")
    frame["is_fraud"] = frame["is_fraud"].astype(bool)
    for name in ("created_at", "event_time", "label_observed_at"):
        frame[name] = pd.to_datetime(frame[name])
    return frame


def labelled_chunks(
    engine: Engine, since: datetime, chunk_rows: int = 50_000, until: datetime | None = None
) -> Iterator[pd.DataFrame]:
    """Production rows in the training schema, one per transaction (its latest score),
    `chunk_rows` at a time: only those rows leave the database, one chunk in memory.

    Without `until`, the labelled rows that happened since `since`. With `until`, the span
    `since`..`until` is taken as mature (the caller's horizon): every row of it comes, an
    unlabelled one as legitimate, and a `source` column says where each class came from
    (review, chargeback, other, or presumed)."""
    on = feedback.c.transaction_id == predictions.c.transaction_id
    happened = type_coerce(HAPPENED, DateTime())
    if until is None:
        joined, when = predictions.join(feedback, on), happened >= since
        extra: list[Any] = []
    else:
        joined, when = predictions.outerjoin(feedback, on), happened.between(since, until)
        extra = [func.coalesce(feedback.c.source, PRESUMED)]
    # A transaction scored twice (a retried request, shadow scoring) is one training row.
    latest = (
        select(func.max(predictions.c.id))
        .select_from(joined)
        .where(when)
        .group_by(predictions.c.transaction_id)
    )
    query = (
        select(
            *(predictions.c[name] for name in FEATURES),
            func.coalesce(feedback.c.label, 0),
            *extra,
        )
        .select_from(joined)
        .where(predictions.c.id.in_(latest))
        .order_by(predictions.c.id)
    )
    columns = [*FEATURES, LABEL, *(["source"] if extra else [])]
    try:
        with engine.connect() as conn:
            if not is_logging(conn):
                return
            streamed = conn.execution_options(stream_results=True, yield_per=chunk_rows)
            for part in streamed.execute(query).partitions():
                rows = pd.DataFrame(part, columns=columns)
                rows[list(FEATURES)] = rows[list(FEATURES)].astype("float64")
                rows[LABEL] = rows[LABEL].astype("int64")
                yield rows
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {error_reason(exc)}") from exc


def prune(engine: Engine, before: datetime, batch_rows: int = PRUNE_BATCH) -> tuple[int, int]:
    """Delete the predictions logged before `before`, then the labels received before it
    whose transaction has no prediction left; `batch_rows` per short transaction, so the
    writers never wait on one long delete; the label history of those transactions goes with
    them. Returns (predictions, labels) deleted."""
    stale = predictions.c.created_at < before
    orphan = (feedback.c.received_at < before) & ~exists().where(
        predictions.c.transaction_id == feedback.c.transaction_id
    )
    orphan_history = (label_history.c.received_at < before) & ~exists().where(
        predictions.c.transaction_id == label_history.c.transaction_id
    )
    batches = [
        predictions.delete().where(
            predictions.c.id.in_(select(predictions.c.id).where(stale).limit(batch_rows))
        ),
        feedback.delete().where(
            feedback.c.transaction_id.in_(
                select(feedback.c.transaction_id).where(orphan).limit(batch_rows)
            )
        ),
    ]
    history = label_history.delete().where(
        label_history.c.id.in_(select(label_history.c.id).where(orphan_history).limit(batch_rows))
    )
    deleted = [0, 0, 0]
    try:
        with engine.connect() as conn:
            if not is_logging(conn):
                return 0, 0
            if inspect(conn).has_table(label_history.name):
                batches.append(history)
        for which, statement in enumerate(batches):
            while True:
                with engine.begin() as conn:
                    count = conn.execute(statement).rowcount
                deleted[which] += count
                if count < batch_rows:
                    break
    except SQLAlchemyError as exc:
        raise PredictionLogError(f"prediction log unavailable: {error_reason(exc)}") from exc
    return deleted[0], deleted[1]


def count_rows(engine: Engine) -> int:
    """How many predictions are logged (for operators and tests)."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(predictions)).scalar_one())


def error_reason(exc: BaseException) -> str:
    """The first line of a database error, without the statement and its parameters."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
