//! The application scenario of tests/integration/test_drivers.py through tokio-postgres,
//! which prepares each statement and lets the server name the parameters' types: untyped
//! parameters come back as text (ids as strings), typed ones (`query_typed`) keep theirs
//! (ids as i64), and the two mix. No casts in the SQL. Panics, naming the failed step, on
//! the first difference.

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

async fn connect(user: &str) -> Client {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let (client, connection) = tokio_postgres::Config::new()
        .host(var("AUTHZ_DRIVER_HOST"))
        .port(var("AUTHZ_DRIVER_PORT").parse().expect("a port"))
        .dbname(var("AUTHZ_DRIVER_DB"))
        .user(user)
        .connect(NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

async fn check(app: &Client, user: &str, resource: &str) -> bool {
    app.query_one("SELECT authz_check($1, $2, $3)", &[&user, &"document:read", &resource]).await.expect("check").get(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let admin = connect("postgres").await;
    let app = connect("driver_app").await;

    // Grants: ids as strings (untyped), as i64 (typed), and mixed with a NULL.
    let grant_id: i64 = admin
        .query_one("SELECT authz_grant($1, $2, $3)", &[&"42", &"document:read", &"1"])
        .await
        .expect("grant, untyped")
        .get(0);
    assert!(grant_id > 0, "grant returns its id");
    admin
        .query_typed("SELECT authz_grant($1, $2, $3)", &[(&7_i64, Type::INT8), (&"document:update", Type::TEXT), (&2_i64, Type::INT8)])
        .await
        .expect("grant, typed");
    let mixed = admin
        .prepare_typed("SELECT authz_grant($1, $2, $3, $4, $5)", &[Type::INT8])
        .await
        .expect("a mix of typed and untyped parameters");
    let none: Option<std::time::SystemTime> = None;
    let params: [&(dyn ToSql + Sync); 5] = [&42_i64, &"document:read", &"3", &none, &"deny"];
    admin.query(&mixed, &params).await.expect("grant, mixed");

    // Checks and explain.
    assert!(check(&app, "42", "1").await, "42 may read 1");
    assert!(!check(&app, "42", "3").await, "the deny on 3");
    let typed: bool = app
        .query_typed("SELECT authz_check($1, $2, $3)", &[(&7_i64, Type::INT8), (&"document:update", Type::TEXT), (&2_i64, Type::INT8)])
        .await
        .expect("check, typed")[0]
        .get(0);
    assert!(typed, "7 may update 2");
    let explained = app
        .query_one("SELECT allowed, decided_by FROM authz_explain($1, $2, $3)", &[&"42", &"document:read", &"3"])
        .await
        .expect("explain");
    assert_eq!((explained.get::<_, bool>(0), explained.get::<_, String>(1)), (false, "resource".to_string()));

    // A key: created, validated.
    let token: String = admin
        .query_one("SELECT token FROM api_key_create($1, $2, $3)", &[&"42", &"rust key", &vec!["documents:read"]])
        .await
        .expect("key create")
        .get(0);
    let validated = app.query_one("SELECT valid, status, user_id FROM api_key_validate($1)", &[&token]).await.expect("validate");
    assert_eq!(
        (validated.get::<_, bool>(0), validated.get::<_, String>(1), validated.get::<_, String>(2)),
        (true, "valid".to_string(), "42".to_string())
    );

    // Authenticate, then an RLS query with a parameter, in one transaction.
    app.batch_execute("BEGIN").await.expect("begin");
    let user: String = app.query_one("SELECT authz_authenticate($1)", &[&token]).await.expect("authenticate").get(0);
    assert_eq!(user, "42");
    let ids: Vec<i64> = app
        .query("SELECT id FROM documents WHERE id = ANY($1) ORDER BY id", &[&vec![1_i64, 2, 3]])
        .await
        .expect("RLS select")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids, vec![1], "RLS shows document 1 only");
    app.batch_execute("COMMIT").await.expect("commit");

    // A revoke is seen at once.
    let revoked: bool =
        admin.query_one("SELECT authz_revoke($1, $2, $3)", &[&"42", &"document:read", &"1"]).await.expect("revoke").get(0);
    assert!(revoked);
    assert!(!check(&app, "42", "1").await, "revoked");
    println!("tokio-postgres: scenario passed");
}
