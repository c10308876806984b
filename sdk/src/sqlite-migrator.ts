import type Database from 'better-sqlite3';

/**
 * The one migrator shape (the hub's database uses the same one): numbered migrations, each
 * run in its own transaction together with the bump of PRAGMA user_version, so a crash
 * mid-migration leaves the previous version intact; a newer schema than `migrations` knows
 * is refused with the error `tooNew` builds. Never edit a released migration: append one.
 */
export function migrateSqlite(
  db: Database.Database,
  migrations: readonly string[],
  tooNew: (found: number, known: number) => Error,
): { fromVersion: number; toVersion: number } {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) throw tooNew(current, migrations.length);
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      db.exec(migrations[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
  return { fromVersion: current, toVersion: migrations.length };
}
