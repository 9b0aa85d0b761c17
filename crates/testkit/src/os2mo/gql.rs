//! GraphQL plumbing shared by the executor: error values in the shapes MO answers with, the parsed
//! request (operation, fragments, variables), field collection and argument evaluation.

use std::collections::HashMap;

use apollo_compiler::Node;
use apollo_compiler::ast::{self, Definition, Document, OperationDefinition, Selection};
use apollo_compiler::parser::SourceMap;
use serde_json::{Map, Value, json};

/// One entry of a response's `errors`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GqlError {
    pub message: String,
    pub locations: Vec<(usize, usize)>,
    pub path: Option<Vec<Value>>,
    pub extensions: Option<Value>,
    /// A request (validation/coercion) error: never gets a `path`.
    pub request_error: bool,
}

impl GqlError {
    pub(crate) fn new(message: impl Into<String>) -> GqlError {
        GqlError {
            message: message.into(),
            locations: Vec::new(),
            path: None,
            extensions: None,
            request_error: false,
        }
    }

    pub(crate) fn at(mut self, locations: Vec<(usize, usize)>) -> GqlError {
        if self.locations.is_empty() {
            self.locations = locations;
        }
        self
    }

    /// Mark as a request error (coercion, validation): it never gets a `path`.
    pub(crate) fn request(mut self) -> GqlError {
        self.request_error = true;
        self
    }

    pub(crate) fn with_path(mut self, alias: &str) -> GqlError {
        if self.path.is_none() && !self.request_error {
            self.path = Some(vec![Value::String(alias.to_string())]);
        }
        self
    }

    /// A business error of MO: `message: "ErrorCodes.<KEY>"` and `extensions.error_context`.
    pub(crate) fn mo(
        key: &str,
        status: u16,
        description: impl Into<String>,
        extra: Value,
    ) -> GqlError {
        let mut ctx = Map::new();
        ctx.insert("error".into(), Value::Bool(true));
        ctx.insert("description".into(), Value::String(description.into()));
        ctx.insert("status".into(), json!(status));
        ctx.insert("error_key".into(), Value::String(key.into()));
        if let Value::Object(m) = extra {
            ctx.extend(m);
        }
        GqlError {
            message: format!("ErrorCodes.{key}"),
            locations: Vec::new(),
            path: None,
            extensions: Some(json!({ "error_context": ctx })),
            request_error: false,
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("message".into(), Value::String(self.message.clone()));
        if !self.locations.is_empty() {
            let locs: Vec<Value> = self
                .locations
                .iter()
                .map(|&(l, c)| json!({"line": l, "column": c}))
                .collect();
            m.insert("locations".into(), Value::Array(locs));
        }
        if let Some(p) = &self.path {
            m.insert("path".into(), Value::Array(p.clone()));
        }
        if let Some(e) = &self.extensions {
            m.insert("extensions".into(), e.clone());
        }
        Value::Object(m)
    }
}

/// `{"data": null, "errors": [...]}`.
pub(crate) fn error_response(errors: &[GqlError]) -> Value {
    json!({"data": null, "errors": errors.iter().map(GqlError::to_json).collect::<Vec<_>>()})
}

/// Line and column (1-based) of a node.
pub(crate) fn loc<T>(node: &Node<T>, sources: &SourceMap) -> Vec<(usize, usize)> {
    node.line_column_range(sources)
        .map(|r| vec![(r.start.line, r.start.column)])
        .unwrap_or_default()
}

/// Python's `repr`-like rendering that graphql-core uses for values in coercion messages.
pub(crate) fn inspect(v: &Value) -> String {
    inspect_depth(v, 0)
}

fn inspect_depth(v: &Value, depth: usize) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(a) => {
            if depth >= 2 {
                return "[...]".into();
            }
            let items: Vec<String> = a
                .iter()
                .take(10)
                .map(|x| inspect_depth(x, depth + 1))
                .collect();
            let more = if a.len() > 10 { ", ..." } else { "" };
            format!("[{}{more}]", items.join(", "))
        }
        Value::Object(m) => {
            if depth >= 2 {
                return "{...}".into();
            }
            let items: Vec<String> = m
                .iter()
                .take(10)
                .map(|(k, x)| format!("{}: {}", py_str(k), inspect_depth(x, depth + 1)))
                .collect();
            let more = if m.len() > 10 { ", ..." } else { "" };
            format!("{{{}{more}}}", items.join(", "))
        }
    }
}

fn py_str(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// A parsed request: the selected operation of a document plus its fragments and variables.
pub(crate) struct Request<'d> {
    pub doc: &'d Document,
    pub op: &'d Node<OperationDefinition>,
    pub frags: HashMap<&'d str, &'d Node<ast::FragmentDefinition>>,
    pub vars: &'d Map<String, Value>,
}

/// Parse a document; syntax errors come back in graphql-core's wording.
pub(crate) fn parse_document(query: &str) -> Result<Document, Vec<GqlError>> {
    match Document::parse(query, "request.graphql") {
        Ok(d) => Ok(d),
        Err(with) => Err(with
            .errors
            .iter()
            .map(|d| {
                let text = d.error.to_string();
                let text = text.strip_prefix("syntax error: ").unwrap_or(&text);
                let mut chars = text.chars();
                let text = match chars.next() {
                    Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
                    None => String::new(),
                };
                let locations = d
                    .line_column_range()
                    .map(|r| vec![(r.start.line, r.start.column)])
                    .unwrap_or_default();
                GqlError::new(format!("Syntax Error: {text}")).at(locations)
            })
            .collect()),
    }
}

