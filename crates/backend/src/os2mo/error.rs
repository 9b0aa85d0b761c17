//! Typed errors of the OS2mo client: transport, authentication, GraphQL errors with MO's
//! `error_key`s, undecodable answers, and partly written plans. Every text that came from the
//! server passes through [`redact`] first, because MO echoes input values (CPR numbers among
//! them) in some messages.

use std::fmt;

/// An `error_key` MO puts into `extensions.error_context` (`specs/os2mo-observed.md` §6.1).
/// The common ones have their own variant so callers can match on them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKey {
    ExistingCpr,
    OrgUnitNotFound,
    NotFound,
    DateOutsideOrgUnitRange,
    DateOutsideEmplRange,
    TerminateUnitWithChildrenAndRoles,
    InvalidInput,
    MissingRequiredValue,
    InvalidAddressEmail,
    /// `E_UNKNOWN`: typically the aborted-transaction error after a no-op update.
    Unknown,
    Other(String),
}

impl ErrorKey {
    pub fn parse(key: &str) -> ErrorKey {
        match key {
            "V_EXISTING_CPR" => ErrorKey::ExistingCpr,
            "E_ORG_UNIT_NOT_FOUND" => ErrorKey::OrgUnitNotFound,
            "E_NOT_FOUND" => ErrorKey::NotFound,
            "V_DATE_OUTSIDE_ORG_UNIT_RANGE" => ErrorKey::DateOutsideOrgUnitRange,
            "V_DATE_OUTSIDE_EMPL_RANGE" => ErrorKey::DateOutsideEmplRange,
            "V_TERMINATE_UNIT_WITH_CHILDREN_AND_ROLES" => {
                ErrorKey::TerminateUnitWithChildrenAndRoles
            }
            "E_INVALID_INPUT" => ErrorKey::InvalidInput,
            "V_MISSING_REQUIRED_VALUE" => ErrorKey::MissingRequiredValue,
            "V_INVALID_ADDRESS_EMAIL" => ErrorKey::InvalidAddressEmail,
            "E_UNKNOWN" => ErrorKey::Unknown,
            other => ErrorKey::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ErrorKey::ExistingCpr => "V_EXISTING_CPR",
            ErrorKey::OrgUnitNotFound => "E_ORG_UNIT_NOT_FOUND",
            ErrorKey::NotFound => "E_NOT_FOUND",
            ErrorKey::DateOutsideOrgUnitRange => "V_DATE_OUTSIDE_ORG_UNIT_RANGE",
            ErrorKey::DateOutsideEmplRange => "V_DATE_OUTSIDE_EMPL_RANGE",
            ErrorKey::TerminateUnitWithChildrenAndRoles => {
                "V_TERMINATE_UNIT_WITH_CHILDREN_AND_ROLES"
            }
            ErrorKey::InvalidInput => "E_INVALID_INPUT",
            ErrorKey::MissingRequiredValue => "V_MISSING_REQUIRED_VALUE",
            ErrorKey::InvalidAddressEmail => "V_INVALID_ADDRESS_EMAIL",
            ErrorKey::Unknown => "E_UNKNOWN",
            ErrorKey::Other(s) => s,
        }
    }
}

/// One entry of a GraphQL answer's `errors`, redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GqlError {
    pub message: String,
    /// The alias (or field) of the failed mutation or query, when MO names one.
    pub path: Vec<String>,
    pub error_key: Option<ErrorKey>,
    pub description: Option<String>,
    pub status: Option<i64>,
    /// The extra keys of `error_context` (`org_unit_uuid`, `valid_from`, …), as `key=value`.
    pub context: Vec<(String, String)>,
}

impl GqlError {
    /// From one JSON error object of an answer.
    pub fn from_json(e: &serde_json::Value) -> GqlError {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => redact(s),
            other => redact(&other.to_string()),
        };
        let path = e
            .get("path")
            .and_then(|p| p.as_array())
            .map(|p| p.iter().map(text).collect())
            .unwrap_or_default();
        let ctx = e
            .pointer("/extensions/error_context")
            .and_then(|c| c.as_object());
        let mut context = Vec::new();
        if let Some(ctx) = ctx {
            for (k, v) in ctx {
                if !matches!(k.as_str(), "error" | "error_key" | "description" | "status") {
                    context.push((k.clone(), text(v)));
                }
            }
        }
        GqlError {
            message: e.get("message").map(text).unwrap_or_default(),
            path,
            error_key: ctx
                .and_then(|c| c.get("error_key"))
                .and_then(|k| k.as_str())
                .map(ErrorKey::parse),
            description: ctx.and_then(|c| c.get("description")).map(text),
            status: ctx.and_then(|c| c.get("status")).and_then(|s| s.as_i64()),
            context,
        }
    }

    pub fn is_unauthenticated(&self) -> bool {
        self.message == "User is not authenticated"
    }
}

