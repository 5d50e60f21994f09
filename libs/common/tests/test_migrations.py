"""Numbered migrations on a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from parley_common.db.migrate import MigrationError, apply_migrations, load_migrations

S1_COLUMNS = {
    "voice_sessions": {
        "duration_seconds",
        "total_turns",
        "interruptions_count",
        "user_id",
        "started_at",
    },
    "voice_analytics": {
        "stt_provider",
        "tts_provider",
        "characters_transcribed",
        "characters_synthesized",
        "audio_seconds_processed",
        "estimated_cost_usd",
        "user_id",
        "recorded_at",
    },
    "voice_configs": {"tts_voice", "tts_speed", "tts_pitch", "stt_language", "audio_format"},
    "voice_transcripts": {"role", "text", "confidence", "interrupted", "language"},
    "custom_voices": {"name", "description", "provider", "provider_voice_id"},
    "voice_usage": {"service", "provider", "quantity", "unit", "cost_usd"},
    "voice_errors": {"service", "code", "message"},
}


async def _schema(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
    rows = await conn.fetch(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public' ORDER BY 1, 2"""
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def test_applying_twice_changes_nothing_the_second_time(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        before = await _schema(conn)
        recorded = await conn.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
        assert await apply_migrations(conn) == []
        assert await _schema(conn) == before
        again = await conn.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
        assert [tuple(r) for r in again] == [tuple(r) for r in recorded]
        assert {r["version"] for r in recorded} == {m.version for m in load_migrations()}
    finally:
        await conn.close()


async def test_tables_have_every_column_s1_queries(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        columns: dict[str, set[str]] = {}
        for table, column, _ in await _schema(conn):
            columns.setdefault(table, set()).add(column)
    finally:
        await conn.close()
    for table, needed in S1_COLUMNS.items():
        assert needed <= columns.get(table, set()), f"{table} lacks {needed - columns[table]}"


async def test_fresh_database_applies_all_then_detects_edited_migration(
    postgres_server: object, tmp_path: Path, database_url: str
) -> None:
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute("DROP DATABASE IF EXISTS migrate_scratch")
        await admin.execute("CREATE DATABASE migrate_scratch")
    finally:
        await admin.close()
    scratch_url = database_url.rsplit("/", 1)[0] + "/migrate_scratch"
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (id int);")
    (tmp_path / "0002_second.sql").write_text("CREATE TABLE t2 (id int);")
    conn = await asyncpg.connect(scratch_url)
    try:
        assert await apply_migrations(conn, load_migrations(tmp_path)) == [1, 2]
        assert await apply_migrations(conn, load_migrations(tmp_path)) == []
        (tmp_path / "0002_second.sql").write_text("CREATE TABLE t2 (id bigint);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, load_migrations(tmp_path))
    finally:
        await conn.close()


async def test_a_failing_migration_is_rolled_back_and_not_recorded(
    tmp_path: Path, database_url: str
) -> None:
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute("DROP DATABASE IF EXISTS migrate_broken")
        await admin.execute("CREATE DATABASE migrate_broken")
    finally:
        await admin.close()
    (tmp_path / "0001_broken.sql").write_text("CREATE TABLE half (id int); SELECT nope;")
    conn = await asyncpg.connect(database_url.rsplit("/", 1)[0] + "/migrate_broken")
    try:
        with pytest.raises(asyncpg.PostgresError):
            await apply_migrations(conn, load_migrations(tmp_path))
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 0
    finally:
        await conn.close()
