//! The OS2sync server's HTTP side: its shared state answers requests through the small HTTP/1.1
//! server of `dipex_testkit::http`, with Kestrel's `server:` header and JSON content type. Routing
//! and semantics live in `api`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) use crate::http::{Request, Response};

use crate::os2sync::Options;
use crate::os2sync::api::State;

/// State shared by all connection threads.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub opts: Options,
    pub stop: AtomicBool,
}

impl crate::http::Handler for Shared {
    fn handle(&self, req: &Request) -> Option<Response> {
        let resp = crate::os2sync::api::handle(self, req);
        // ASP.NET names the charset of its JSON answers.
        Some(match resp.content_type {
            Some("application/json") => resp.with_content_type("application/json; charset=utf-8"),
            _ => resp,
        })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn server_header(&self) -> Option<&'static str> {
        Some("Kestrel")
    }
}