impl fmt::Display for GqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "at {}: ", self.path.join("."))?;
        }
        match (&self.error_key, &self.description) {
            (Some(k), Some(d)) => write!(f, "{} ({d})", k.as_str())?,
            (Some(k), None) => write!(f, "{}", k.as_str())?,
            _ => write!(f, "{}", self.message)?,
        }
        for (k, v) in &self.context {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// A list of GraphQL errors, shown one after the other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GqlErrors(pub Vec<GqlError>);

impl fmt::Display for GqlErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// What the OS2mo client can fail with. Never contains a CPR number or a secret.
#[derive(Debug, thiserror::Error)]
pub enum Os2moError {
    #[error("OS2mo {url}: {message}")]
    Transport { url: String, message: String },
    #[error("OS2mo {url}: HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("OS2mo authentication at {url}: {message}")]
    Auth { url: String, message: String },
    #[error("OS2mo {what}: {errors}")]
    GraphQl { what: String, errors: GqlErrors },
    #[error("OS2mo {what}: unexpected answer: {reason}")]
    Decode { what: String, reason: String },
    #[error("OS2mo: {0}")]
    Unsupported(String),
    #[error("OS2mo settings: {0}")]
    Config(String),
    #[error("OS2mo: plan operation {0}")]
    Plan(dipex_model::plan::ApplyError),
    /// A write failed for a reason not tied to one object (transport, authentication, 5xx,
    /// an answer that cannot be read). `written` writes were applied before it.
    #[error("{}", partial_message(*.written, *.total, .applied, .failed, .cause, *.refused))]
    Partial {
        written: usize,
        total: usize,
        /// What was applied, per kind (`org_unit 300 of 300, engagement 120 of 3000`).
        applied: String,
        failed: String,
        cause: Box<Os2moError>,
        /// Operations refused (or skipped as dependents) before the failure.
        refused: usize,
    },
}

impl Os2moError {
    /// The MO error keys in this error (empty for other errors).
    pub fn error_keys(&self) -> Vec<ErrorKey> {
        match self {
            Os2moError::GraphQl { errors, .. } => errors
                .0
                .iter()
                .filter_map(|e| e.error_key.clone())
                .collect(),
            Os2moError::Partial { cause, .. } => cause.error_keys(),
            _ => Vec::new(),
        }
    }

    /// True when part of a plan was applied before this error (exit code 3).
    pub fn partly_applied(&self) -> bool {
        matches!(self, Os2moError::Partial { written, .. } if *written > 0)
    }

    /// An error after which the answer to a write may have been lost: the request may or may not
    /// have been applied (transport errors, 5xx answers, answers that are not GraphQL).
    pub fn answer_lost(&self) -> bool {
        matches!(
            self,
            Os2moError::Transport { .. }
                | Os2moError::Http {
                    status: 500..=599,
                    ..
                }
                | Os2moError::Decode { .. }
        )
    }
}

fn partial_message(
    written: usize,
    total: usize,
    applied: &str,
    failed: &str,
    cause: &Os2moError,
    refused: usize,
) -> String {
    let refused = if refused > 0 {
        format!(
            " ({refused} operations refused by MO or depending on a refused object, reported above)"
        )
    } else {
        String::new()
    };
    if written == 0 {
        format!(
            "OS2mo: nothing was written{refused}. Failed: {failed}: {cause}. None of the {total} writes was applied"
        )
    } else {
        format!(
            "OS2mo: the plan was only partly written: {written} of {total} writes were applied ({applied}){refused}. \
             Failed: {failed}: {cause}. The other {} writes were not applied; re-running continues from what OS2mo now holds",
            total.saturating_sub(written)
        )
    }
}

/// Mask every run of exactly ten digits (a possible CPR number, e.g. in MO's echo of an invalid
/// variable) as `DDMMYY-xxxx`, and every `DDMMYY-NNNN`.
pub fn redact(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let run = j - i;
            let dashed = run == 6
                && j + 5 <= b.len()
                && b[j] == b'-'
                && b[j + 1..j + 5].iter().all(u8::is_ascii_digit)
                && (j + 5 == b.len() || !b[j + 5].is_ascii_digit());
            if run == 10 {
                out.push_str(&s[i..i + 6]);
                out.push_str("-xxxx");
                i = j;
                continue;
            }
            if dashed {
                out.push_str(&s[i..i + 6]);
                out.push_str("-xxxx");
                i = j + 5;
                continue;
            }
            out.push_str(&s[i..j]);
            i = j;
            continue;
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_masks_cpr_like_numbers_only() {
        assert_eq!(
            redact("Variable '$input' got invalid value '3213700000' at 'input.cpr_number'"),
            "Variable '$input' got invalid value '321370-xxxx' at 'input.cpr_number'"
        );
        assert_eq!(
            redact("{\"cpr_number\": \"010170-1234\"}"),
            "{\"cpr_number\": \"010170-xxxx\"}"
        );
        assert_eq!(
            redact("fraction 1000000 and 12345678901 ok"),
            "fraction 1000000 and 12345678901 ok"
        );
        assert_eq!(redact("æøå 0101700000"), "æøå 010170-xxxx");
    }

    #[test]
    fn errors_are_parsed_with_context() {
        let e = serde_json::json!({"message": "ErrorCodes.V_DATE_OUTSIDE_ORG_UNIT_RANGE", "path": ["m3"],
            "extensions": {"error_context": {"error": true, "description": "Date range exceeds validity range of associated org unit.",
            "status": 400, "error_key": "V_DATE_OUTSIDE_ORG_UNIT_RANGE", "org_unit_uuid": "u", "valid_from": "2021-01-01", "valid_to": null}}});
        let g = GqlError::from_json(&e);
        assert_eq!(g.error_key, Some(ErrorKey::DateOutsideOrgUnitRange));
        assert_eq!(g.path, vec!["m3".to_string()]);
        assert_eq!(g.status, Some(400));
        assert_eq!(
            g.to_string(),
            "at m3: V_DATE_OUTSIDE_ORG_UNIT_RANGE (Date range exceeds validity range of associated org unit.) org_unit_uuid=u valid_from=2021-01-01 valid_to=null"
        );
    }
}
