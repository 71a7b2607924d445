//! authz_ext: authorization inside PostgreSQL.
//!
//! `core` holds the rules and formats in plain Rust; `pg` is the thin layer that reads
//! arguments, talks to the tables and reports errors. The SQL surface (tables, seed rows,
//! function declarations, privileges) is hand-written under `sql/`, in this order:

pub mod core;
mod pg;

/// Rust's allocations in this backend, counted, so that `authz_stats()` can show what the
/// extension really holds (a backend is one thread; relaxed counting is exact).
struct CountingAllocator;

static HEAP_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only counted.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let ptr = unsafe { std::alloc::System.alloc(layout) };
        if !ptr.is_null() {
            HEAP_BYTES.fetch_add(layout.size(), std::sync::atomic::Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        HEAP_BYTES.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            HEAP_BYTES.fetch_add(new_size, std::sync::atomic::Ordering::Relaxed);
            HEAP_BYTES.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// The bytes Rust code of this library holds now in this process.
pub fn heap_bytes() -> usize {
    HEAP_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

::pgrx::pg_module_magic!(name, version);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    pg::register();
}

pgrx::extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
pgrx::extension_sql_file!("../sql/seed.sql", name = "seed", requires = ["schema"]);
pgrx::extension_sql_file!("../sql/internal.sql", name = "internal", requires = ["seed"]);
pgrx::extension_sql_file!("../sql/keys.sql", name = "keys", requires = ["internal"]);
pgrx::extension_sql_file!("../sql/relationships.sql", name = "relationships", requires = ["keys"]);
pgrx::extension_sql_file!("../sql/cache.sql", name = "cache", requires = ["relationships"]);
pgrx::extension_sql_file!("../sql/api.sql", name = "api", finalize);

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap()
    }

    #[pg_test]
    fn seed_catalog_has_the_designed_sizes() {
        assert_eq!(count("SELECT count(*) FROM authz.resource_types"), 8);
        assert_eq!(count("SELECT count(*) FROM authz.permissions"), 40);
        assert_eq!(count("SELECT count(*) FROM authz.roles"), 4);
        assert_eq!(count("SELECT count(*) FROM authz.role_permissions"), 105);
        assert_eq!(count("SELECT count(*) FROM authz.scopes"), 12);
    }

    #[pg_test]
    fn each_role_includes_the_one_below() {
        let missing = count(
            "SELECT count(*) FROM authz.role_permissions lower
               JOIN authz.roles lr ON lr.name = lower.role
               JOIN authz.roles hr ON hr.rank > lr.rank
              WHERE NOT EXISTS (SELECT 1 FROM authz.role_permissions h
                                 WHERE h.role = hr.name AND h.permission = lower.permission)",
        );
        assert_eq!(missing, 0);
    }

    #[pg_test]
    fn caller_identity_is_restored_after_an_error_inside_a_check() {
        Spi::run("CREATE ROLE authz_pgtest_caller").unwrap();
        Spi::run("SET ROLE authz_pgtest_caller").unwrap();
        // The check switches to the extension owner to read its tables, then fails.
        Spi::run(
            "DO $$ BEGIN PERFORM authz_check(1, 'document:fly', 1);
               EXCEPTION WHEN invalid_parameter_value THEN NULL; END $$",
        )
        .unwrap();
        let user = Spi::get_one::<String>("SELECT current_user::text").unwrap();
        assert_eq!(user.as_deref(), Some("authz_pgtest_caller"));
        assert_eq!(Spi::get_one::<bool>("SELECT has_schema_privilege('authz', 'USAGE')").unwrap(), Some(false));
    }

    /// Whether a kept plan of `query` is still valid after `write` (and the command end that
    /// processes its invalidations here).
    fn plan_survives(query: &std::ffi::CStr, write: &str) -> bool {
        // SAFETY: SPI calls in their documented order; the plan is kept, then freed.
        unsafe {
            pg_sys::SPI_connect();
            let plan = pg_sys::SPI_prepare(query.as_ptr(), 0, std::ptr::null_mut());
            assert!(!plan.is_null() && pg_sys::SPI_keepplan(plan) == 0);
            pg_sys::SPI_finish();
            Spi::run(write).unwrap();
            pg_sys::CommandCounterIncrement();
            let valid = pg_sys::SPI_plan_is_valid(plan);
            pg_sys::SPI_freeplan(plan);
            valid
        }
    }

    #[pg_test]
    fn writes_through_the_functions_keep_the_plans_that_read_their_tables() {
        // The cache's invalidation goes to the kind's signal table (sql/cache.sql), not to
        // the table written, so plans reading it are not planned again.
        assert!(plan_survives(c"SELECT count(*) FROM authz.grants", "SELECT authz_grant(7, 'report:read', 1)"));
        Spi::run(r"SELECT authz_model_write(E'model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]')").unwrap();
        let write = "SELECT authz_tuple_write('doc:1', 'viewer', 'user:7')";
        assert!(plan_survives(c"SELECT count(*) FROM authz.relation_tuples", write));
        // DDL on the table still invalidates them (the test can tell).
        assert!(!plan_survives(c"SELECT count(*) FROM authz.grants", "ALTER TABLE authz.grants DISABLE TRIGGER note_change"));
    }

    #[pg_test]
    fn checks_work_for_a_caller_without_table_privileges() {
        Spi::run("SELECT authz_set_role(7, 'viewer')").unwrap();
        Spi::run("CREATE ROLE authz_pgtest_reader").unwrap();
        Spi::run("SET ROLE authz_pgtest_reader").unwrap();
        assert_eq!(Spi::get_one::<bool>("SELECT authz_check(7, 'report:read', 1)").unwrap(), Some(true));
        assert_eq!(Spi::get_one::<bool>("SELECT authz_check(7, 'report:delete', 1)").unwrap(), Some(false));
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'authz_ext'"]
    }
}
