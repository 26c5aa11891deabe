//! What the server benchmarks share: the database server, free ports, the environment of a
//! release `remit` process, and its peak memory.

pub const SECRET_KEY: &str = "sk_test_bench";
pub const WEBHOOK_SECRET: &str = "whsec_bench";
pub const ENCRYPTION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

pub fn pg_server() -> String {
    std::env::var("REMIT_PG_SERVER").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The environment of a `remit` process on database `db`, talking to the sandbox at `sandbox`.
pub fn remit_env(db: &str, sandbox: &str, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", format!("{}/{db}", pg_server())),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
        ("PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}")),
        ("REMIT_ENCRYPTION_KEY", ENCRYPTION_KEY.into()),
        ("STRIPE_SECRET_KEY", SECRET_KEY.into()),
        ("STRIPE_PUBLISHABLE_KEY", "pk_test_bench".into()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("STRIPE_CONNECT_CLIENT_ID", "ca_bench".into()),
        ("STRIPE_API_BASE", sandbox.into()),
        // The sandbox's own events (the fixtures' payments) stay out of what is measured.
        ("STRIPE_RESYNC_MINUTES", "0".into()),
    ]
}

/// The peak resident memory of a process (`VmHWM`), in MB.
pub fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process's status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb / 1024.0
}
