//! Validation of GraphQL requests against an SDL schema (MO's served `schema.graphql`), as a real
//! server rejects them: document validation, MO's custom scalars in literals, and variable
//! coercion with graphql-core's messages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use apollo_compiler::ExecutableDocument;
use apollo_compiler::ast::{self, Type};
use apollo_compiler::executable::{self, Selection};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;
use serde_json::{Map, Value};

use crate::os2mo::dates::{cpr_birth_date, parse_date, parse_datetime};
use crate::os2mo::exec::parse_uuid;
use crate::os2mo::gql::{GqlError, inspect, loc, parse_document};

/// A parsed and validated SDL schema (cheap to clone).
#[derive(Clone)]
pub struct Schema {
    inner: Arc<Inner>,
}

struct Inner {
    schema: Valid<apollo_compiler::Schema>,
    text: String,
    path: PathBuf,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Schema {
    /// The SDL text as read from the file.
    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// The file the schema was read from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

/// Load (once per process and path) and validate an SDL schema file.
pub fn load_schema(path: &Path) -> Result<Schema, String> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Schema>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if let Some(s) = cache.lock().expect("schema cache").get(&key) {
        return Ok(s.clone());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let schema =
        apollo_compiler::Schema::parse_and_validate(text.as_str(), path).map_err(|with| {
            let msgs: Vec<String> = with.errors.iter().take(5).map(|d| d.to_string()).collect();
            format!("invalid schema {}: {}", path.display(), msgs.join("; "))
        })?;
    let s = Schema {
        inner: Arc::new(Inner {
            schema,
            text,
            path: key.clone(),
        }),
    };
    cache.lock().expect("schema cache").insert(key, s.clone());
    Ok(s)
}

/// Validate a GraphQL request (document + variables) against `schema` the way a real server would
/// reject it; returns the error messages (graphql-core's wording).
pub fn validate_request(
    schema: &Schema,
    query: &str,
    variables: &Value,
) -> Result<(), Vec<String>> {
    check_request(schema, query, variables, None)
        .map_err(|errs| errs.into_iter().map(|e| e.message).collect())
}

/// [`validate_request`] with locations, for the server's answers.
pub(crate) fn check_request(
    schema: &Schema,
    query: &str,
    variables: &Value,
    operation_name: Option<&str>,
) -> Result<(), Vec<GqlError>> {
    parse_document(query)?;
    let s = &schema.inner.schema;
    let doc =
        ExecutableDocument::parse_and_validate(s, query, "request.graphql").map_err(|with| {
            with.errors
                .iter()
                .map(|d| {
                    let j = d.unstable_to_json_compat();
                    let message = j.message.replace('"', "'");
                    GqlError::new(message).at(j
                        .locations
                        .iter()
                        .map(|l| (l.line, l.column))
                        .collect())
                })
                .collect::<Vec<_>>()
        })?;
    let mut errors = Vec::new();
    for op in doc.operations.iter() {
        walk_literals(s, &doc, &op.selection_set, &mut errors);
    }
    for frag in doc.fragments.values() {
        walk_literals(s, &doc, &frag.selection_set, &mut errors);
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let op = doc
        .operations
        .get(operation_name)
        .map_err(|e| vec![GqlError::new(e.message().to_string())])?;
    let empty = Map::new();
    let vars = match variables {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            return Err(vec![GqlError::new(
                "Variables must be provided as a JSON object.",
            )]);
        }
    };
    for def in &op.variables {
        let name = def.name.as_str();
        let locations = loc(def, &doc.sources);
        match vars.get(name) {
            None => {
                if def.ty.is_non_null() && def.default_value.is_none() {
                    errors.push(
                        GqlError::new(format!(
                            "Variable '${name}' of required type '{}' was not provided.",
                            def.ty
                        ))
                        .at(locations),
                    );
                }
            }
            Some(Value::Null) if def.ty.is_non_null() => {
                errors.push(
                    GqlError::new(format!(
                        "Variable '${name}' of non-null type '{}' must not be null.",
                        def.ty
                    ))
                    .at(locations),
                );
            }
            Some(v) => {
                let mut path = vec![name.to_string()];
                if let Err((p, bad, msg)) = coerce(s, &def.ty, v, &mut path) {
                    let at = if p.len() > 1 {
                        format!(" at '{}'", join(&p))
                    } else {
                        String::new()
                    };
                    errors.push(
                        GqlError::new(format!(
                            "Variable '${name}' got invalid value {}{at}; {msg}",
                            inspect(&bad)
                        ))
                        .at(locations),
                    );
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn join(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if p.starts_with('[') || s.is_empty() {
            s.push_str(p);
        } else {
            s.push('.');
            s.push_str(p);
        }
    }
    s
}

type CoerceErr = (Vec<String>, Value, String);

/// Check a scalar value of the named type (built-in or one of MO's custom scalars).
fn check_named_scalar(name: &str, v: &Value) -> Result<(), String> {
    match name {
        "Int" => match v.as_i64() {
            Some(n) if i32::try_from(n).is_ok() => Ok(()),
            Some(_) => Err(format!(
                "Int cannot represent non 32-bit signed integer value: {v}"
            )),
            None => Err(format!(
                "Int cannot represent non-integer value: {}",
                inspect(v)
            )),
        },
        "Float" => match v {
            Value::Number(_) => Ok(()),
            other => Err(format!(
                "Float cannot represent non numeric value: {}",
                inspect(other)
            )),
        },
        "String" => match v {
            Value::String(_) => Ok(()),
            other => Err(format!(
                "String cannot represent a non string value: {}",
                inspect(other)
            )),
        },
        "Boolean" => match v {
            Value::Bool(_) => Ok(()),
            other => Err(format!(
                "Boolean cannot represent a non boolean value: {}",
                inspect(other)
            )),
        },
        "ID" => match v {
            Value::String(_) => Ok(()),
            Value::Number(n) if n.is_i64() => Ok(()),
            other => Err(format!("ID cannot represent value: {}", inspect(other))),
        },
        "UUID" => parse_uuid(v).map(|_| ()),
        "CPR" => match v {
            Value::String(s) => cpr_birth_date(s)
                .map(|_| ())
                .map_err(|e| format!("Expected type 'CPR'. {e}")),
            _ => Err("Expected type 'CPR'. Invalid length".into()),
        },
        "DateTime" => match v {
            Value::String(s) => parse_datetime(s)
                .map(|_| ())
                .map_err(|e| format!("Expected type 'DateTime'. {e}")),
            other => Err(format!(
                "Expected type 'DateTime'. Invalid isoformat string: {}",
                inspect(other)
            )),
        },
        "Date" => match v {
            Value::String(s) => parse_date(s)
                .map(|_| ())
                .map_err(|e| format!("Expected type 'Date'. {e}")),
            other => Err(format!(
                "Expected type 'Date'. Invalid isoformat string: {}",
                inspect(other)
            )),
        },
        "int" => match v.as_i64() {
            Some(_) => Ok(()),
            None => Err(format!(
                "Expected type 'int'. {} is not an integer.",
                inspect(v)
            )),
        },
        "Cursor" => match v {
            Value::String(_) => Ok(()),
            other => Err(format!(
                "Expected type 'Cursor'. {} is not a string.",
                inspect(other)
            )),
        },
        _ => Ok(()),
    }
}

/// Input coercion of a JSON value against a type (graphql-core's `coerce_input_value`).
fn coerce(
    s: &apollo_compiler::Schema,
    ty: &Type,
    v: &Value,
    path: &mut Vec<String>,
) -> Result<(), CoerceErr> {
    if v.is_null() {
        if ty.is_non_null() {
            return Err((
                path.clone(),
                Value::Null,
                format!("Expected non-nullable type '{ty}' not to be null."),
            ));
        }
        return Ok(());
    }
    match ty {
        Type::List(inner) | Type::NonNullList(inner) => match v {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    path.push(format!("[{i}]"));
                    let r = coerce(s, inner, it, path);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            single => coerce(s, inner, single, path),
        },
        Type::Named(name) | Type::NonNullNamed(name) => {
            let err = |path: &Vec<String>, msg: String| (path.clone(), v.clone(), msg);
            match s.types.get(name) {
                Some(ExtendedType::Scalar(_)) => {
                    check_named_scalar(name.as_str(), v).map_err(|m| err(path, m))
                }
                Some(ExtendedType::Enum(e)) => match v.as_str() {
                    Some(x) if e.values.keys().any(|k| k.as_str() == x) => Ok(()),
                    _ => Err(err(
                        path,
                        format!("Value {} does not exist in '{name}' enum.", inspect(v)),
                    )),
                },
                Some(ExtendedType::InputObject(io)) => {
                    let Value::Object(m) = v else {
                        return Err(err(path, format!("Expected type '{name}' to be a dict.")));
                    };
                    for (fname, fdef) in &io.fields {
                        match m.get(fname.as_str()) {
                            None => {
                                if fdef.ty.is_non_null() && fdef.default_value.is_none() {
                                    return Err(err(
                                        path,
                                        format!(
                                            "Field '{fname}' of required type '{}' was not provided.",
                                            fdef.ty
                                        ),
                                    ));
                                }
                            }
                            Some(x) => {
                                path.push(fname.to_string());
                                let r = coerce(s, &fdef.ty, x, path);
                                path.pop();
                                r?;
                            }
                        }
                    }
                    for k in m.keys() {
                        if !io.fields.contains_key(k.as_str()) {
                            return Err(err(
                                path,
                                format!("Field '{k}' is not defined by type '{name}'."),
                            ));
                        }
                    }
                    Ok(())
                }
                _ => Err(err(path, format!("'{name}' is not an input type."))),
            }
        }
    }
}

/// Check literal values of custom scalars in the document (apollo-compiler accepts any literal
/// for a custom scalar; MO's scalars reject malformed ones during validation).
fn walk_literals(
    s: &apollo_compiler::Schema,
    doc: &ExecutableDocument,
    set: &executable::SelectionSet,
    errors: &mut Vec<GqlError>,
) {
    for sel in &set.selections {
        match sel {
            Selection::Field(f) => {
                for arg in &f.arguments {
                    if let Some(def) = f.definition.arguments.iter().find(|a| a.name == arg.name)
                        && let Err(msg) = check_literal(s, &def.ty, &arg.value)
                    {
                        errors.push(GqlError::new(msg).at(loc(&arg.value, &doc.sources)));
                    }
                }
                walk_literals(s, doc, &f.selection_set, errors);
            }
            Selection::InlineFragment(i) => walk_literals(s, doc, &i.selection_set, errors),
            Selection::FragmentSpread(_) => {}
        }
    }
}

fn check_literal(s: &apollo_compiler::Schema, ty: &Type, v: &ast::Value) -> Result<(), String> {
    match v {
        ast::Value::Variable(_) | ast::Value::Null => Ok(()),
        ast::Value::List(items) if ty.is_list() => items
            .iter()
            .try_for_each(|it| check_literal(s, ty.item_type(), it)),
        ast::Value::Object(fields) => {
            if let Some(ExtendedType::InputObject(io)) = s.types.get(ty.inner_named_type()) {
                for (k, x) in fields {
                    if let Some(fdef) = io.fields.get(k) {
                        check_literal(s, &fdef.ty, x)?;
                    }
                }
            }
            Ok(())
        }
        _ => {
            let name = ty.inner_named_type().as_str();
            let json = match v {
                ast::Value::String(x) => Value::String(x.clone()),
                ast::Value::Int(i) => i
                    .as_str()
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::Null),
                ast::Value::Boolean(b) => Value::Bool(*b),
                _ => return Ok(()),
            };
            if matches!(
                name,
                "UUID" | "CPR" | "DateTime" | "Date" | "int" | "Cursor"
            ) {
                check_named_scalar(name, &json).map_err(|m| {
                    format!("Expected value of type '{ty}', found {v}; {m}").replace('"', "'")
                })
            } else {
                Ok(())
            }
        }
    }
}
