//! The real OS2mo ("the peer", `../shared/os2mo/peer/`) for tests that run against it as well as
//! against this imitation: its address and session come from `OS2MO_URL` and `OS2MO_SESSION`
//! (`.ci/run` starts one and exports them). Without them a test prints `SKIPPED` and passes,
//! except under `CI=true`, where a peer that was meant to run and did not fails the test.

/// Where the real OS2mo answers.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Base URL, e.g. `http://127.0.0.1:5100` (GraphQL at `{url}/graphql/v30`).
    pub url: String,
    /// The legacy `session:` header value it accepts.
    pub session: String,
}

/// The peer from the environment, or `None` after printing `SKIPPED: …` (`test` names the
/// test).
///
/// # Panics
/// When the peer is not configured and `CI=true`: CI must not pass without the real server.
pub fn from_env(test: &str) -> Option<Peer> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    match (var("OS2MO_URL"), var("OS2MO_SESSION")) {
        (Some(url), Some(session)) => Some(Peer {
            url: url.trim_end_matches('/').to_string(),
            session,
        }),
        _ => {
            let msg =
                format!("{test}: real OS2mo (set OS2MO_URL/OS2MO_SESSION; .ci/run starts one)");
            crate::skip(&msg);
            None
        }
    }
}