impl<'d> Request<'d> {
    /// Select the operation to run (by `operationName` or the only one).
    pub(crate) fn new(
        doc: &'d Document,
        operation_name: Option<&str>,
        vars: &'d Map<String, Value>,
    ) -> Result<Request<'d>, GqlError> {
        let mut ops = Vec::new();
        let mut frags = HashMap::new();
        for def in &doc.definitions {
            match def {
                Definition::OperationDefinition(op) => ops.push(op),
                Definition::FragmentDefinition(f) => {
                    frags.insert(f.name.as_str(), f);
                }
                _ => {
                    return Err(GqlError::new(
                        "The document contains a type system definition.",
                    ));
                }
            }
        }
        let op = match operation_name {
            Some(name) => ops
                .into_iter()
                .find(|o| o.name.as_ref().map(|n| n.as_str()) == Some(name))
                .ok_or_else(|| GqlError::new(format!("Unknown operation named '{name}'.")))?,
            None => {
                if ops.len() != 1 {
                    return Err(GqlError::new(if ops.is_empty() {
                        "Must provide an operation."
                    } else {
                        "Must provide operation name if query contains multiple operations."
                    }));
                }
                ops[0]
            }
        };
        Ok(Request {
            doc,
            op,
            frags,
            vars,
        })
    }

    pub(crate) fn loc<T>(&self, node: &Node<T>) -> Vec<(usize, usize)> {
        loc(node, &self.doc.sources)
    }

    /// The value of a variable: given, else its default, else `None` (omitted).
    pub(crate) fn var(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.vars.get(name) {
            return Some(v.clone());
        }
        let def = self.op.variables.iter().find(|d| d.name.as_str() == name)?;
        def.default_value.as_ref().and_then(|d| self.eval(d))
    }

    /// Evaluate a literal (with variables); `None` means "omitted".
    pub(crate) fn eval(&self, v: &ast::Value) -> Option<Value> {
        Some(match v {
            ast::Value::Null => Value::Null,
            ast::Value::Enum(n) => Value::String(n.to_string()),
            ast::Value::Variable(n) => return self.var(n.as_str()),
            ast::Value::String(s) => Value::String(s.clone()),
            ast::Value::Float(f) => f.try_to_f64().ok().map(Value::from).unwrap_or(Value::Null),
            ast::Value::Int(i) => match i.as_str().parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => i.try_to_f64().ok().map(Value::from).unwrap_or(Value::Null),
            },
            ast::Value::Boolean(b) => Value::Bool(*b),
            ast::Value::List(items) => Value::Array(
                items
                    .iter()
                    .map(|x| self.eval(x).unwrap_or(Value::Null))
                    .collect(),
            ),
            ast::Value::Object(fields) => {
                let mut m = Map::new();
                for (k, x) in fields {
                    if let Some(val) = self.eval(x) {
                        m.insert(k.to_string(), val);
                    }
                }
                Value::Object(m)
            }
        })
    }

    /// An argument's value (`None` = not given).
    pub(crate) fn arg(&self, field: &ast::Field, name: &str) -> Option<Value> {
        field
            .arguments
            .iter()
            .find(|a| a.name.as_str() == name)
            .and_then(|a| self.eval(&a.value))
    }

    /// The variable an argument is bound to, if it is exactly `$var`.
    pub(crate) fn arg_variable(&self, field: &ast::Field, name: &str) -> Option<String> {
        field
            .arguments
            .iter()
            .find(|a| a.name.as_str() == name)
            .and_then(|a| match a.value.as_ref() {
                ast::Value::Variable(v) => Some(v.to_string()),
                _ => None,
            })
    }

    /// Location of a variable's definition.
    pub(crate) fn var_loc(&self, name: &str) -> Vec<(usize, usize)> {
        self.op
            .variables
            .iter()
            .find(|d| d.name.as_str() == name)
            .map(|d| self.loc(d))
            .unwrap_or_default()
    }

    fn included(&self, directives: &ast::DirectiveList) -> bool {
        for d in directives.0.iter() {
            let cond = d
                .arguments
                .iter()
                .find(|a| a.name.as_str() == "if")
                .and_then(|a| self.eval(&a.value))
                .and_then(|v| v.as_bool());
            match (d.name.as_str(), cond) {
                ("skip", Some(true)) | ("include", Some(false)) => return false,
                _ => {}
            }
        }
        true
    }

    /// The fields of a selection set, fragments expanded, `@skip`/`@include` applied.
    pub(crate) fn fields(
        &self,
        set: &'d [Selection],
    ) -> Result<Vec<&'d Node<ast::Field>>, GqlError> {
        let mut out = Vec::new();
        self.collect(set, &mut out, 0)?;
        Ok(out)
    }

    fn collect(
        &self,
        set: &'d [Selection],
        out: &mut Vec<&'d Node<ast::Field>>,
        depth: usize,
    ) -> Result<(), GqlError> {
        if depth > 20 {
            return Err(GqlError::new("Fragments are nested too deeply."));
        }
        for sel in set {
            match sel {
                Selection::Field(f) => {
                    if self.included(&f.directives) {
                        out.push(f);
                    }
                }
                Selection::InlineFragment(i) => {
                    if self.included(&i.directives) {
                        self.collect(&i.selection_set, out, depth + 1)?;
                    }
                }
                Selection::FragmentSpread(s) => {
                    if !self.included(&s.directives) {
                        continue;
                    }
                    let f = self.frags.get(s.fragment_name.as_str()).ok_or_else(|| {
                        GqlError::new(format!("Unknown fragment '{}'.", s.fragment_name))
                            .at(self.loc(s))
                    })?;
                    self.collect(&f.selection_set, out, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

/// Response key of a field (alias or name).
pub(crate) fn key(f: &ast::Field) -> &str {
    f.alias.as_ref().unwrap_or(&f.name).as_str()
}
