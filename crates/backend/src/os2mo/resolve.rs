//! The texts of DAR addresses as OS2mo resolves them itself: `Address.resolve` answers a
//! `DARAddress` whose `name` is the whole address in DAWA's `betegnelse` form ("Vifdam 20, 1.
//! th, 6000 Kolding"). Exporters reading a real OS2mo use these instead of calling the address
//! register (`specs/dar.md` §4).

use super::Os2moError;
use super::http::Transport;
use super::read::pages;
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;
use uuid::Uuid;

/// The query: every current address of a class with scope `DAR`, with its resolved text.
pub const DOCUMENT: &str = "query DarTexts($filter: AddressFilter, $limit: int, $cursor: Cursor) \
     { addresses(filter: $filter, limit: $limit, cursor: $cursor) { page_info { next_cursor } \
     objects { current { value resolve { ... on DARAddress { name } } } } } }";

/// DAR id → text of every DAR address MO holds now. Addresses MO cannot resolve (its answer is
/// not a `DARAddress`) are left out.
pub fn dar_texts(t: &Transport) -> Result<HashMap<Uuid, String>, Os2moError> {
    let mut filter = Map::new();
    filter.insert("address_type".into(), json!({"scope": ["DAR"]}));
    let mut out = HashMap::new();
    for o in pages(t, "resolve DAR addresses", DOCUMENT, "addresses", &filter)? {
        let Some(current) = o.get("current").filter(|c| !c.is_null()) else {
            continue;
        };
        let id = current
            .get("value")
            .and_then(Json::as_str)
            .and_then(|v| Uuid::parse_str(v.trim()).ok());
        let name = current
            .pointer("/resolve/name")
            .and_then(Json::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if let (Some(id), Some(name)) = (id, name) {
            out.insert(id, name.to_string());
        }
    }
    Ok(out)
}
