import GRDB

/// The schema, as named migrations applied in order. Never edit a shipped
/// migration: add a new one.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-core") { db in
            try db.create(table: "minihost_api_clients") { t in
                t.primaryKey("client_key", .text)
                t.column("secret_hash", .text).notNull()
                t.column("scopes", .text).notNull()
                t.column("active", .boolean).notNull().defaults(to: true)
                t.column("created_at", .datetime).notNull()
                t.column("revoked_at", .datetime)
            }
            // One row per stored file, whichever dialect made it. `owner_kind` +
            // `owner_id` say who may act on it; `client_key` is the minihost view of that.
            try db.create(table: "minihost_uploads") { t in
                t.primaryKey("id", .text)
                t.column("owner_kind", .text).notNull()
                t.column("owner_id", .text).notNull()
                t.column("file_name", .text).notNull()
                t.column("content_type", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("sha256", .text).notNull()
                t.column("blob", .text)  // NULL once purged
                t.column("state", .text).notNull()
                    .check(sql: "state IN ('receiving', 'ready', 'purged')")
                t.column("created_at", .datetime).notNull()
                t.column("finished_at", .datetime)
                t.column("purged_at", .datetime)
                t.column("app_payload", .text)  // JSON object
                t.column("app_handled_at", .datetime)
                t.column("expires_at", .datetime)
                t.column("max_downloads", .integer)
                t.column("download_count", .integer).notNull().defaults(to: 0)
                t.column("password_hash", .text)
                t.column("public_id", .text).unique()
            }
            try db.execute(sql: """
                ALTER TABLE minihost_uploads ADD COLUMN client_key TEXT
                GENERATED ALWAYS AS (CASE WHEN owner_kind = 'api_client' THEN owner_id END) VIRTUAL
                """)
            try db.create(index: "minihost_uploads_owner", on: "minihost_uploads", columns: ["owner_kind", "owner_id", "created_at"])
            try db.create(index: "minihost_uploads_blob", on: "minihost_uploads", columns: ["blob"])
            try db.create(index: "minihost_uploads_unhandled", on: "minihost_uploads", columns: ["state", "app_handled_at", "created_at"])

            try db.create(table: "minihost_uploads_publish") { t in
                t.primaryKey("upload_id", .text).references("minihost_uploads", onDelete: .cascade)
                t.column("status", .text).notNull().check(sql: "status IN ('published', 'unpublished')")
                t.column("published_at", .datetime)
                t.column("updated_at", .datetime).notNull()
            }
            try db.create(table: "minihost_audit_log") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull()
                t.column("actor", .text).notNull()
                t.column("action", .text).notNull()
                t.column("upload_id", .text)
                t.column("status", .integer).notNull()
                t.column("remote_addr", .text)
                t.column("detail", .text)
            }
            try db.create(table: "minihost_operators") { t in
                t.primaryKey("username", .text)
                t.column("password_hash", .text).notNull()
                t.column("created_at", .datetime).notNull()
            }
            try db.create(table: "minihost_operator_sessions") { t in
                t.primaryKey("token_hash", .text)
                t.column("username", .text).notNull().references("minihost_operators", onDelete: .cascade)
                t.column("created_at", .datetime).notNull()
                t.column("expires_at", .datetime).notNull()
                t.column("revoked_at", .datetime)
            }
        }
        // Accounts for the plain dialect: users (scrypt primary password,
        // quota), a folder tree per user, and revocable secondary passwords
        // scoped to a subtree.
        migrator.registerMigration("v2-accounts") { db in
            try db.create(table: "minihost_users") { t in
                t.primaryKey("username", .text)
                t.column("password_hash", .text).notNull()
                t.column("quota_bytes", .integer)  // NULL: no limit
                t.column("created_at", .datetime).notNull()
            }
            try db.create(table: "minihost_folders") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("username", .text).notNull().references("minihost_users", onDelete: .cascade)
                t.column("parent_id", .integer).references("minihost_folders", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("created_at", .datetime).notNull()
            }
            try db.create(index: "minihost_folders_parent", on: "minihost_folders", columns: ["username", "parent_id", "name"],
                          unique: true)
            try db.create(table: "minihost_secondary_passwords") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("username", .text).notNull().references("minihost_users", onDelete: .cascade)
                t.column("label", .text).notNull()
                // The password's public part: it names the row, so one scrypt
                // per request checks it instead of one per secondary password.
                t.column("lookup", .text).notNull().unique()
                t.column("password_hash", .text).notNull()
                t.column("folder_scope_id", .integer).references("minihost_folders", onDelete: .cascade)
                t.column("can_list", .boolean).notNull()
                t.column("can_edit", .boolean).notNull()
                t.column("is_api_key", .boolean).notNull()
                t.column("created_at", .datetime).notNull()
                t.column("last_used_at", .datetime)
                t.column("revoked_at", .datetime)
            }
            try db.execute(sql: """
                CREATE UNIQUE INDEX minihost_secondary_label ON minihost_secondary_passwords(username, label)
                WHERE revoked_at IS NULL
                """)
        }
        // Resumable uploads: one durable mechanism for every chunked protocol.
        // A session row, one row per acknowledged chunk, and each chunk's bytes
        // in its own fsync'd file under tmp/sessions/<id>/.
        migrator.registerMigration("v3-upload-sessions") { db in
            try db.create(table: "minihost_upload_sessions") { t in
                t.primaryKey("id", .text)
                t.column("owner_kind", .text).notNull()
                t.column("owner_id", .text).notNull()
                t.column("file_name", .text).notNull()
                t.column("content_type", .text).notNull()
                t.column("declared_size", .integer).notNull()
                t.column("folder_id", .integer)
                t.column("options", .text)  // JSON object of dialect flags
                t.column("state", .text).notNull().check(sql: "state IN ('open', 'assembling', 'completed')")
                t.column("assembling_since", .datetime)
                t.column("upload_id", .text).references("minihost_uploads", onDelete: .setNull)
                t.column("created_at", .datetime).notNull()
                t.column("expires_at", .datetime).notNull()
            }
            try db.alter(table: "minihost_uploads") { t in
                t.add(column: "folder_id", .integer).references("minihost_folders", onDelete: .setNull)
                // Plain dialect link behaviour: Raw as an attachment; Link without the HTML page.
                t.add(column: "force_download", .boolean).notNull().defaults(to: false)
                t.add(column: "skip_embedded_page", .boolean).notNull().defaults(to: false)
            }
            try db.create(index: "minihost_upload_sessions_expiry", on: "minihost_upload_sessions", columns: ["expires_at"])
            try db.create(table: "minihost_upload_session_chunks") { t in
                t.column("session_id", .text).notNull().references("minihost_upload_sessions", onDelete: .cascade)
                t.column("chunk_index", .integer).notNull()
                t.column("size", .integer).notNull()
                t.column("sha256", .text).notNull()
                t.primaryKey(["session_id", "chunk_index"])
            }
        }
        migrator.registerMigration("v4-chunks-in-place") { db in
            // Chunks of one size are written straight into one file per
            // session at index × chunk_size; finish then hashes and links it
            // instead of copying every byte again. chunk_size is fixed by the
            // first chunk; -1 once finishing started (no more writes in place).
            try db.alter(table: "minihost_upload_sessions") { t in
                t.add(column: "chunk_size", .integer)
            }
            // file_offset: where an in-place chunk's bytes are in the session
            // file; NULL for a chunk kept in its own file. In-place chunks
            // aren't hashed on their own, so sha256 becomes optional.
            try db.create(table: "minihost_upload_session_chunks_v4") { t in
                t.column("session_id", .text).notNull().references("minihost_upload_sessions", onDelete: .cascade)
                t.column("chunk_index", .integer).notNull()
                t.column("size", .integer).notNull()
                t.column("sha256", .text)
                t.column("file_offset", .integer)
                t.primaryKey(["session_id", "chunk_index"])
            }
            try db.execute(sql: """
                INSERT INTO minihost_upload_session_chunks_v4 (session_id, chunk_index, size, sha256)
                SELECT session_id, chunk_index, size, sha256 FROM minihost_upload_session_chunks
                """)
            try db.drop(table: "minihost_upload_session_chunks")
            try db.rename(table: "minihost_upload_session_chunks_v4", to: "minihost_upload_session_chunks")
        }
        migrator.registerMigration("v5-finish-claimer") { db in
            // Who claimed a session for finishing (see ProcessIdentity): a
            // claim whose process is gone is taken over at once instead of
            // after the ten-minute takeover.
            try db.alter(table: "minihost_upload_sessions") { t in
                t.add(column: "assembling_by", .text)
            }
        }
        // Dialect attributes move out of the shared tables: the plain dialect's
        // folder and link flags into a side table of its own, a session's
        // folder into its options. The core tables keep only what every
        // dialect shares.
        migrator.registerMigration("v6-plain-side-table") { db in
            try db.create(table: "minihost_plain_uploads") { t in
                t.primaryKey("upload_id", .text).references("minihost_uploads", onDelete: .cascade)
                t.column("folder_id", .integer).references("minihost_folders", onDelete: .setNull)
                t.column("force_download", .boolean).notNull().defaults(to: false)
                t.column("skip_embedded_page", .boolean).notNull().defaults(to: false)
            }
            try db.execute(sql: """
                INSERT INTO minihost_plain_uploads (upload_id, folder_id, force_download, skip_embedded_page)
                SELECT id, folder_id, force_download, skip_embedded_page FROM minihost_uploads WHERE owner_kind = 'user'
                """)
            // SQLite can't drop a column with a foreign key: rebuild the table
            // (foreign keys are off while a GRDB migration runs, and checked after).
            try db.execute(sql: """
                CREATE TABLE minihost_uploads_v6 (
                    id TEXT PRIMARY KEY NOT NULL,
                    owner_kind TEXT NOT NULL,
                    owner_id TEXT NOT NULL,
                    file_name TEXT NOT NULL,
                    content_type TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    sha256 TEXT NOT NULL,
                    blob TEXT,
                    state TEXT NOT NULL CHECK (state IN ('receiving', 'ready', 'purged')),
                    created_at DATETIME NOT NULL,
                    finished_at DATETIME,
                    purged_at DATETIME,
                    app_payload TEXT,
                    app_handled_at DATETIME,
                    expires_at DATETIME,
                    max_downloads INTEGER,
                    download_count INTEGER NOT NULL DEFAULT 0,
                    password_hash TEXT,
                    public_id TEXT UNIQUE,
                    client_key TEXT GENERATED ALWAYS AS (CASE WHEN owner_kind = 'api_client' THEN owner_id END) VIRTUAL
                );
                INSERT INTO minihost_uploads_v6 (id, owner_kind, owner_id, file_name, content_type, size, sha256, blob, state,
                    created_at, finished_at, purged_at, app_payload, app_handled_at, expires_at, max_downloads, download_count,
                    password_hash, public_id)
                SELECT id, owner_kind, owner_id, file_name, content_type, size, sha256, blob, state, created_at, finished_at,
                    purged_at, app_payload, app_handled_at, expires_at, max_downloads, download_count, password_hash, public_id
                FROM minihost_uploads;
                DROP TABLE minihost_uploads;
                ALTER TABLE minihost_uploads_v6 RENAME TO minihost_uploads;
                CREATE INDEX minihost_uploads_owner ON minihost_uploads(owner_kind, owner_id, created_at);
                CREATE INDEX minihost_uploads_blob ON minihost_uploads(blob);
                CREATE INDEX minihost_uploads_unhandled ON minihost_uploads(state, app_handled_at, created_at);
                """)
            try db.execute(sql: """
                UPDATE minihost_upload_sessions SET options = json_set(COALESCE(options, '{}'), '$.folderId', folder_id)
                WHERE folder_id IS NOT NULL;
                CREATE TABLE minihost_upload_sessions_v6 (
                    id TEXT PRIMARY KEY NOT NULL,
                    owner_kind TEXT NOT NULL,
                    owner_id TEXT NOT NULL,
                    file_name TEXT NOT NULL,
                    content_type TEXT NOT NULL,
                    declared_size INTEGER NOT NULL,
                    options TEXT,
                    state TEXT NOT NULL CHECK (state IN ('open', 'assembling', 'completed')),
                    assembling_since DATETIME,
                    upload_id TEXT REFERENCES minihost_uploads(id) ON DELETE SET NULL,
                    created_at DATETIME NOT NULL,
                    expires_at DATETIME NOT NULL,
                    chunk_size INTEGER,
                    assembling_by TEXT
                );
                INSERT INTO minihost_upload_sessions_v6 (id, owner_kind, owner_id, file_name, content_type, declared_size,
                    options, state, assembling_since, upload_id, created_at, expires_at, chunk_size, assembling_by)
                SELECT id, owner_kind, owner_id, file_name, content_type, declared_size, options, state, assembling_since,
                    upload_id, created_at, expires_at, chunk_size, assembling_by
                FROM minihost_upload_sessions;
                DROP TABLE minihost_upload_sessions;
                ALTER TABLE minihost_upload_sessions_v6 RENAME TO minihost_upload_sessions;
                CREATE INDEX minihost_upload_sessions_expiry ON minihost_upload_sessions(expires_at);
                """)
        }
        // A counter that moves whenever what is public changes, so the
        // index nginx serves public files from is rebuilt only then.
        migrator.registerMigration("v7-public-generation") { db in
            try db.execute(sql: """
                CREATE TABLE minihost_public_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
                INSERT INTO minihost_public_generation (id, value) VALUES (1, 1);
                """)
        }
        // Running totals of gc (its own process) and the workers' sweeper,
        // for metrics and `minihost status`.
        migrator.registerMigration("v8-maintenance-totals") { db in
            try db.execute(sql: """
                CREATE TABLE minihost_maintenance (
                    task TEXT PRIMARY KEY CHECK (task IN ('gc', 'sweeper')),
                    runs INTEGER NOT NULL DEFAULT 0,
                    last_run_at DATETIME,
                    temporary_files_removed INTEGER NOT NULL DEFAULT 0,
                    sessions_expired INTEGER NOT NULL DEFAULT 0,
                    blobs_removed INTEGER NOT NULL DEFAULT 0,
                    bytes_freed INTEGER NOT NULL DEFAULT 0,
                    public_links_repaired INTEGER NOT NULL DEFAULT 0
                );
                INSERT INTO minihost_maintenance (task) VALUES ('gc'), ('sweeper');
                """)
        }
        // Moves with every change to an API client, so workers can remember
        // authenticated clients and still see a revocation at once
        // (see CredentialGeneration).
        migrator.registerMigration("v9-credential-generation") { db in
            try db.execute(sql: """
                CREATE TABLE minihost_credential_generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
                INSERT INTO minihost_credential_generation (id, value) VALUES (1, 1);
                """)
        }
        // The uploader dialect: access tokens for user accounts (hashed,
        // expiring), its side table, the sweeper's index of uploads that
        // end, and its count of them.
        migrator.registerMigration("v10-uploader") { db in
            try db.execute(sql: """
                CREATE TABLE minihost_access_tokens (
                    token_hash TEXT PRIMARY KEY NOT NULL,
                    username TEXT NOT NULL REFERENCES minihost_users(username) ON DELETE CASCADE,
                    long_lived BOOLEAN NOT NULL DEFAULT 0,
                    created_at DATETIME NOT NULL,
                    expires_at DATETIME NOT NULL
                );
                CREATE INDEX minihost_access_tokens_user ON minihost_access_tokens(username);
                CREATE TABLE minihost_uploader_files (
                    upload_id TEXT PRIMARY KEY NOT NULL REFERENCES minihost_uploads(id) ON DELETE CASCADE,
                    ext TEXT NOT NULL
                );
                CREATE INDEX minihost_uploads_expiry ON minihost_uploads(expires_at) WHERE expires_at IS NOT NULL;
                ALTER TABLE minihost_maintenance ADD COLUMN uploads_ended INTEGER NOT NULL DEFAULT 0;
                """)
        }
        // The skysend dialect's notes: client-side encrypted text, with the
        // SHA-256 of each token the client derived, an expiry and a view limit.
        migrator.registerMigration("v11-skysend-notes") { db in
            try db.execute(sql: """
                CREATE TABLE minihost_skysend_notes (
                    id TEXT PRIMARY KEY NOT NULL,
                    auth_token_hash TEXT NOT NULL,
                    owner_token_hash TEXT NOT NULL,
                    salt TEXT NOT NULL,
                    encrypted_content BLOB NOT NULL,
                    nonce BLOB NOT NULL,
                    content_type TEXT NOT NULL,
                    password_salt TEXT,
                    password_algo TEXT,
                    max_views INTEGER NOT NULL,
                    view_count INTEGER NOT NULL DEFAULT 0,
                    expires_at DATETIME NOT NULL,
                    created_at DATETIME NOT NULL
                );
                CREATE INDEX minihost_skysend_notes_expiry ON minihost_skysend_notes(expires_at);
                """)
        }
        // The skysend dialect's files: core uploads (ciphertext) with the
        // tokens' hashes, the client's salt and its encrypted metadata.
        migrator.registerMigration("v12-skysend-files") { db in
            try db.execute(sql: """
                CREATE TABLE minihost_skysend_files (
                    upload_id TEXT PRIMARY KEY NOT NULL REFERENCES minihost_uploads(id) ON DELETE CASCADE,
                    auth_token_hash TEXT NOT NULL,
                    owner_token_hash TEXT NOT NULL,
                    salt TEXT NOT NULL,
                    file_count INTEGER NOT NULL,
                    password_salt TEXT,
                    password_algo TEXT,
                    encrypted_meta BLOB,
                    meta_nonce BLOB
                );
                """)
        }
        migrator.registerMigration("v13-tus-uploads") { db in
            // What a finished tus upload answers HEAD with, beyond the core row.
            try db.execute(sql: """
                CREATE TABLE minihost_tus_uploads (
                    upload_id TEXT PRIMARY KEY NOT NULL REFERENCES minihost_uploads(id) ON DELETE CASCADE,
                    metadata TEXT,
                    partial INTEGER NOT NULL DEFAULT 0,
                    concatenated TEXT
                );
                """)
        }
        // The s4 dialect: buckets and their objects (each a core upload owned
        // by its bucket, keyed for listing in key order), one-time tickets for
        // event streams, counters for limits every worker process shares, and
        // operator settings.
        migrator.registerMigration("v14-s4") { db in
            try db.execute(sql: """
                CREATE TABLE minihost_s4_buckets (
                    name TEXT PRIMARY KEY NOT NULL,
                    created_at DATETIME NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE minihost_s4_objects (
                    bucket TEXT NOT NULL REFERENCES minihost_s4_buckets(name),
                    key TEXT NOT NULL,
                    upload_id TEXT NOT NULL UNIQUE REFERENCES minihost_uploads(id) ON DELETE CASCADE,
                    size INTEGER NOT NULL,
                    etag TEXT NOT NULL,
                    last_modified_ms INTEGER NOT NULL,
                    metadata TEXT,
                    PRIMARY KEY (bucket, key)
                ) WITHOUT ROWID;
                CREATE TABLE minihost_s4_tickets (
                    ticket_hash TEXT PRIMARY KEY NOT NULL,
                    username TEXT NOT NULL,
                    resource TEXT NOT NULL,
                    resource_type TEXT NOT NULL,
                    expires_at DATETIME NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE minihost_rate_windows (
                    key TEXT PRIMARY KEY NOT NULL,
                    window_start DOUBLE NOT NULL,
                    count INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE minihost_settings (
                    name TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL,
                    updated_at DATETIME NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX minihost_uploads_owner_id ON minihost_uploads(owner_kind, owner_id, id) WHERE state = 'ready';
                """)
        }
        return migrator
    }
}
